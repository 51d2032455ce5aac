// Runs the decoder fuzz properties of test/protocol/fuzz.test.ts for much longer: a million inputs and more.
//   node --import tsx scripts/fuzz-long.ts [inputs=1000000] [seed=20240601]
// Prints one line per property and a total: inputs, seconds, inputs/s, failures. Exits 1 when a property fails,
// with the seed and path that replay it (fast-check's report, cut short: counterexamples can be megabytes).
import fc from 'fast-check';
import { PROPERTIES } from '../test/support/protocol-fuzz.js';

const inputs = Number(process.argv[2] ?? 1_000_000);
const seed = Number(process.argv[3] ?? 20_240_601);
if (!Number.isInteger(inputs) || inputs < 1 || !Number.isInteger(seed)) {
  console.error('usage: node --import tsx scripts/fuzz-long.ts [inputs] [seed]');
  process.exit(2);
}

const names = Object.keys(PROPERTIES);
const perProperty = Math.ceil(inputs / names.length);
let total = 0;
let failures = 0;
const started = performance.now();
for (const name of names) {
  const t0 = performance.now();
  const details = PROPERTIES[name]!({ seed, numRuns: perProperty });
  const seconds = (performance.now() - t0) / 1000;
  total += details.numRuns;
  if (details.failed) {
    failures++;
    console.log((fc.defaultReportMessage(details) ?? 'property failed').slice(0, 4_000));
  }
  console.log(`${name}: ${details.numRuns} inputs, ${seconds.toFixed(1)} s, ${Math.round(details.numRuns / seconds)} inputs/s, ${details.failed ? 1 : 0} failures`);
}
const seconds = (performance.now() - started) / 1000;
console.log(`total: ${total} inputs, ${seconds.toFixed(1)} s, ${Math.round(total / seconds)} inputs/s, ${failures} failures (seed ${seed})`);
process.exitCode = failures > 0 ? 1 : 0;
