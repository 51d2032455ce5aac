// Builds the commander program from the command list and runs it: generated help and usage errors, and one place
// that turns any failure into one line on stderr with a hint and an exit code (2: the command line or a file given
// on it is wrong; 1: the work failed). Light on purpose: `--help` and `--version` load commander and nothing else.
import { Command, CommanderError } from '@commander-js/extra-typings';
import { GatewayError, type ErrorCode } from '../lib/errors.js';
import { CliExit, UsageError, type CliCommand, type CliIo } from './commands.js';

const BIN = 'physical-ai-gateway';

/** What to try next, by the gateway's error code. */
const HINTS: Partial<Record<ErrorCode, string>> = {
  unknown_framework: `list the gateway's frameworks with '${BIN} frameworks'`,
  unavailable: `check its state with '${BIN} frameworks' (or '${BIN} ps' for containers)`,
  timeout: 'is the gateway running at that address? (--gateway, or PAIG_GATEWAY; --timeout-ms to wait longer)',
  unauthorized: 'set PAIG_AUTH_TOKEN (or --token) to the gateway\'s token',
};

export function buildProgram(commands: readonly CliCommand[], io: CliIo, version: string): Command {
  const program = new Command(BIN)
    .description(`physical-ai-gateway ${version}: serve robot policies over ZeroMQ and HTTP`)
    .version(version, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'print this help')
    .helpCommand('help [command]', 'print the help of a command')
    .enablePositionalOptions()
    .exitOverride()
    .showSuggestionAfterError()
    .showHelpAfterError(`(${BIN} --help lists the commands)`)
    .configureOutput({ writeOut: (s) => io.out(s.replace(/\n$/, '')), writeErr: (s) => io.err(s.replace(/\n$/, '')) })
    .configureHelp({ subcommandTerm: (cmd) => cmd.name(), sortSubcommands: false });
  for (const spec of commands) {
    const cmd = program.command(spec.name).description(spec.summary);
    if ('define' in spec) {
      cmd.showHelpAfterError(`(${BIN} ${spec.name} --help for the options)`);
      spec.define(cmd as unknown as Command, io);
      continue;
    }
    // An older command parses its own arguments: hand them over untouched (its --help too, unless it declares a usage line).
    cmd
      .helpOption(false)
      .passThroughOptions()
      .allowUnknownOption()
      .allowExcessArguments()
      .argument('[args...]')
      .action(async (args: string[]) => {
        if (spec.usage !== undefined && (args.includes('--help') || args.includes('-h'))) {
          io.out(`usage: ${BIN} ${spec.name} ${spec.usage}`);
          io.out(`  ${spec.summary}`);
          return;
        }
        const code = await spec.run(args, io);
        if (code !== 0) throw new CliExit(code);
      });
  }
  return program;
}

/** Runs the command line; resolves with the exit code. Never throws. */
export async function runProgram(commands: readonly CliCommand[], argv: string[], io: CliIo, version: string): Promise<number> {
  const program = buildProgram(commands, io, version);
  if (argv.length === 0) {
    program.outputHelp({ error: true });
    return 2;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    return report(err, io, argv[0] ?? '');
  }
}

function report(err: unknown, io: CliIo, command: string): number {
  if (err instanceof CliExit) return err.code;
  if (err instanceof CommanderError) {
    // Commander has printed its message (and the help hint) already.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
    return err.code === 'commander.executeSubCommandAsync' ? 1 : 2;
  }
  const helpHint = `(${BIN} ${command} --help for the options)`;
  if (err instanceof UsageError) {
    io.err(`error: ${err.message}`);
    io.err(helpHint);
    return 2;
  }
  if (err instanceof Error && err.name === 'ConfigError') {
    io.err(err.message);
    return 2;
  }
  if (err instanceof GatewayError) {
    io.err(`error (${err.code}): ${err.message}`);
    // The container commands name the frameworks they know in the message already.
    const hint = err.code === 'unknown_framework' && ['up', 'down', 'logs'].includes(command) ? undefined : HINTS[err.code];
    if (hint) io.err(`hint: ${hint}`);
    return 1;
  }
  // What a user meets most: a file that is not there, a gateway that does not answer. One line and a hint.
  const code = (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code;
  if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR' || code === 'ENOTDIR') {
    io.err(`error: ${(err as Error).message}`);
    return 2;
  }
  if (err instanceof SyntaxError) {
    io.err(`error: not valid JSON: ${err.message}`);
    return 2;
  }
  if (err instanceof TypeError && err.message === 'fetch failed') {
    const cause = (err as { cause?: { message?: string } }).cause?.message ?? 'no answer';
    io.err(`error: the gateway did not answer (${cause}); is it running? (npm start, or --gateway / PAIG_GATEWAY to point at another)`);
    return 1;
  }
  if (err instanceof Error && err.name === 'AbortError') {
    io.err('error: the gateway did not answer in time; is it running? (--timeout-ms to wait longer)');
    return 1;
  }
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH') {
    io.err(`error: ${(err as Error).message}; is the Docker engine (or the gateway) running?`);
    return 1;
  }
  // Anything else is a bug or an environment we did not foresee: one line, the stack with PAIG_LOG_LEVEL=debug.
  io.err(`error: ${err instanceof Error ? err.message : String(err)}`);
  if (io.env.PAIG_LOG_LEVEL === 'debug' && err instanceof Error && err.stack) io.err(err.stack);
  else io.err('(PAIG_LOG_LEVEL=debug prints the stack)');
  return 1;
}
