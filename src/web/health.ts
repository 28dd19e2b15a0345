// Health endpoints for orchestrators and load balancers (docs/operations.md), on every HTTP and
// HTTPS listener, any host name:
//   GET /healthz/live   200 "live" while the process answers HTTP at all (no check: a liveness
//                       probe that fails on a full disk would only get the server restarted).
//   GET /healthz/ready  200 when every readiness check passes, else 503; the JSON body names each
//                       check and whether it passed, never why (reasons can carry paths: they go
//                       to the log, once per change of state).
// Bounded cost: one round of checks at a time (requests meanwhile share it), its answer reused
// for LIMITS.http.healthCacheMs after it ends (a storm of probes costs one round per interval),
// and each check given up after
// LIMITS.http.healthCheckTimeoutMs (a hung disk answers 503, it does not pile up requests).
// The checks themselves come from the composition root (server.ts): this file touches no file
// and no database.

import { errorMessage } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { type Route, readOnly, text } from './routes.ts';

export interface HealthCheck {
  readonly name: string;
  /** Resolves when healthy; throws (or rejects) with the reason otherwise. */
  run(): Promise<void> | void;
}

export interface CheckResult {
  readonly name: string;
  readonly ok: boolean;
  readonly ms: number;
}

export interface ReadinessReport {
  readonly ready: boolean;
  readonly checks: readonly CheckResult[];
}

export class Readiness {
  readonly #checks: readonly HealthCheck[];
  readonly #log: Logger;
  readonly #cacheMs: number;
  readonly #timeoutMs: number;
  /** The last finished round and when it finished (performance.now()). */
  #last: { at: number; report: ReadinessReport } | null = null;
  /** The round running now, which every request arriving meanwhile shares. */
  #running: Promise<ReadinessReport> | null = null;
  /** The reason each check last failed with ('' when it passed): logged when it changes. */
  readonly #reasons = new Map<string, string>();

  constructor(checks: readonly HealthCheck[], log: Logger, opts: { cacheMs?: number; timeoutMs?: number } = {}) {
    this.#checks = checks;
    this.#log = log;
    this.#cacheMs = opts.cacheMs ?? LIMITS.http.healthCacheMs;
    this.#timeoutMs = opts.timeoutMs ?? LIMITS.http.healthCheckTimeoutMs;
  }

  /** The running round's report, else the last one if it finished less than the cache interval
   *  ago, else a new round's. */
  report(): Promise<ReadinessReport> {
    if (this.#running) return this.#running;
    const last = this.#last;
    if (last && performance.now() - last.at < this.#cacheMs) return Promise.resolve(last.report);
    const running = this.#round().then((report) => {
      this.#last = { at: performance.now(), report };
      this.#running = null;
      return report;
    });
    this.#running = running;
    return running;
  }

  async #round(): Promise<ReadinessReport> {
    const checks = await Promise.all(this.#checks.map((c) => this.#run(c)));
    return { ready: checks.every((c) => c.ok), checks };
  }

  async #run(check: HealthCheck): Promise<CheckResult> {
    const start = performance.now();
    let reason = '';
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.resolve().then(() => check.run()),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${this.#timeoutMs} ms`)), this.#timeoutMs);
        }),
      ]);
    } catch (e) {
      reason = errorMessage(e) || 'failed';
    } finally {
      clearTimeout(timer);
    }
    const before = this.#reasons.get(check.name) ?? '';
    if (reason !== before) {
      if (reason) this.#log.warn({ check: check.name, err: reason }, 'readiness check failed');
      else this.#log.info({ check: check.name }, 'readiness check passes again');
      this.#reasons.set(check.name, reason);
    }
    return { name: check.name, ok: reason === '', ms: Math.round((performance.now() - start) * 10) / 10 };
  }
}

export const LIVE_PATH = '/healthz/live';
export const READY_PATH = '/healthz/ready';

export function healthRoute(readiness: Readiness): Route {
  return async (req) => {
    if (req.path === LIVE_PATH) return readOnly(req) ?? text(200, 'live\n');
    if (req.path !== READY_PATH) return null;
    const refused = readOnly(req);
    if (refused) return refused;
    const r = await readiness.report();
    const body = {
      status: r.ready ? 'ready' : 'not ready',
      checks: Object.fromEntries(r.checks.map((c) => [c.name, { ok: c.ok, ms: c.ms }])),
    };
    return {
      status: r.ready ? 200 : 503,
      headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
      body: `${JSON.stringify(body)}\n`,
    };
  };
}
