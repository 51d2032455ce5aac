// The CLI's extension point. A subcommand is declarative: a name, a one-line summary and `define`, which adds its
// arguments, options and action to a commander Command (help, usage errors and env fallbacks come from commander).
// Modules add theirs to the COMMANDS list in main.ts. A command written the older way (`run(args, io)` with its own
// parsing) is still accepted: it receives its arguments as they were typed.
//
// Shared options live here so that one concept has one flag name (and one PAIG_* variable) on every command.
import { InvalidArgumentError, Option, type Command } from '@commander-js/extra-typings';
import { DEFAULT_GATEWAY_ZMQ_ENDPOINT } from '../zmq/addresses.js';

export interface CliIo {
  /** One line to stdout. */
  out(line: string): void;
  /** One line to stderr. */
  err(line: string): void;
  /** The process environment (only the CLI reads process.env; it passes it down). */
  env: Readonly<Record<string, string | undefined>>;
  /** Where live status lines go (stderr); quiet when it is not a terminal. */
  status?: NodeJS.WriteStream;
}

/** A subcommand declared on commander. */
export interface DeclaredCommand {
  name: string;
  summary: string;
  /** Adds arguments, options and the action to `cmd` (named and described already). */
  define(cmd: Command, io: CliIo): void;
}

/** A subcommand that parses its own arguments (the older shape): it gets them as typed and resolves with the exit code. */
export interface PassthroughCommand {
  name: string;
  summary: string;
  /** Its options, one line (`--help` prints it); commands that print their own help leave it out. */
  usage?: string;
  run(args: string[], io: CliIo): Promise<number>;
}

export type CliCommand = DeclaredCommand | PassthroughCommand;

/** A wrong argument found after commander's parsing (a file's content, two options that exclude each other): exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Ends a command with this exit code; what it had to say is printed already. */
export class CliExit extends Error {
  override readonly name = 'CliExit';
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

// The defaults of src/config.ts (config.ts is not imported: it loads yaml and the codec; test/gateway/cli.test.ts
// checks they agree). The ZMQ one is the constant config.ts and the ROS bridge use too.
export const DEFAULT_ZMQ_GATEWAY = DEFAULT_GATEWAY_ZMQ_ENDPOINT;
export const DEFAULT_HTTP_GATEWAY = 'http://127.0.0.1:8080';

/** The environment variables the client commands read (serve's own are in src/config.ts ENV_VARS). */
export const CLIENT_ENV = {
  gateway: 'PAIG_GATEWAY',
  framework: 'PAIG_FRAMEWORK',
  token: 'PAIG_AUTH_TOKEN',
  config: 'PAIG_CONFIG',
  timeoutMs: 'PAIG_TIMEOUT_MS',
} as const;

// ------------------------------------------------------------------ argument parsers (usage errors, exit 2)
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number >= 1.');
  return n;
}

export function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a number >= 0.');
  return n;
}

const ZMQ_SCHEME = /^(tcp|ipc|inproc):\/\//;
const HTTP_SCHEME = /^https?:\/\//;

/** A gateway address: tcp://, ipc:// (its ZMQ door) or http(s):// (its HTTP door). */
export function gatewayAddress(value: string): string {
  if (!ZMQ_SCHEME.test(value) && !HTTP_SCHEME.test(value)) throw new InvalidArgumentError('must start with tcp://, ipc:// (the ZMQ door) or http:// / https:// (the HTTP door).');
  return value.replace(/\/+$/, '');
}

export const isHttpAddress = (address: string): boolean => HTTP_SCHEME.test(address);

/** An HTTP-only command given a ZMQ address: say which door it needs. */
export function httpGateway(address: string, command: string): string {
  if (!isHttpAddress(address)) throw new UsageError(`${command} talks to the gateway's HTTP door: --gateway must be http://... (got ${address})`);
  return address;
}

// ------------------------------------------------------------------ shared options: one flag name per concept
/** Where the gateway is. Commands that can use either door default to the ZMQ door, HTTP-only ones to the HTTP door. */
export const gatewayOption = (defaultAddress: string, doors = 'tcp:// or ipc:// for the ZMQ door, http:// for the HTTP door') =>
  new Option('-g, --gateway <address>', `the gateway (${doors})`).env(CLIENT_ENV.gateway).default(defaultAddress).argParser(gatewayAddress);

export const frameworkOption = (what = "the gateway's default framework") => new Option('--framework <name>', `framework to ask (default: ${what})`).env(CLIENT_ENV.framework);

export const timeoutOption = (defaultMs: number) => new Option('--timeout-ms <ms>', 'how long to wait for each answer').env(CLIENT_ENV.timeoutMs).default(defaultMs).argParser(positiveInt);

export const tokenOption = () => new Option('--token <token>', 'bearer token for a gateway that needs one (better in the environment)').env(CLIENT_ENV.token);

export const jsonOption = () => new Option('--json', 'print one JSON document (for scripts) instead of text').default(false);

export const configOption = () => new Option('-c, --config <file>', 'gateway config file (YAML or JSON)').env(CLIENT_ENV.config);

/** Authorization header for the HTTP door when a token is given. */
export const authHeaders = (token: string | undefined): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});
