// Endpoints for tests: a free tcp port on 127.0.0.1 and ipc paths in a temp dir removed after the test.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** An ipc:// endpoint in a fresh temp dir; the dir is removed by the returned cleanup. */
export function ipcEndpoint(name = 'w'): { endpoint: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'paig-'));
  return { endpoint: `ipc://${join(dir, `${name}.sock`)}`, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
