// Which npm packages a piece of code loads: it runs in a fresh `node` child (no tsx) with a module resolve hook that
// records every URL the ESM loader resolves, plus every file in the CommonJS cache at the end. Returns package
// names (`zeromq`, `@opentelemetry/sdk-trace-base`) and what the code printed.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const HOOKS = `
import { appendFileSync } from 'node:fs';
let file;
export function initialize(data) { file = data.file; }
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(file, resolved.url + '\\n');
  return resolved;
}`;

/** Package name of a file path or URL inside node_modules, else undefined. */
export function packageOf(pathOrUrl: string): string | undefined {
  const match = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(decodeURIComponent(pathOrUrl));
  return match?.[1];
}

/**
 * Runs `body` (ES module code, may use top-level await) in `node --input-type=module` with `cwd`, after the
 * resolve hook is registered (so its own `import()`s are seen; write them as dynamic imports).
 */
export async function packagesLoadedBy(body: string, { cwd }: { cwd: string }): Promise<{ packages: Set<string>; stdout: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'paig-loaded-'));
  try {
    const file = join(dir, 'resolved.txt');
    const script = `
import { register, createRequire } from 'node:module';
import { appendFileSync } from 'node:fs';
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOKS)}), import.meta.url, { data: { file: ${JSON.stringify(file)} } });
${body}
appendFileSync(${JSON.stringify(file)}, Object.keys(createRequire(import.meta.url).cache).join('\\n') + '\\n');
`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { cwd, timeout: 60_000 });
    const resolved = (await readFile(file, 'utf8')).split('\n');
    return { packages: new Set(resolved.map(packageOf).filter((p): p is string => p !== undefined)), stdout };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
