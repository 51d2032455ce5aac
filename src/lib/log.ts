// Structured JSON-lines logger with child loggers; the only sink is an injected write function.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export type LogFields = Record<string, unknown> & { event: string };

export interface Logger {
  debug(fields: LogFields): void;
  info(fields: LogFields): void;
  warn(fields: LogFields): void;
  error(fields: LogFields): void;
  child(bindings: Record<string, unknown>): Logger;
  readonly level: LogLevel;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Where each line goes; defaults to process.stderr. */
  write?: (line: string) => void;
  bindings?: Record<string, unknown>;
}

export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && value in LEVELS;
}

function serialiseError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const out: Record<string, unknown> = { name: err.name, message: err.message };
  if ('code' in err) out.code = (err as { code: unknown }).code;
  if (err.stack) out.stack = err.stack;
  if (err.cause !== undefined) out.cause = serialiseError(err.cause);
  return out;
}

export function createLogger({ level = 'info', write, bindings = {} }: LoggerOptions = {}): Logger {
  const sink = write ?? ((line: string) => void process.stderr.write(line));
  const threshold = LEVELS[level];
  const emit = (lvl: Exclude<LogLevel, 'silent'>, fields: LogFields) => {
    if (LEVELS[lvl] < threshold) return;
    const record: Record<string, unknown> = { time: new Date().toISOString(), level: lvl, ...bindings };
    for (const [key, value] of Object.entries(fields)) record[key] = key === 'err' ? serialiseError(value) : value;
    sink(JSON.stringify(record) + '\n');
  };
  return {
    level,
    debug: (f) => emit('debug', f),
    info: (f) => emit('info', f),
    warn: (f) => emit('warn', f),
    error: (f) => emit('error', f),
    child: (more) => createLogger({ level, write: sink, bindings: { ...bindings, ...more } }),
  };
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: Logger = createLogger({ level: 'silent' });
