// The CLI's extension point: a subcommand is a name, a one-line summary and a run function. Other modules
// (docker: up/down/ps/logs; ros-bridge: bridge) add theirs to the table in main.ts.

export interface CliIo {
  /** One line to stdout. */
  out(line: string): void;
  /** One line to stderr. */
  err(line: string): void;
  /** The process environment (only the CLI reads process.env; it passes it down). */
  env: Readonly<Record<string, string | undefined>>;
}

export interface CliCommand {
  name: string;
  summary: string;
  /** Its options, one line (`--help` prints it); commands that print their own help leave it out. */
  usage?: string;
  /** Runs with the arguments after the subcommand name; resolves with the exit code. */
  run(args: string[], io: CliIo): Promise<number>;
}
