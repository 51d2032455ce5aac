// Endpoints for tests: a free tcp port on 127.0.0.1, and ipc paths in short temp dirs removed after the test.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

let ipcCounter = 0;
const ipcDirs = new Set<string>();
let ipcHookInstalled = false;

/**
 * `ipc://<tmpdir>/w-<n>.sock` in a fresh temp dir (path under 100 bytes, the ipc limit is 107). The dir is
 * removed after the test when `t` is given (`t.after`), otherwise when the process exits.
 */
export function ipcEndpoint(t?: { after(fn: () => void | Promise<void>): void }): string {
  const base = tmpdir().length < 60 ? tmpdir() : '/tmp';
  const dir = mkdtempSync(join(base, 'paig-'));
  const path = join(dir, `w-${++ipcCounter}.sock`);
  if (Buffer.byteLength(path) >= 100) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`ipc path too long (${Buffer.byteLength(path)} bytes): ${path}`);
  }
  const remove = () => {
    ipcDirs.delete(dir);
    rmSync(dir, { recursive: true, force: true });
  };
  if (t) {
    t.after(remove);
  } else {
    ipcDirs.add(dir);
    if (!ipcHookInstalled) {
      ipcHookInstalled = true;
      process.once('exit', () => {
        for (const d of ipcDirs) rmSync(d, { recursive: true, force: true });
      });
    }
  }
  return `ipc://${path}`;
}
