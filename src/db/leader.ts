// Leader tasks (issue #18, docs/cluster.md "Leader tasks"): work that must run on one node of
// the cluster at a time (ACME renewal, the blocklist monitor, report sending, sweeps of shared
// tables) runs where a PostgreSQL session advisory lock is held, and moves when that node dies.
//
// - One dedicated session per runner (db/session.ts) holds the locks of the tasks it runs:
//   pg_try_advisory_lock(LOCK_CLASS, hashtext('leader:' || name)). A session lock lives exactly
//   as long as the backend: when the node dies, is cut off or its session is terminated,
//   PostgreSQL releases it, and another runner takes it at its next attempt.
// - Every `intervalMs` (minus up to 10% jitter, so runners started together do not stay in
//   step) the runner makes sure its session answers (SELECT 1 within the ping deadline) and tries
//   the locks of the tasks it does not hold: a task moves within one interval of its lock being
//   released.
// - Fencing: a task's run(signal) is called once the lock is taken and should work until the
//   signal fires; the signal fires as soon as the session is known lost (an 'error' or 'end'
//   event, an unanswered ping) or at stop(). Between a silent network cut and the next ping a
//   task may still run while another node has taken over: tasks keep their effects idempotent
//   (renewing a certificate twice, sweeping twice) and never rely on being alone for
//   correctness, only for economy.
// - A run that returns or throws gives its lock back; the task is tried again at the next
//   interval (here or on another node). A run still winding down after its signal fired is
//   awaited before the task may start again on this node.
// - A runner that lost its session makes a new one at once but competes again only after one
//   and a half intervals: the others (trying every interval) get the first chance, so a task
//   moves away from a node whose connection flaps instead of returning to it.

import { setTimeout as delay } from 'node:timers/promises';
import type pg from 'pg';
import { ArclineError, errorMessage } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { LOCK_CLASS } from './postgres.ts';
import { backendPid, closeSession, openSession, ping, type SessionOptions } from './session.ts';

export interface LeaderTask {
  /** Unique in the cluster: the lock is hashtext('leader:' + name). */
  readonly name: string;
  /** Works while this node leads the task; returns (promptly) once `signal` fires. */
  readonly run: (signal: AbortSignal) => Promise<void>;
}

const TASK_NAME = /^[a-z][a-z0-9_.-]{0,62}$/;

/** A LeaderTask running `fn` now and then every `everyMs` while it leads (a sweep). */
export function periodic(name: string, everyMs: number, fn: (signal: AbortSignal) => Promise<void>): LeaderTask {
  return {
    name,
    async run(signal) {
      while (!signal.aborted) {
        await fn(signal);
        // Not keeping the process alive: the owner stops the runner at shutdown.
        await delay(everyMs, undefined, { signal, ref: false }).catch(() => {});
      }
    },
  };
}

export interface LeaderOptions {
  readonly session: SessionOptions;
  readonly intervalMs: number;
  readonly log?: Logger;
  /** Told when a task starts (true) or stops (false) running here. */
  readonly onChange?: (name: string, leading: boolean) => void;
  readonly random?: () => number;
}

interface Slot {
  readonly task: LeaderTask;
  /** The current run's controller while this node holds the lock. */
  held: AbortController | null;
  /** The current or last run, until it has returned. */
  running: Promise<void> | null;
}

export class LeaderRunner {
  readonly #o: LeaderOptions;
  readonly #random: () => number;
  readonly #slots = new Map<string, Slot>();
  #client: pg.Client | null = null;
  #timer: NodeJS.Timeout | null = null;
  #ticking: Promise<void> | null = null;
  #stopped = false;
  #attempts = 0;
  #failing = false;
  /** After a lost session: no lock is tried before this time (ms since the epoch). */
  #holdUntil = 0;

  constructor(o: LeaderOptions) {
    this.#o = o;
    this.#random = o.random ?? Math.random;
  }

  add(task: LeaderTask): this {
    if (!TASK_NAME.test(task.name)) throw new ArclineError('INVALID', `not a leader task name: ${task.name}`);
    if (this.#slots.has(task.name)) throw new ArclineError('EXISTS', `leader task ${task.name} added twice`);
    this.#slots.set(task.name, { task, held: null, running: null });
    return this;
  }

  /** Tries at once, then every interval. */
  start(): this {
    this.#tick();
    return this;
  }

  /** The tasks this node leads now. */
  leading(): string[] {
    return [...this.#slots.values()].filter((s) => s.held !== null).map((s) => s.task.name);
  }

  /** Rounds of attempts made (tests await them). */
  get attempts(): number {
    return this.#attempts;
  }

  /** The backend of the lock session (tests terminate it), or null without one. */
  get backendPid(): number | null {
    return this.#client ? backendPid(this.#client) : null;
  }

  /** Fires every signal, waits up to LIMITS.cluster.leaderStopGraceMs for the runs to return,
   *  then ends the session (which releases the locks). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#ticking;
    for (const s of this.#slots.values()) this.#release(s, 'stopping');
    const runs = [...this.#slots.values()].map((s) => s.running).filter((r) => r !== null);
    const grace = new AbortController();
    await Promise.race([
      Promise.all(runs),
      delay(LIMITS.cluster.leaderStopGraceMs, undefined, { signal: grace.signal }),
    ]).catch(() => {});
    grace.abort();
    const c = this.#client;
    this.#client = null;
    if (c) await c.end().catch(() => {});
  }

  #tick(): void {
    if (this.#stopped) return;
    this.#ticking = this.#attempt()
      .then(
        () => {
          if (this.#failing) this.#o.log?.info({}, 'cluster: leader session back');
          this.#failing = false;
        },
        (e: unknown) => {
          // Once per streak: PostgreSQL away for an hour is not 360 lines.
          if (!this.#failing) this.#o.log?.warn({ err: errorMessage(e) }, 'cluster: leader attempt failed');
          this.#failing = true;
        },
      )
      .finally(() => {
        this.#ticking = null;
        this.#attempts++;
        if (this.#stopped) return;
        const ms = Math.round(this.#o.intervalMs * (1 - 0.1 * this.#random()));
        this.#timer = setTimeout(() => this.#tick(), ms);
        this.#timer.unref();
      });
  }

  async #attempt(): Promise<void> {
    let c = this.#client;
    if (c && !(await ping(c, LIMITS.cluster.pingTimeoutMs))) {
      this.#lost(c, new Error('no answer to a ping'));
      c = null;
    }
    if (!c) {
      c = await openSession(this.#o.session, 'leader');
      const client = c;
      c.on('error', (e) => this.#lost(client, e));
      c.on('end', () => this.#lost(client, null));
      if (this.#stopped) {
        closeSession(c);
        return;
      }
      this.#client = c;
    }
    if (Date.now() < this.#holdUntil) return;
    for (const s of this.#slots.values()) {
      if (s.held || s.running || this.#stopped || this.#client !== c) continue;
      const r = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', [
        LOCK_CLASS,
        `leader:${s.task.name}`,
      ]);
      if (r.rows[0]?.ok !== true) continue;
      // The session may have died while the answer was on its way: then the lock is gone too.
      if (this.#client !== c || this.#stopped) return;
      this.#begin(s, c);
    }
  }

  #begin(s: Slot, c: pg.Client): void {
    const ac = new AbortController();
    s.held = ac;
    const name = s.task.name;
    this.#o.log?.info({ task: name }, 'cluster: leading task');
    this.#o.onChange?.(name, true);
    s.running = Promise.resolve()
      .then(() => s.task.run(ac.signal))
      .catch((e: unknown) => {
        if (!ac.signal.aborted) this.#o.log?.error({ task: name, err: errorMessage(e) }, 'cluster: leader task failed');
      })
      .finally(() => {
        s.running = null;
        if (s.held !== ac) return; // lost or stopped: already released
        // Returned on its own: give the lock back; the next interval tries again.
        this.#release(s, 'returned');
        if (this.#client === c)
          c.query('SELECT pg_advisory_unlock($1, hashtext($2))', [LOCK_CLASS, `leader:${name}`]).catch(() => {});
      });
  }

  #release(s: Slot, why: string): void {
    const ac = s.held;
    if (!ac) return;
    s.held = null;
    ac.abort(new ArclineError('TEMPORARY', `leader task ${s.task.name}: ${why}`));
    this.#o.log?.info({ task: s.task.name, why }, 'cluster: no longer leading task');
    this.#o.onChange?.(s.task.name, false);
  }

  #lost(c: pg.Client, e: Error | null): void {
    if (this.#client !== c) return;
    this.#client = null;
    this.#holdUntil = Date.now() + 1.5 * this.#o.intervalMs;
    closeSession(c);
    if (!this.#stopped)
      this.#o.log?.warn({ err: e ? errorMessage(e) : 'connection ended' }, 'cluster: leader session lost');
    for (const s of this.#slots.values()) this.#release(s, 'lock session lost');
  }
}
