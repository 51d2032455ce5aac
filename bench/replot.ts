// Redraws latest.md and the SVG plots, and recomputes the targets, from an existing latest.json (after a change to the rendering, without
// measuring again): `tsx bench/replot.ts [results dir]` (default bench/results).
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ROOT } from './lib/environment.js';
import { recomputeTargets, renderMarkdown, type Report } from './lib/report.js';
import { cdfSvg, latencyByPayloadSvg } from './lib/svg.js';

const dir = resolve(process.argv[2] ?? join(ROOT, 'bench/results'));
const report = recomputeTargets(JSON.parse(readFileSync(join(dir, 'latest.json'), 'utf8')) as Report);
writeFileSync(join(dir, 'latest.json'), JSON.stringify(report, null, 1) + '\n');
writeFileSync(join(dir, 'latest.md'), renderMarkdown(report));
writeFileSync(join(dir, 'latency-by-payload.svg'), latencyByPayloadSvg(report));
writeFileSync(join(dir, 'latency-cdf-L.svg'), cdfSvg(report, 'L'));
process.stdout.write(`redrawn from ${join(dir, 'latest.json')}\n`);
