// db/postgres.ts against the machine's PostgreSQL: migrations (once, in order, concurrently from
// two pools, newer schema refused), transactions (rollback, retry after a serialization
// failure), int8 as numbers, and a clear error for an unreachable server.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isArclineError } from '../../src/core/errors.ts';
import { Postgres, redact } from '../../src/db/postgres.ts';
import { freshDatabase, type TestDatabase } from '../harness/postgres.ts';

describe('Postgres', () => {
  let t: TestDatabase;
  before(async () => {
    t = await freshDatabase();
  });
  after(() => t.drop());

  test('migrations: applied once, in order, by one of two pools starting together', async () => {
    const [a, b] = await Promise.all([t.open(), t.open()]);
    const steps = [
      'CREATE TABLE m (id INT8 PRIMARY KEY, v TEXT NOT NULL)',
      "INSERT INTO m VALUES (9007199254740991, 'x')",
      'ALTER TABLE m ADD COLUMN w INT NOT NULL DEFAULT 0',
    ];
    await Promise.all([a.migrate('demo', steps), b.migrate('demo', steps)]);
    assert.equal(await a.schemaVersion('demo'), 3);
    const rows = await a.rows<{ id: number; v: string; w: number }>('SELECT id, v, w FROM m');
    assert.deepEqual(rows, [{ id: 9007199254740991, v: 'x', w: 0 }]);
    // Again: nothing to do; a shorter list (an older arcline) is refused.
    await a.migrate('demo', steps);
    await assert.rejects(a.migrate('demo', steps.slice(0, 2)), (e) => isArclineError(e, 'CONFIG'));
    // A failing migration leaves the version where it was.
    await assert.rejects(a.migrate('demo', [...steps, 'ALTER TABLE nope ADD COLUMN x INT']));
    assert.equal(await b.schemaVersion('demo'), 3);
    assert.equal(await b.schemaVersion('other'), 0);
  });

  test('tx: rolled back on error, retried after a serialization failure', async () => {
    const db = await t.open();
    await db.query('CREATE TABLE c (k TEXT PRIMARY KEY, n INT NOT NULL)');
    await db.query("INSERT INTO c VALUES ('a', 0)");
    await assert.rejects(
      db.tx(async (q) => {
        await q.query("UPDATE c SET n = 100 WHERE k = 'a'");
        throw new Error('no');
      }),
    );
    assert.equal((await db.rows<{ n: number }>("SELECT n FROM c WHERE k = 'a'"))[0]?.n, 0);
    // 20 serializable increments at once: conflicts are retried, every increment lands.
    const inc = () =>
      db.tx(
        async (q) => {
          const n = (await q.query<{ n: number }>("SELECT n FROM c WHERE k = 'a'")).rows[0]?.n ?? 0;
          await q.query("UPDATE c SET n = $1 WHERE k = 'a'", [n + 1]);
        },
        { isolation: 'serializable' },
      );
    const results = await Promise.allSettled(Array.from({ length: 20 }, inc));
    const done = results.filter((r) => r.status === 'fulfilled').length;
    assert.equal((await db.rows<{ n: number }>("SELECT n FROM c WHERE k = 'a'"))[0]?.n, done);
    // No lost update: the counter is exactly the number of transactions that committed.
    assert.ok(done >= 10, `${done} of 20 increments landed`);
  });

  test('an unreachable server is a TEMPORARY error naming the URL without its password', async () => {
    await assert.rejects(
      Postgres.open({
        url: 'postgres://u:secret@127.0.0.1:9/x',
        poolSize: 2,
        connectTimeoutMs: 2000,
        statementTimeoutMs: 1000,
        applicationName: 't',
      }),
      (e) => isArclineError(e, 'TEMPORARY') && !e.message.includes('secret') && e.message.includes('127.0.0.1:9'),
    );
    assert.equal(redact('postgres://u:pw@h/db'), 'postgres://u:***@h/db');
  });
});
