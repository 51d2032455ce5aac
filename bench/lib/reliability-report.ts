// bench/results/reliability.md from the JSON the reliability scripts write: reliability-faults.json
// (scripts/fault-run.ts) and reliability-soak.json (scripts/soak.ts). Either may be missing; each run rewrites the
// whole file from both, so the two sections never disagree with their JSON.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

interface Machine { cpu_model: string; cores: number; memory_gb: number; node: string; load_before: number[]; load_after?: number[] }
interface FaultStats { fault: string; injections: number; sent: number; ok: number; errors: Record<string, number>; hung: number; misrouted: number; recover_ms: number[]; outage_ms: number[]; not_recovered: number }
interface FaultsJson { date: string; seconds: number; concurrency: number; deadline_ms: number; grace_ms: number; netns: { ran: boolean; note: string }; docker?: { ran: boolean; note: string }; faults: FaultStats[]; machine: Machine }
export interface SoakMinute { minute: number; rss_mb: number; heap_used_mb: number; fds: number; requests: number; ok: number; errors: Record<string, number>; hung: number; misrouted: number; p50_ms: number; p99_ms: number }
interface SoakJson { date: string; minutes: number; concurrency: number; per_minute: SoakMinute[]; machine: Machine }

const errs = (e: Record<string, number>) => Object.entries(e).map(([k, v]) => `${k} ${v}`).join(', ') || '0';
const range = (xs: number[]) => (xs.length === 0 ? 'n/a' : xs.length === 1 ? `${xs[0]}` : `${Math.min(...xs)}–${Math.max(...xs)} (median ${[...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]})`);
const machineLine = (m: Machine, date: string) => `${date.slice(0, 16).replace('T', ' ')} UTC on ${m.cpu_model}, ${m.cores} cores, ${m.memory_gb} GB, Node ${m.node}; load average ${m.load_before.join(' / ')} before, ${(m.load_after ?? []).join(' / ')} after`;

export function faultsTable(f: FaultsJson): string {
  const rows = f.faults.map((s) => `| ${s.fault} | ${s.injections} | ${s.sent} | ${s.ok} | ${errs(s.errors)} | ${s.hung} | ${s.misrouted} | ${range(s.recover_ms)}${s.not_recovered ? ` (${s.not_recovered} not recovered)` : ''} |`);
  return ['| fault | injected | sent | ok | errors by code | hung | misrouted | recover ms (from restart / SIGCONT / kill / engine back) |', '|---|---:|---:|---:|---|---:|---:|---|', ...rows].join('\n');
}

export function soakTable(s: SoakJson): string {
  const rows = s.per_minute.map((m) => `| ${m.minute} | ${m.rss_mb} | ${m.heap_used_mb} | ${m.fds} | ${m.requests} | ${errs(m.errors)} | ${m.hung} | ${m.misrouted} | ${m.p50_ms} | ${m.p99_ms} |`);
  return ['| minute | RSS MB | heap used MB | open fds | requests | errors by code | hung | misrouted | p50 ms | p99 ms |', '|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|', ...rows].join('\n');
}

export function writeReliabilityMarkdown(dir: string): void {
  const parts = ['# Reliability runs', '', 'Written by `scripts/fault-run.ts` and `scripts/soak.ts` from the JSON beside this file.', ''];
  const faultsPath = join(dir, 'reliability-faults.json');
  if (existsSync(faultsPath)) {
    const f = JSON.parse(readFileSync(faultsPath, 'utf8')) as FaultsJson;
    parts.push('## Faults', '', `${machineLine(f.machine, f.date)}. ${f.seconds} s of faults, ${f.concurrency} client loops (HTTP msgpack and ZMQ binary, S and L), deadline ${f.deadline_ms} ms, hung = no answer within deadline + ${f.grace_ms} ms. network namespaces: ${f.netns.ran ? `worker and gateway in two namespaces of their own, joined by a veth pair shaped by ${f.netns.note}` : `not run (${f.netns.note})`}. Docker: ${f.docker?.ran ? `${f.docker.note}; container-kill recovers from the kill, engine-restart from the engine listening again` : `not run (${f.docker?.note ?? 'not part of this run'})`}.`, '', faultsTable(f), '');
  }
  const soakPath = join(dir, 'reliability-soak.json');
  if (existsSync(soakPath)) {
    const s = JSON.parse(readFileSync(soakPath, 'utf8')) as SoakJson;
    parts.push('## Soak', '', `${machineLine(s.machine, s.date)}. ${s.minutes} minutes, ${s.concurrency} client loops (both doors, S and L, one bad input in 20).`, '', soakTable(s), '');
  }
  writeFileSync(join(dir, 'reliability.md'), parts.join('\n'));
}
