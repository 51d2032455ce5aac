// A node:test reporter that prints nothing and appends one JSON line per finished test (file, name, nesting,
// duration, outcome) to the file named by PAIG_TEST_REPORT; scripts/run-tests.sh reads them for the totals (every
// test and subtest, as node counts them) and the slowest top-level tests at the end of a run.
import { appendFileSync } from 'node:fs';

export default async function* testReport(source) {
  const file = process.env.PAIG_TEST_REPORT;
  for await (const event of source) {
    if (!file || (event.type !== 'test:pass' && event.type !== 'test:fail')) continue;
    const { data } = event;
    const outcome = event.type === 'test:fail' ? 'fail' : data.skip || data.todo ? 'skip' : 'pass';
    appendFileSync(file, `${JSON.stringify({ file: data.file ?? '', name: data.name, nesting: data.nesting, ms: data.details?.duration_ms ?? 0, outcome })}\n`);
  }
  yield '';
}
