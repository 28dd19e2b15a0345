// Structured logs (pino). JSON lines by default; a coloured pretty mode for a terminal.
// Every line about a connection carries `conn`, every line about a message carries `msg_id`:
// create child loggers with those bindings instead of formatting ids into the text.
// Secrets never reach a log: the redact list below is the backstop, not the mechanism.

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
    redact: { paths: ['password', '*.password', 'pass', '*.pass', 'auth.password'], censor: '[redacted]' },
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
