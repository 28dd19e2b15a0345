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
import { addDropSource } from './metrics.ts';

export type { Logger };

export interface LogOptions {
  readonly level: string;
  readonly format: 'json' | 'pretty' | 'auto';
  /** Where JSON lines go; default stdout. Tests pass a stream to read them. */
  readonly destination?: DestinationStream;
  /** [log] syslog: the lines are shipped there too (syslog-transport.ts, docs/logging.md). */
  readonly syslog?: {
    readonly url: string;
    readonly hostname: string;
    readonly maxLines: number;
    readonly ca?: string;
  };
  /** [log] otlp: the lines are shipped there too (otlp-transport.ts). */
  readonly otlp?: { readonly url: string; readonly hostname: string; readonly maxLines: number };
}

/** Every stream a logger writes to (logSink writes the threads' lines to each). */
const sinks = new WeakMap<Logger, DestinationStream[]>();

export function createLogger(opts: LogOptions): Logger {
  const usePretty = opts.format === 'pretty' || (opts.format === 'auto' && process.stdout.isTTY === true);
  const base = {
    level: opts.level,
    base: { pid: process.pid },
    formatters: { log: censorSecrets },
    // Child bindings skip formatters.log; pino applies serializers to their keys.
    serializers: { password: censored, pass: censored },
  };
  const main =
    opts.destination ??
    (usePretty
      ? pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid' })
      : pino.destination({ dest: 1, sync: false }));
  const streams: DestinationStream[] = [main];
  if (opts.syslog) streams.push(shippingStream('syslog', { ...opts.syslog, ca: opts.syslog.ca ?? '' }));
  if (opts.otlp) streams.push(shippingStream('otlp', opts.otlp));
  if (streams.length === 1) {
    const logger = pino(base, main);
    sinks.set(logger, streams);
    return logger;
  }
  const level = opts.level as pino.Level;
  const logger = pino(base, pino.multistream(streams.map((stream) => ({ stream, level }))));
  sinks.set(logger, streams);
  return logger;
}

/** A shipping sink: pino's transport worker running {kind}-transport.ts, its drops counted
 *  (a SharedArrayBuffer the worker adds to, read at each scrape). */
function shippingStream(kind: 'syslog' | 'otlp', options: Record<string, unknown>): DestinationStream {
  const dropped = new SharedArrayBuffer(8);
  const counter = new BigInt64Array(dropped);
  addDropSource(kind, () => Number(Atomics.load(counter, 0)));
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  const transport = pino.transport({
    target: new URL(`./${kind}-transport.${ext}`, import.meta.url).href,
    options: { ...options, dropped },
  });
  // A transport that fails (its worker died) must not take the server with it: stdout goes on.
  transport.on('error', (e: unknown) => process.stderr.write(`arcline: ${kind} log shipping stopped: ${String(e)}\n`));
  return transport;
}

/** Ends the log shipping sinks of `logger` (their queued lines get up to a second to leave;
 *  syslog-transport.ts); stdout is left as it is. */
export async function closeLogShipping(logger: Logger): Promise<void> {
  const streams = sinks.get(logger)?.slice(1) ?? [];
  await Promise.all(
    streams.map(
      (s) =>
        new Promise<void>((resolve) => {
          // The transport's worker thread is unref'd: this timer keeps the process up until it
          // has ended (its sink's own wait is about a second), and bounds the wait.
          const timer = setTimeout(resolve, 4000);
          const t = s as unknown as NodeJS.WritableStream & { once(e: string, f: () => void): void };
          t.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
          t.end();
        }),
    ),
  );
}

/** Writes already formatted JSON log lines to the logger's destination (the lines of the
 *  inbound SMTP threads, docs/architecture.md §8, go through the main thread's log). */
export function logSink(logger: Logger): (lines: string) => void {
  const streams = sinks.get(logger);
  if (streams) {
    return (lines) => {
      for (const s of streams) s.write(lines);
    };
  }
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
