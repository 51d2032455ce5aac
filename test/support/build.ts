// dist/ compiled from the current src/, for tests that run the package as users do (npm start, the bin, imports by
// package name): `npm run build` when a source file has no compiled twin or is newer than it. scripts/test.sh
// builds once up front, so in a full run this only checks.
import { execFile } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** True when some src/**.ts has no dist/**.js or a newer modification time than it. */
export function distIsStale(): boolean {
  const src = join(ROOT, 'src');
  return sources(src).some((file) => {
    const built = statSync(join(ROOT, 'dist', relative(src, file)).replace(/\.ts$/, '.js'), { throwIfNoEntry: false });
    return !built || built.mtimeMs < statSync(file).mtimeMs;
  });
}

export async function ensureBuilt(): Promise<void> {
  if (distIsStale()) await promisify(execFile)('npm', ['run', 'build', '--silent'], { cwd: ROOT, timeout: 180_000 });
}
