// What the numbers were measured on: CPU, cores, load, memory, OS, and the versions of everything on the path.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, release, totalmem, type } from 'node:os';
import * as zmq from 'zeromq';

export interface MachineInfo {
  cpu_model: string;
  cores: number;
  memory_gb: number;
  os: string;
  load_before: number[];
  load_after?: number[];
  node: string;
  zeromq_js: string;
  libzmq_node: string;
  msgpack_js: string;
  hono: string;
  python?: Record<string, string>;
  git_commit?: string;
}

const require = createRequire(import.meta.url);

function packageVersion(name: string): string {
  try {
    const path = require.resolve(`${name}/package.json`);
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  } catch {
    // Packages whose exports hide package.json: walk up from the entry point.
    try {
      let dir = require.resolve(name);
      for (let i = 0; i < 6; i++) {
        dir = dir.slice(0, dir.lastIndexOf('/'));
        try {
          const pkg = JSON.parse(readFileSync(`${dir}/package.json`, 'utf8')) as { name?: string; version: string };
          if (pkg.name === name) return pkg.version;
        } catch {
          // keep walking
        }
      }
    } catch {
      // not installed
    }
    return 'unknown';
  }
}

export function roundLoad(): number[] {
  return loadavg().map((v) => Math.round(v * 100) / 100);
}

export function machineInfo(python?: Record<string, string>): MachineInfo {
  let gitCommit: string | undefined;
  try {
    gitCommit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    gitCommit = undefined;
  }
  const cpuList = cpus();
  return {
    cpu_model: cpuList[0]?.model.trim() ?? 'unknown',
    cores: cpuList.length,
    memory_gb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${type()} ${release()}`,
    load_before: roundLoad(),
    node: process.version,
    zeromq_js: packageVersion('zeromq'),
    libzmq_node: zmq.version,
    msgpack_js: packageVersion('@msgpack/msgpack'),
    hono: packageVersion('hono'),
    ...(python ? { python } : {}),
    ...(gitCommit ? { git_commit: gitCommit } : {}),
  };
}
