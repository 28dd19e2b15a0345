// Structured logs (pino). JSON lines by default; a coloured pretty mode for a terminal.
// Every line about a connection carries `conn`, every line about a message carries `msg_id`:
// create child loggers with those bindings instead of formatting ids into the text.
// Secrets never reach a log: `censorSecrets` below is the backstop, not the mechanism. It
// censors the fields pino's redact paths 'password', 'pass', '*.password', '*.pass' named, with
// a look at the top-level keys and at their values' own keys; pino's redact with '*' paths
// cloned and walked every line's object (~1.5% of the CPU of the inbound benchmark, where
// every connection and message logs). Child bindings (`conn`, `msg_id`) are serialized once
// per child by pino, as before; there a top-level `password`/`pass` is censored (serializers),
// a nested one is not (bindings are ids; no secret is ever bound to a child).

import { type DestinationStream, type Logger, pino } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export interface LogOptions {
  readonly level: string;
  readonly format: 'json' | 'pretty' | 'auto';
  /** Where JSON lines go; default stdout. Tests pass a stream to read them. */
  readonly destination?: DestinationStream;
}

export function createLogger(opts: LogOptions): Logger {
  const usePretty = opts.format === 'pretty' || (opts.format === 'auto' && process.stdout.isTTY === true);
  const base = {
    level: opts.level,
    base: { pid: process.pid },
    formatters: { log: censorSecrets },
    // Child bindings skip formatters.log; pino applies serializers to their keys.
    serializers: { password: censored, pass: censored },
  };
  if (opts.destination) return pino(base, opts.destination);
  if (usePretty) return pino(base, pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid' }));
  return pino(base, pino.destination({ dest: 1, sync: false }));
}

/** Writes already formatted JSON log lines to the logger's destination (the lines of the
 *  inbound SMTP threads, docs/architecture.md §8, go through the main thread's log). */
export function logSink(logger: Logger): (lines: string) => void {
  const stream = (logger as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym];
  if (!stream) throw new Error('logger without a destination');
  return (lines) => stream.write(lines);
}

/** A logger that drops everything (unit tests of code that wants a logger). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

const SECRET_KEYS: readonly string[] = ['password', 'pass'];
const CENSOR = '[redacted]';
const censored = (): string => CENSOR;

function hasSecret(o: object): boolean {
  for (const k of SECRET_KEYS) if (Object.hasOwn(o, k)) return true;
  return false;
}

/** The fields of a log line with any `password` or `pass`, at the top level or one level down,
 *  replaced by "[redacted]". Returns the object itself when there is nothing to censor (the
 *  usual case: no copy); never changes the caller's objects. */
export function censorSecrets(obj: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | null = null;
  for (const k in obj) {
    if (!Object.hasOwn(obj, k)) continue;
    const v = obj[k];
    if (SECRET_KEYS.includes(k)) {
      out ??= { ...obj };
      out[k] = CENSOR;
    } else if (typeof v === 'object' && v !== null && hasSecret(v)) {
      out ??= { ...obj };
      const copy = (Array.isArray(v) ? Object.assign([], v) : { ...v }) as Record<string, unknown>;
      for (const s of SECRET_KEYS) if (Object.hasOwn(copy, s)) copy[s] = CENSOR;
      out[k] = copy;
    }
  }
  return out ?? obj;
}
