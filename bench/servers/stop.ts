// How every bench server child ends: on SIGTERM/SIGINT or when stdin ends (so it never outlives the harness),
// it runs `close` once and exits 0, or 1 when close fails.
export function closeOnStop(close: () => Promise<unknown> | void): void {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    Promise.resolve()
      .then(close)
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
}
