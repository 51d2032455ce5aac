#!/usr/bin/env -S node --initial-old-space-size=128
/* global URL */
// Launcher for `npx physical-ai-gateway`: runs the compiled CLI in dist/ (built by `npm run build`, which
// `npm ci` and `npm install` run through the `prepare` script). It never compiles TypeScript.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(built))) {
  console.error(`physical-ai-gateway: ${fileURLToPath(built)} is missing: the CLI has not been built.`);
  console.error(`Run \`npm run build\` in ${fileURLToPath(new URL('..', import.meta.url))} (npm ci does it too), then try again.`);
  process.exit(1);
}
await import(built.href);
