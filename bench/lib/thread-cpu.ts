// CPU time of a local process by thread group, read from /proc (Linux): the JavaScript main thread, ZeroMQ's I/O
// thread(s), and the rest (V8's GC and compiler helpers, libuv's pool). Taken before and after each measured batch
// of a gateway path, it gives CPU µs per request by group: a measure that load on a shared machine moves far less
// than latency does (time spent waiting for a core is not CPU time).
import { readdirSync, readFileSync } from 'node:fs';

export interface ThreadCpu {
  /** ms of user + system time. */
  main: number;
  zmqIo: number;
  helpers: number;
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** The process's CPU time by group so far; undefined where /proc cannot be read (not Linux, process gone). */
export function threadCpu(pid: number): ThreadCpu | undefined {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  const cpu: ThreadCpu = { main: 0, zmqIo: 0, helpers: 0 };
  for (const tid of tids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // a thread that ended between the listing and the read
    }
    // "tid (comm) state ...": comm may hold spaces and parentheses; fields after the last ')' are fixed.
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const fields = stat.slice(close + 2).split(' ');
    const ms = (Number(fields[11]) + Number(fields[12])) * TICK_MS; // utime, stime
    if (tid === String(pid)) cpu.main += ms;
    else if (comm.startsWith('ZMQbg/IO')) cpu.zmqIo += ms;
    else cpu.helpers += ms;
  }
  return cpu;
}

/** b − a, group by group. */
export function cpuDelta(a: ThreadCpu, b: ThreadCpu): ThreadCpu {
  return { main: b.main - a.main, zmqIo: b.zmqIo - a.zmqIo, helpers: b.helpers - a.helpers };
}
