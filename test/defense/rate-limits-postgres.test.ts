// Rate limits of a cluster (src/defense/rate-limits.ts openRateLimits on PostgreSQL): two nodes
// (two pools on one database) count one budget per client network and per user; a node whose
// database stops answering counts alone in memory instead of failing.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configSchema } from '../../src/config/schema.ts';
import type { Postgres } from '../../src/db/postgres.ts';
import { openRateLimits } from '../../src/defense/rate-limits.ts';
import { databaseForFile } from '../harness/postgres.ts';

const file = databaseForFile(2);
const cfg = (o: Record<string, unknown>) => configSchema.parse({ rate_limits: o }).rate_limits;
const open = (db: Postgres, o: Record<string, unknown>) => openRateLimits(cfg(o), { exempt: () => false }, db);

test('postgres: connections, messages and outbound deliveries count once across two nodes', async () => {
  const o = { connections_per_minute: [2, 100, 100], messages_per_hour: 3, outbound_per_domain_per_minute: 1 };
  const [a, b] = await Promise.all([open(file.pools[0] as Postgres, o), open(file.pools[1] as Postgres, o)]);
  assert.equal(await a.connection('192.0.2.1'), null);
  assert.equal(await b.connection('192.0.2.1'), null);
  assert.equal(await a.connection('192.0.2.1'), 'connections_1', 'the third, on either node');
  assert.equal(await b.connection('192.0.2.1'), 'connections_1', 'refused from memory too');
  assert.equal(await b.connection('192.0.2.2'), null, 'another address');
  for (const r of [a, b, a]) assert.equal(await r.message('u@example.org', '198.51.100.1'), null);
  assert.equal(await b.message('u@example.org', '198.51.100.1'), 'messages_hour');
  assert.equal(await a.outbound('Example.NET'), 0);
  assert.ok((await b.outbound('example.net')) > 0, 'the domain had its delivery of this minute on the other node');
  const rows = await (file.pools[0] as Postgres).rows<{ n: number }>('SELECT count(*)::int AS n FROM rate_limits');
  assert.ok((rows[0]?.n ?? 0) >= 5);
});

test('postgres: a node whose database stops answering counts in memory', async () => {
  const pool = await file.db().open();
  const r = await open(pool, { connections_per_minute: [1, 100, 100] });
  await pool.close();
  assert.equal(await r.connection('203.0.113.1'), null);
  assert.equal(await r.connection('203.0.113.1'), 'connections_1');
});
