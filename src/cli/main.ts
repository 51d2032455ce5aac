// Entry point (importing it runs the CLI): the `physical-ai-gateway` command. The only place that reads
// process.env and argv, prints with console, and exits. Commands are declared in their own modules
// (src/cli/*-command.ts, docker-commands.ts, recording-commands.ts); registering one is one line in COMMANDS.
import { readFileSync } from 'node:fs';
import { bridgeCommand } from './bridge-command.js';
import type { CliCommand, CliIo } from './commands.js';
import { dockerCommands } from './docker-commands.js';
import { frameworksCommand } from './frameworks-command.js';
import { inferCommand } from './infer-command.js';
import { keysCommand } from './keys-command.js';
import { leasesCommand } from './leases-command.js';
import { runProgram } from './program.js';
import { recordingCommands } from './recording-commands.js';
import { serveCommand } from './serve-command.js';
import { trainCommand } from './train-command.js';

// Everything heavy (zeromq, hono, prom-client, the OpenTelemetry SDK, dockerode, yaml, ajv) is imported when a
// command runs, not by the modules above: `--version` and `--help` load commander and nothing else from npm.
const { version: VERSION } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** Every command, in the order `--help` lists them. */
export const COMMANDS: readonly CliCommand[] = [
  serveCommand,
  inferCommand,
  frameworksCommand,
  leasesCommand,
  ...dockerCommands,
  ...recordingCommands,
  trainCommand,
  keysCommand,
  bridgeCommand,
];

const io: CliIo = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
  env: process.env,
  status: process.stderr,
};
runProgram(COMMANDS, process.argv.slice(2), io, VERSION).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
