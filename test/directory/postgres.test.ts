// The directory on PostgreSQL: the contract every backend passes, and what several nodes on one
// database need (directory/pg-snapshot.ts): a change on one node reaches the others' in-memory
// copies through NOTIFY, the login path reads the database at once, and a lost LISTEN
// connection or a missed notification ends in a full reload.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAddress } from '../../src/core/address.ts';
import type { AccountId, DomainName } from '../../src/core/ids.ts';
import { silentLogger } from '../../src/core/log.ts';
import { verifyPasswordHash } from '../../src/directory/password.ts';
import { PostgresDirectory } from '../../src/directory/postgres.ts';
import type { TestDatabase } from '../harness/postgres.ts';
import { freshDatabaseForFile } from '../harness/postgres.ts';
import { runDirectoryContract } from './contract.ts';

const database = freshDatabaseForFile;

/** A node: its own pool and LISTEN connection on the shared database. */
async function node(t: TestDatabase): Promise<PostgresDirectory> {
  return PostgresDirectory.open({
    db: await t.open(),
    listen: { url: t.url, connectTimeoutMs: 5000, applicationName: 'arcline-test' },
    bcryptCost: 4,
    log: silentLogger(),
  });
}

runDirectoryContract('postgres', async () => {
  const t = await database();
  return {
    dir: await node(t),
    reopen: () => node(t),
    caughtUp: (d) => (d as PostgresDirectory).sync(),
  };
});

/** Resolves when cond() holds; fails after `ms`. Returns the time it took. */
async function until(cond: () => Promise<boolean>, ms: number, what: string): Promise<number> {
  const start = performance.now();
  while (!(await cond())) {
    if (performance.now() - start > ms) assert.fail(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
  return performance.now() - start;
}

const rcpt = (s: string) => {
  const a = parseAddress(s);
  assert.ok(a);
  return a;
};

async function canLogIn(d: PostgresDirectory, name: string, password: string): Promise<boolean> {
  const account = d.loginName(name);
  const hash = account ? await d.passwordHash(account) : null;
  return hash !== null && (await verifyPasswordHash(hash, password));
}

test('postgres: two nodes on one database: a user added on A logs in on B at once and is deliverable within a second', async (tc) => {
  const t = await database();
  const [a, b] = [await node(t), await node(t)];
  // Closed even when an assertion fails (their LISTEN connections would keep the file running).
  tc.after(() => {
    a.close();
    b.close();
  });
  await a.addDomain('Example.TEST');
  await a.addUser('New@Example.test', { password: 'secret-1' });
  // The login path reads the database: no waiting at all.
  assert.equal(await canLogIn(b, 'new@EXAMPLE.test', 'secret-1'), true);
  const ms = await until(
    async () => (await b.resolveRecipient(rcpt('new@example.test'))).kind === 'deliver',
    1000,
    'B delivers to the new user',
  );
  console.log(`# B's copy saw A's new user after ${ms.toFixed(1)} ms`);
  assert.deepEqual(await b.resolveRecipient(rcpt('postmaster@example.test')), {
    kind: 'deliver',
    accounts: ['new@example.test'],
    remote: [],
  });

  // Disabled on A: refused on B at once; a new password on A is the one B checks.
  await a.setEnabled('new@example.test', false);
  assert.equal(await canLogIn(b, 'new@example.test', 'secret-1'), false);
  await a.setEnabled('new@example.test', true);
  await a.setPassword('new@example.test', 'secret-2');
  assert.equal(await canLogIn(b, 'new@example.test', 'secret-1'), false);
  assert.equal(await canLogIn(b, 'new@example.test', 'secret-2'), true);

  // Every kind of change reaches B's copy (sync: wait for the NOTIFY of the latest one).
  await a.setQuota('new@example.test', 5000);
  await a.addAllowedSender('new@example.test', 'friends.test');
  await a.addAlias('team@example.test', ['new@example.test', 'far@remote.test']);
  await a.setCatchAll('example.test', 'new@example.test');
  await b.sync();
  assert.equal(await b.quota('new@example.test' as AccountId), 5000);
  assert.equal(await b.allowsSender('new@example.test' as AccountId, ['x@mail.friends.test']), true);
  const team = await b.resolveRecipient(rcpt('team+x@example.test'));
  assert.deepEqual(team.kind === 'deliver' ? [team.accounts, team.remote.map((r) => r.domain)] : null, [
    ['new@example.test'],
    ['remote.test'],
  ]);
  assert.equal((await b.resolveRecipient(rcpt('anyone@example.test'))).kind, 'deliver');
  assert.equal(
    await b.maySendAs(
      { accountId: 'new@example.test' as AccountId, address: rcpt('new@example.test') },
      rcpt('team@example.test'),
    ),
    true,
  );

  // The delay from A's commit to B's copy, over 50 changes.
  const delays: number[] = [];
  for (let i = 0; i < 50; i++) {
    await a.setQuota('new@example.test', 1000 + i);
    delays.push(await until(async () => b.version === a.version, 1000, `B at A's version ${a.version}`));
  }
  delays.sort((x, y) => x - y);
  console.log(`# NOTIFY to B's copy: median ${delays[25]?.toFixed(2)} ms, max ${delays[49]?.toFixed(2)} ms`);

  await a.setCatchAll('example.test', null);
  await a.deleteAlias('team@example.test');
  await a.deleteAlias('postmaster@example.test');
  await a.deleteAlias('abuse@example.test');
  await a.deleteUser('new@example.test');
  await a.deleteDomain('example.test');
  // Both copies at the last commit: A's own copy follows its commits by the same notification.
  await a.sync();
  await b.sync();
  assert.equal(await b.isLocalDomain('example.test' as DomainName), false);
  assert.equal(await b.quota('new@example.test' as AccountId), null);
  assert.equal(b.version, a.version);
});

test('postgres: a lost LISTEN connection is re-established and the copy reloaded', async () => {
  const t = await database();
  const [a, b] = [await node(t), await node(t)];
  const admin = await t.open();
  await a.addDomain('one.test');
  await b.sync();
  // Cut every LISTEN connection of the database (both nodes').
  const cut = await admin.rows(
    `SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
     WHERE datname = current_database() AND application_name LIKE '%/directory-listen'`,
  );
  assert.equal(cut.length, 2);
  // Changes while B is not listening: seen once it is back (the reload after LISTEN).
  await a.addDomain('two.test');
  await until(async () => b.isLocalDomain('two.test' as DomainName), 5000, 'B reconnected and reloaded');
  // And notifications flow again.
  await a.addDomain('three.test');
  await until(async () => b.isLocalDomain('three.test' as DomainName), 1000, 'B hears NOTIFY again');
  a.close();
  b.close();
});

test('postgres: a change without its notification (a skipped version) is found by the next one or by sync', async () => {
  const t = await database();
  const b = await node(t);
  const raw = await t.open();
  // Another program writes and bumps the version without NOTIFY.
  await raw.query("INSERT INTO directory_domains (name, created_at) VALUES ('quiet.test', 1)");
  await raw.query('UPDATE directory_version SET v = v + 1');
  assert.equal(await b.isLocalDomain('quiet.test' as DomainName), false);
  // sync() waits for a NOTIFY that never comes, then reloads everything.
  await b.sync();
  assert.equal(await b.isLocalDomain('quiet.test' as DomainName), true);

  await raw.query("INSERT INTO directory_domains (name, created_at) VALUES ('quiet2.test', 2)");
  await raw.query('UPDATE directory_version SET v = v + 1');
  // The next notified change skips a version: B reloads everything, not just its keys.
  const a = await node(t);
  await a.addDomain('loud.test');
  await until(async () => b.isLocalDomain('loud.test' as DomainName), 1000, 'B saw loud.test');
  assert.equal(await b.isLocalDomain('quiet2.test' as DomainName), true);
  a.close();
  b.close();
});

test('postgres: concurrent first users of a domain on two nodes: one gets the role aliases, both exist', async () => {
  const t = await database();
  const [a, b] = [await node(t), await node(t)];
  await a.addDomain('race.test');
  const HASH = '$2b$04$v75HHA8nRobdTEBega3sKOoKtdDAUuqvhlF5UvPqrB6lkKexmES8K';
  await Promise.all([
    a.addUserWithHash('one@race.test', { passwordHash: HASH }),
    b.addUserWithHash('two@race.test', { passwordHash: HASH }),
  ]);
  const aliases = await a.listAliases('race.test');
  assert.equal(aliases.length, 2);
  assert.equal(new Set(aliases.map((x) => x.destinations.join())).size, 1, 'both role aliases go to one user');
  // The same address on both nodes at once: one wins, the other is told it exists.
  const results = await Promise.allSettled([
    a.addUserWithHash('same@race.test', { passwordHash: HASH }),
    b.addUserWithHash('same@race.test', { passwordHash: HASH }),
  ]);
  assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
  a.close();
  b.close();
});
