// A JMAP EventSource client for the tests (RFC 8620 §7.3): reads the text/event-stream of a GET
// and keeps its `state` events; `next(pred)` resolves with the first one, from the call on,
// that matches (or fails after `ms`), so a test awaits the event it expects instead of sleeping.

import assert from 'node:assert/strict';

/** The `changed` of a StateChange: account id -> type -> state. */
export type Changed = Record<string, Record<string, string>>;
export interface StateChange {
  readonly '@type': 'StateChange';
  readonly changed: Changed;
}

/** `T`: how the caller reads the StateChange objects (their JSON as it came). */
export interface EventStream<T = StateChange> {
  /** Every state event so far, in order. */
  readonly got: T[];
  next(pred: (c: T) => boolean, ms?: number): Promise<T>;
  close(): void;
}

export async function openEventStream<T = StateChange>(
  url: string,
  headers: Record<string, string> = {},
): Promise<EventStream<T>> {
  const ac = new AbortController();
  const r = await fetch(url, { headers, signal: ac.signal });
  assert.equal(r.status, 200);
  const got: T[] = [];
  const waiters = new Set<() => void>();
  void (async () => {
    const dec = new TextDecoder();
    let buf = '';
    for await (const chunk of r.body as AsyncIterable<Uint8Array>) {
      buf += dec.decode(chunk, { stream: true });
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const ev = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = /^data: (.*)$/m.exec(ev)?.[1];
        if (ev.startsWith('event: state') && data) got.push(JSON.parse(data) as T);
        for (const w of waiters) w();
      }
    }
  })().catch(() => {});
  return {
    got,
    next(pred, ms = 10_000) {
      const from = got.length;
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = got.slice(from).find(pred);
          if (!hit) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(hit);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error('no matching state event'));
        }, ms);
        waiters.add(check);
      });
    },
    close: () => ac.abort(),
  };
}
