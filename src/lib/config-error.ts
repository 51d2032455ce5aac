// The one error type for a bad configuration (the gateway's, the bridge's, a framework spec's), kept apart from
// the request error codes: a config problem is found at start-up, listed all at once with the path of each field,
// and ends the command with exit code 2; it never travels on the wire.

export interface ConfigIssue {
  /** Where, e.g. `frameworks.lerobot.endpoints[0]` or `cameras[1].topic`. */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  override readonly name: string = 'ConfigError';
  constructor(
    readonly issues: readonly ConfigIssue[],
    readonly source?: string,
    what = 'configuration',
  ) {
    super(`invalid ${what}${source ? ` in ${source}` : ''} (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`);
  }
}

/** Collects issues while a checker walks a document; `throwIfAny` raises them together. */
export class IssueList {
  readonly issues: ConfigIssue[] = [];
  add(path: string, message: string): void {
    this.issues.push({ path, message });
  }
}
