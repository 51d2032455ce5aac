// Close a list of owned resources in the given order, awaiting each, and report every failure at once.

export interface Closable {
  close(): Promise<void> | void;
}

/** Closes each resource in order (callers pass reverse build order); throws an AggregateError if any failed. */
export async function closeAll(resources: ReadonlyArray<Closable | undefined>): Promise<void> {
  const failures: unknown[] = [];
  for (const resource of resources) {
    if (!resource) continue;
    try {
      await resource.close();
    } catch (err) {
      failures.push(err);
    }
  }
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) throw new AggregateError(failures, `${failures.length} resources failed to close`);
}

