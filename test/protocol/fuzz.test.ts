// Property-based fuzzing of the decoders (fast-check), bounded: a fixed seed and 2,000 inputs per property, so the
// run is the same every time and takes a few seconds. Every input decodes or is refused with a GatewayError of a
// code on the closed list (test/support/protocol-fuzz.ts). scripts/fuzz-long.ts runs the same properties longer.
import { test } from 'node:test';
import fc from 'fast-check';
import { PROPERTIES } from '../support/protocol-fuzz.js';

const SEED = 20_240_601;
const RUNS = 2_000;

for (const [name, run] of Object.entries(PROPERTIES)) {
  // The timeout turns a hang into a failure instead of a stuck suite.
  test(`fuzz: ${name}`, { timeout: 60_000 }, () => {
    const details = run({ seed: SEED, numRuns: RUNS });
    // The report starts with the seed and path that replay the failure; counterexamples can be megabytes long.
    if (details.failed) throw new Error((fc.defaultReportMessage(details) ?? 'property failed').slice(0, 4_000), { cause: details.errorInstance });
  });
}
