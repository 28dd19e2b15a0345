// The inbound SMTP threads, seen from the main thread (docs/architecture.md §8): starts them,
// answers their calls (delivery and queueing through the one Dispatcher, an account's usage),
// writes their log lines, passes on a new certificate, gathers their metrics, stops them.
//
// A thread that dies is logged and not replaced (on port 25 it could not bind again once the
// server dropped root); the kernel sends new connections to the threads that are left, since a
// closed socket leaves the SO_REUSEPORT group.

import type { AddressInfo } from 'node:net';
import { Worker } from 'node:worker_threads';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Config } from '../../config/schema.ts';
import { errorMessage, isArclineError } from '../../core/errors.ts';
import type { AccountId } from '../../core/ids.ts';
import { LIMITS } from '../../core/limits.ts';
import type { Logger } from '../../core/log.ts';
import type { SharedSlots } from '../../core/shared-slots.ts';
import type { OffenceSink } from '../../defense/types.ts';
import type { DispatchRequest, DispatchResult } from '../../queue/dispatch.ts';
import type { DmarcRow } from '../../reports/dmarc-aggregate.ts';
import { borrowedFileMessage, bufferMessage } from '../../store/spool.ts';
import type { MailStore } from '../../store/types.ts';
import type { TlsManager } from '../../tls/certs.ts';
import { asBuffer, type Call, type FromThread, type ThreadInit, type ToThread, type WireDispatch } from './protocol.ts';

type Metrics = MetricObjectWithValues<MetricValue<string>>[];

export interface SmtpThreadsDeps {
  readonly config: Config;
  readonly log: Logger;
  /** Where the threads' JSON log lines are written (the main logger's destination). */
  readonly logSink: (lines: string) => void;
  readonly slots: SharedSlots;
}

export interface SmtpThreadsServices {
  readonly store: Pick<MailStore, 'usage'> & {
    /** A copy a thread delivered itself: open mailboxes look at new/, quota figures follow. */
    delivered(account: AccountId, mailbox: string, size: number, path?: string): void;
  };
  readonly dispatcher: { dispatch(req: DispatchRequest): Promise<DispatchResult> };
  readonly tls: TlsManager;
  /** Offences the threads saw (defense/bans.ts). */
  readonly offences?: OffenceSink;
  /** The one connection-rate count of the server (defense/rate-limits.ts): the threads ask it. */
  readonly connectionRate?: (ip: string) => Promise<string | null>;
  /** Whether a Sieve script runs for one of these accounts (queue/sieve-filter.ts). */
  readonly filtered?: (accounts: readonly AccountId[]) => Promise<boolean>;
  /** DMARC report rows a thread counted (reports/dmarc-recorder.ts). */
  readonly dmarcRows?: (rows: readonly DmarcRow[]) => void;
}

interface Thread {
  readonly worker: Worker;
  /** Resolved with the next message of this type. */
  readonly waiters: Map<FromThread['t'], (m: FromThread) => void>;
  alive: boolean;
}

export class SmtpThreads {
  readonly #deps: SmtpThreadsDeps;
  readonly #threads: Thread[] = [];
  #services: SmtpThreadsServices | null = null;
  #bound: AddressInfo[] = [];
  #metricId = 0;
  readonly #metricWaits = new Map<number, (m: Metrics) => void>();

  constructor(deps: SmtpThreadsDeps) {
    this.#deps = deps;
  }

  /** Starts `count` threads and has each bind `addresses` (the first resolves port 0; the
   *  others bind what it got). Call before dropping privileges. */
  async bind(count: number, addresses: readonly string[]): Promise<AddressInfo[]> {
    const first = await this.#spawn(addresses);
    this.#bound = [...first];
    const concrete = first.map((a) => (a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`));
    await Promise.all(Array.from({ length: count - 1 }, () => this.#spawn(concrete)));
    return this.#bound;
  }

  /** Opens each thread's databases and starts serving. */
  async start(services: SmtpThreadsServices): Promise<void> {
    this.#services = services;
    const pair = services.tls.current;
    services.tls.onChange((p) => this.#broadcast({ t: 'tls', tls: { key: p.key, cert: p.cert } }));
    await Promise.all(
      this.#threads.map((t) => {
        const listening = this.#next(t, 'listening');
        this.#send(t, { t: 'start', tls: { key: pair.key, cert: pair.cert } });
        return listening;
      }),
    );
  }

  get bound(): readonly AddressInfo[] {
    return this.#bound;
  }

  /** How many threads are serving. */
  get alive(): number {
    return this.#threads.filter((t) => t.alive).length;
  }

  /** The threads' own metrics (counters of the SMTP service), one list per thread. */
  async metrics(timeoutMs = 2000): Promise<Metrics[]> {
    const live = this.#threads.filter((t) => t.alive);
    return Promise.all(
      live.map(
        (t) =>
          new Promise<Metrics>((resolve) => {
            const id = ++this.#metricId;
            const timer = setTimeout(() => {
              this.#metricWaits.delete(id);
              resolve([]);
            }, timeoutMs);
            this.#metricWaits.set(id, (m) => {
              clearTimeout(timer);
              resolve(m);
            });
            this.#send(t, { t: 'metrics', id });
          }),
      ),
    );
  }

  /** Graceful stop: each thread closes its listeners and ends its sessions within
   *  [server] shutdown_grace (service.ts), then exits. */
  async close(): Promise<void> {
    const grace = this.#deps.config.server.shutdown_grace;
    await Promise.all(
      this.#threads.map(async (t) => {
        if (!t.alive) return;
        const exited = new Promise<void>((resolve) => t.worker.once('exit', () => resolve()));
        this.#send(t, { t: 'close' });
        const timer = setTimeout(() => void t.worker.terminate(), grace + 2000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  #spawn(addresses: readonly string[]): Promise<readonly AddressInfo[]> {
    const init: ThreadInit = { config: this.#deps.config, addresses, slots: this.#deps.slots.init };
    const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
    const worker = new Worker(new URL(`./worker.${ext}`, import.meta.url), {
      workerData: init,
      // The young generation of the main thread's size (bin/arcline.js: 4 MB semi-spaces).
      resourceLimits: { maxYoungGenerationSizeMb: LIMITS.smtp.threadYoungGenerationMb },
    });
    const thread: Thread = { worker, waiters: new Map(), alive: true };
    this.#threads.push(thread);
    const log = this.#deps.log;
    worker.on('message', (m: FromThread) => this.#onMessage(thread, m));
    worker.on('error', (err) => log.error({ err: errorMessage(err), thread: worker.threadId }, 'SMTP thread failed'));
    worker.on('exit', (code) => {
      thread.alive = false;
      const failed = thread.waiters.get('failed');
      failed?.({ t: 'failed', error: `thread exited with code ${code}` });
      if (code !== 0) log.error({ thread: worker.threadId, code }, 'SMTP thread exited');
    });
    return this.#next(thread, 'bound').then((m) => (m as Extract<FromThread, { t: 'bound' }>).addresses);
  }

  /** The thread's next message of type `t`; rejects if it reports a failure first. */
  #next(t: Thread, type: FromThread['t']): Promise<FromThread> {
    return new Promise((resolve, reject) => {
      t.waiters.set(type, (m) => {
        t.waiters.delete(type);
        t.waiters.delete('failed');
        resolve(m);
      });
      t.waiters.set('failed', (m) => {
        t.waiters.delete(type);
        t.waiters.delete('failed');
        const f = m as Extract<FromThread, { t: 'failed' }>;
        reject(Object.assign(new Error(f.error), { code: f.code, address: f.address, port: f.port }));
      });
    });
  }

  #send(t: Thread, m: ToThread): void {
    if (t.alive) t.worker.postMessage(m);
  }

  #broadcast(m: ToThread): void {
    for (const t of this.#threads) this.#send(t, m);
  }

  #onMessage(t: Thread, m: FromThread): void {
    switch (m.t) {
      case 'log':
        this.#deps.logSink(m.lines);
        return;
      case 'offence':
        this.#services?.offences?.offence(m.ip, m.kind);
        return;
      case 'dmarc':
        this.#services?.dmarcRows?.(m.rows);
        return;
      case 'delivered':
        for (const c of m.copies) this.#services?.store.delivered(c.account as AccountId, c.mailbox, c.size, c.path);
        return;
      case 'call':
        this.#answer(m.call).then(
          (value) => this.#send(t, { t: 'reply', id: m.id, ok: true, value }),
          (e: unknown) =>
            this.#send(t, {
              t: 'reply',
              id: m.id,
              ok: false,
              error: { message: errorMessage(e), ...(isArclineError(e) ? { code: e.code } : {}) },
            }),
        );
        return;
      case 'metrics':
        this.#metricWaits.get(m.id)?.(m.metrics);
        this.#metricWaits.delete(m.id);
        return;
      case 'failed':
        if (!t.waiters.has('failed')) this.#deps.log.error({ err: m.error }, 'SMTP thread failed');
        t.waiters.get('failed')?.(m);
        return;
      default:
        t.waiters.get(m.t)?.(m);
    }
  }

  async #answer(call: Call): Promise<unknown> {
    const services = this.#services;
    if (!services) throw new Error('SMTP threads not started');
    if (call.op === 'usage') return services.store.usage(call.account as AccountId);
    if (call.op === 'rate') return services.connectionRate ? services.connectionRate(call.ip) : null;
    if (call.op === 'filtered') return services.filtered ? services.filtered(call.accounts as AccountId[]) : false;
    return services.dispatcher.dispatch(fromWire(call.req));
  }
}

function fromWire(w: WireDispatch): DispatchRequest {
  const m = w.message;
  return {
    ...w,
    local: w.local.map((t) => ({ ...t, account: t.account as AccountId, prefix: asBuffer(t.prefix) })),
    remotePrefix: asBuffer(w.remotePrefix),
    message: 'bytes' in m ? bufferMessage(asBuffer(m.bytes)) : borrowedFileMessage(m.path, m.size),
  };
}
