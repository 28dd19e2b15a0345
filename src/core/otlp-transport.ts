// A pino transport (in pino's transport worker thread) that ships each log line to an
// OpenTelemetry logs endpoint, OTLP/HTTP with the JSON encoding ("http://collector:4318/v1/logs";
// OTLP specification 1.x, "OTLP/HTTP", JSON Protobuf encoding): batches of up to BATCH
// records, sent at once when full or after FLUSH_MS, one request at a time.
// Each pino line is one LogRecord: time, severity (pino level -> SeverityNumber), body (msg),
// every other top-level field an attribute (strings, integers as intValue, numbers, booleans;
// objects as their JSON text). The resource says service.name "arcline" and host.name.
// Loss policy as syslog-transport.ts: lines wait in a bounded queue (`maxLines`) while the
// collector is slow or away; past it new lines are dropped and counted (`dropped`, read by the
// main thread: arcline_log_dropped_total{sink="otlp"}). A failed request (network, 429, 5xx)
// keeps its batch for the next try, backing off from 500 ms to 30 s; a 4xx other than 429
// drops the batch (counted: the collector refused it and would again).

import build from 'pino-abstract-transport';

export interface OtlpOptions {
  /** http(s)://host:port/v1/logs */
  readonly url: string;
  readonly hostname: string;
  readonly maxLines: number;
  /** One BigInt64: lines dropped so far (Atomics). */
  readonly dropped: SharedArrayBuffer;
}

const BATCH = 512;
const FLUSH_MS = 1000;
const TIMEOUT_MS = 10_000;

type AnyValue = { stringValue: string } | { intValue: string } | { doubleValue: number } | { boolValue: boolean };

function anyValue(v: unknown): AnyValue {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return Number.isSafeInteger(v) ? { intValue: String(v) } : { doubleValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  return { stringValue: JSON.stringify(v) ?? 'null' };
}

/** OpenTelemetry SeverityNumber (logs data model) and text of a pino level. */
function severity(level: unknown): [number, string] {
  const l = typeof level === 'number' ? level : 30;
  if (l >= 60) return [21, 'FATAL'];
  if (l >= 50) return [17, 'ERROR'];
  if (l >= 40) return [13, 'WARN'];
  if (l >= 30) return [9, 'INFO'];
  if (l >= 20) return [5, 'DEBUG'];
  return [1, 'TRACE'];
}

/** One OTLP LogRecord (JSON encoding) of a parsed pino line. */
export function logRecord(obj: Record<string, unknown>): Record<string, unknown> {
  const [severityNumber, severityText] = severity(obj.level);
  const time = typeof obj.time === 'number' ? obj.time : Date.now();
  const attributes: { key: string; value: AnyValue }[] = [];
  for (const [key, value] of Object.entries(obj)) {
    if (key === 'level' || key === 'time' || key === 'msg' || value === undefined || value === null) continue;
    attributes.push({ key, value: anyValue(value) });
  }
  return {
    timeUnixNano: `${BigInt(Math.trunc(time)) * 1_000_000n}`,
    severityNumber,
    severityText,
    body: { stringValue: typeof obj.msg === 'string' ? obj.msg : '' },
    attributes,
  };
}

export default async function otlpTransport(opts: OtlpOptions) {
  const dropped = new BigInt64Array(opts.dropped);
  const resource = {
    attributes: [
      { key: 'service.name', value: { stringValue: 'arcline' } },
      { key: 'host.name', value: { stringValue: opts.hostname } },
    ],
  };
  const queue: Record<string, unknown>[] = [];
  let sending = false;
  let closing = false;
  let backoff = 500;
  let timer: NodeJS.Timeout | null = null;

  const schedule = (ms: number) => {
    if (timer === null && !closing) timer = setTimeout(() => void flush(), ms);
  };

  /** Sends one batch; true when it is done with (sent, or refused for good). */
  const post = async (records: Record<string, unknown>[], timeoutMs = TIMEOUT_MS): Promise<boolean> => {
    const body = JSON.stringify({
      resourceLogs: [{ resource, scopeLogs: [{ scope: { name: 'arcline' }, logRecords: records }] }],
    });
    try {
      const res = await fetch(opts.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return true;
      if (res.status !== 429 && res.status < 500) {
        Atomics.add(dropped, 0, BigInt(records.length));
        return true;
      }
      return false;
    } catch {
      return false;
    }
  };

  const flush = async (): Promise<void> => {
    timer = null;
    if (sending) return;
    sending = true;
    try {
      while (queue.length > 0) {
        const batch = queue.slice(0, BATCH);
        if (!(await post(batch))) {
          if (closing) return;
          schedule(backoff);
          backoff = Math.min(backoff * 2, 30_000);
          return;
        }
        backoff = 500;
        queue.splice(0, batch.length);
        if (queue.length < BATCH) break;
      }
      if (queue.length > 0) schedule(FLUSH_MS);
    } finally {
      sending = false;
    }
  };

  return build(
    async (source: AsyncIterable<Record<string, unknown>>) => {
      for await (const obj of source) {
        if (queue.length >= opts.maxLines) {
          Atomics.add(dropped, 0, 1n);
          continue;
        }
        queue.push(logRecord(obj));
        if (queue.length >= BATCH && !sending) void flush();
        else schedule(FLUSH_MS);
      }
    },
    {
      close: async () => {
        closing = true;
        if (timer) clearTimeout(timer);
        // One last try for what waits; shutdown never waits long for a collector.
        if (!sending && queue.length > 0) await post(queue.splice(0, BATCH), 2000);
      },
    },
  );
}
