import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import { parseAddress } from '../../src/core/address.ts';
import type { AccountId, DomainName } from '../../src/core/ids.ts';
import { LIMITS } from '../../src/core/limits.ts';
import { silentLogger } from '../../src/core/log.ts';
import { openSqliteDirectory } from '../../src/directory/sqlite.ts';
import { runDirectoryContract } from './contract.ts';

/** A bcrypt hash (cost 4) of "pw": the test needs no hashing. */
const HASH = '$2b$04$v75HHA8nRobdTEBega3sKOoKtdDAUuqvhlF5UvPqrB6lkKexmES8K';

runDirectoryContract('sqlite', async () => {
  const path = join(await mkdtemp(join(tmpdir(), 'arcline-dir-')), 'state', 'arcline.db');
  const open = () => openSqliteDirectory({ path, bcryptCost: 4, log: silentLogger() });
  return { dir: open(), reopen: async () => open() };
});

// The lookup cache (sqlite.ts) must never hide a change another process committed: the CLI
// opens its own connection to the same file while the server runs.
test('sqlite: a change committed by another connection (the CLI) is seen by the lookups that follow', async () => {
  // The cache asks SQLite at most once per LIMITS.directory.freshnessMs: a lookup that starts
  // that long after another connection's commit sees it.
  const settle = () => new Promise((r) => setTimeout(r, LIMITS.directory.freshnessMs + 1));
  const path = join(await mkdtemp(join(tmpdir(), 'arcline-dir-')), 'state', 'arcline.db');
  const server = openSqliteDirectory({ path, bcryptCost: 4, log: silentLogger() });
  const cli = () => openSqliteDirectory({ path, bcryptCost: 4, log: silentLogger() });
  const bob = parseAddress('bob@example.test');
  assert.ok(bob);
  let admin = cli();
  await admin.addDomain('example.test');
  await admin.addUserWithHash('bob@example.test', { passwordHash: HASH, quotaBytes: 1000 });
  admin.close();
  // Warm the cache, then change everything it holds from other connections.
  assert.deepEqual(await server.resolveRecipient(bob), { kind: 'deliver', accounts: ['bob@example.test'], remote: [] });
  assert.equal(await server.quota('bob@example.test' as AccountId), 1000);
  assert.equal(await server.allowsSender('bob@example.test' as AccountId, ['a@friends.test']), false);

  admin = cli();
  await admin.setQuota('bob@example.test', 2000);
  await admin.addAllowedSender('bob@example.test', 'friends.test');
  await settle();
  assert.equal(await server.quota('bob@example.test' as AccountId), 2000);
  assert.equal(await server.allowsSender('bob@example.test' as AccountId, ['a@friends.test']), true);

  await admin.addAlias('bob@example.test', ['carol@remote.test']);
  await settle();
  const viaAlias = await server.resolveRecipient(bob);
  assert.deepEqual(viaAlias.kind === 'deliver' ? viaAlias.remote.map((a) => `${a.local}@${a.domain}`) : null, [
    'carol@remote.test',
  ]);
  await admin.deleteAlias('bob@example.test');

  // A bare connection, as any other program writing the file would be.
  const raw = new DatabaseSync(path);
  raw.exec("DELETE FROM allowed_senders; DELETE FROM aliases; DELETE FROM users WHERE address = 'bob@example.test'");
  raw.close();
  await settle();
  assert.deepEqual(await server.resolveRecipient(bob), { kind: 'unknown-user' });
  assert.equal(await server.quota('bob@example.test' as AccountId), null);
  await admin.deleteDomain('example.test');
  await settle();
  assert.equal(await server.isLocalDomain('example.test' as DomainName), false);
  admin.close();

  // Our own changes (same connection: data_version does not move for them) are seen too.
  await server.addDomain('example.test');
  assert.equal(await server.isLocalDomain('example.test' as DomainName), true);
  await server.addUserWithHash('bob@example.test', { passwordHash: HASH });
  assert.deepEqual(await server.resolveRecipient(bob), { kind: 'deliver', accounts: ['bob@example.test'], remote: [] });
  await server.deleteUser('bob@example.test');
  assert.deepEqual(await server.resolveRecipient(bob), { kind: 'unknown-user' });
  server.close();
});
