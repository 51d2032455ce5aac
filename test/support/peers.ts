// The peers' own clients for test/peers/: openpi's openpi-client in .venv-peers/ (scripts/ensure-peers.sh sets it up,
// idempotently), and the GR00T client written from the wire format (test/peers/groot_client.py) on Debian's python3.
// Each call runs a real Python process that prints one JSON object; a non-zero exit fails with its stderr.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './build.js';
import { PYTHON } from './python-worker.js';

const run = promisify(execFile);
const PEERS = join(ROOT, 'test', 'peers');

let openpiPython: Promise<string> | undefined;

/** The venv python with openpi-client 0.1.2 (installs it on first use, like the ROS 2 tests do theirs). */
export function ensureOpenpiClient(): Promise<string> {
  return (openpiPython ??= (async () => {
    await run('bash', [join(ROOT, 'scripts', 'ensure-peers.sh')], { timeout: 300_000 });
    return (await readFile(join(ROOT, '.venv-peers', 'python-path'), 'utf8')).trim();
  })());
}

async function runJson(python: string, script: string, args: string[]): Promise<Record<string, unknown>> {
  try {
    const { stdout } = await run(python, [join(PEERS, script), ...args], { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
    return JSON.parse(stdout) as Record<string, unknown>;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${script} ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}

/** Runs a scenario of test/peers/openpi_scenarios.py against `url` with openpi's client. */
export async function openpiScenario(scenario: string, url: string, apiKey?: string): Promise<Record<string, unknown>> {
  return runJson(await ensureOpenpiClient(), 'openpi_scenarios.py', [scenario, url, ...(apiKey ? [apiKey] : [])]);
}

/** Runs a scenario of test/peers/groot_client.py against a GR00T door's endpoint. */
export function grootScenario(scenario: string, endpoint: string, apiToken?: string): Promise<Record<string, unknown>> {
  return runJson(PYTHON, 'groot_client.py', [scenario, endpoint, ...(apiToken ? [apiToken] : [])]);
}
