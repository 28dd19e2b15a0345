// db/leader.ts against the machine's PostgreSQL: of two runners (two nodes) one leads a task;
// when its lock session is terminated (pg_terminate_backend, as when its node dies) its run's
// signal fires and the other takes the task within one interval; a run that returns gives the
// lock back; stop() ends the runs and frees the task for the other node.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LeaderRunner, type LeaderTask, periodic } from '../../src/db/leader.ts';
import type { Postgres } from '../../src/db/postgres.ts';
import { freshDatabase, type TestDatabase } from '../harness/postgres.ts';
import { waitUntil } from '../harness/submit.ts';

const INTERVAL = 400;

describe('LeaderRunner', () => {
  let t: TestDatabase;
  let db: Postgres;
  const runners: LeaderRunner[] = [];
  const runner = (changes: [string, boolean][] = []) => {
    const r = new LeaderRunner({
      session: { url: t.url, connectTimeoutMs: 5000, applicationName: 'arcline-test' },
      intervalMs: INTERVAL,
      onChange: (name, leading) => changes.push([name, leading]),
    });
    runners.push(r);
    return r;
  };
  before(async () => {
    t = await freshDatabase();
    db = await t.open();
  });
  after(async () => {
    await Promise.all(runners.map((r) => r.stop()));
    await t.drop();
  });

  test('one of two leads; its session killed, the other takes over within the interval', async () => {
    const signals: { node: string; signal: AbortSignal }[] = [];
    const task = (node: string): LeaderTask => ({
      name: 'acme',
      run: (signal) =>
        new Promise<void>((resolve) => {
          signals.push({ node, signal });
          signal.addEventListener('abort', () => resolve());
        }),
    });
    const a = runner().add(task('a')).start();
    await waitUntil('a to lead', async () => a.leading().includes('acme'));
    const b = runner().add(task('b')).start();
    const seen = b.attempts;
    await waitUntil('two attempts of b', async () => b.attempts >= seen + 2);
    assert.deepEqual(b.leading(), []);
    assert.deepEqual(
      signals.map((s) => s.node),
      ['a'],
    );
    // The lock is a's session's, as pg_locks shows.
    const holder = await db.rows<{ pid: number }>(
      // This database's locks only: pg_locks is the whole server's (other test files' nodes).
      "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
      [0x4172636c],
    );
    assert.deepEqual(
      holder.map((h) => h.pid),
      [a.backendPid],
    );
    const t0 = performance.now();
    await db.query('SELECT pg_terminate_backend($1)', [a.backendPid]);
    await waitUntil('b to lead', async () => b.leading().includes('acme'));
    const took = performance.now() - t0;
    console.log(`# leader task moved ${took.toFixed(0)} ms after its session died (interval ${INTERVAL} ms)`);
    // b's next attempt after the kill takes it: at most an interval and an attempt's round trips
    // later (bounded generously here: the machine is shared with other tests).
    assert.ok(took < 2 * INTERVAL, `${took} ms`);
    assert.equal(signals[0]?.signal.aborted, true, "a's run was told");
    assert.deepEqual(a.leading(), []);
    assert.equal(signals[1]?.node, 'b');
    // a comes back (a new session) but b holds the lock now.
    const seenA = a.attempts;
    await waitUntil('two more attempts of a', async () => a.attempts >= seenA + 2);
    assert.deepEqual(a.leading(), []);
    assert.ok(a.backendPid !== null);
    // b stops: its run ends, a takes over.
    await b.stop();
    assert.equal(signals[1]?.signal.aborted, true);
    await waitUntil('a to lead again', async () => a.leading().includes('acme'));
    await a.stop();
  });

  test('a run that returns gives the lock back; periodic tasks run until their signal', async () => {
    let ran = 0;
    const changes: [string, boolean][] = [];
    const r = runner(changes)
      .add({
        name: 'once',
        run: async () => {
          ran++;
        },
      })
      .add(periodic('sweep', 20, async () => {}))
      .start();
    await waitUntil('two runs of once', async () => ran >= 2);
    await waitUntil('sweep to lead', async () => r.leading().includes('sweep'));
    assert.deepEqual(changes.filter(([n]) => n === 'once').slice(0, 2), [
      ['once', true],
      ['once', false],
    ]);
    await r.stop();
    assert.deepEqual(r.leading(), []);
    assert.deepEqual(changes.at(-1), ['sweep', false]);
    assert.throws(() => r.add({ name: 'Bad Name', run: async () => {} }));
  });
});
