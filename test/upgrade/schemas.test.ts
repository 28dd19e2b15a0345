// Upgrades (docs/upgrading.md): databases as release 0.1.0 left them (test/fixtures/schema-0.1.0,
// dumps of what that release's server wrote) open with the current code, migrated forward, with
// their data intact; a database from a newer schema than the code knows is refused and left as
// it was; a migration that fails leaves the database at the version before it.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import { silentLogger } from '../../src/core/log.ts';
import { openDatabase, schemaVersion } from '../../src/core/sqlite.ts';
import { openSqliteDirectory } from '../../src/directory/sqlite.ts';
import { QueueStore } from '../../src/queue/store.ts';
import { MailIndex } from '../../src/store/index/db.ts';

const FIXTURES = join(import.meta.dirname, '../fixtures/schema-0.1.0');

/** Creates `{dir}/{name}.db` from the release's dump; returns its path and schema version. */
async function fromFixture(dir: string, name: string): Promise<{ path: string; version: number }> {
  const path = join(dir, `${name}.db`);
  const db = new DatabaseSync(path, { enableForeignKeyConstraints: false });
  db.exec(await readFile(join(FIXTURES, `${name}.sql`), 'utf8'));
  const version = schemaVersion(db);
  db.close();
  return { path, version };
}

function versionOf(path: string): number {
  const db = new DatabaseSync(path);
  try {
    return schemaVersion(db);
  } finally {
    db.close();
  }
}

/** Opens the database the way its store does. */
const OPENERS: Record<string, (path: string, dir: string) => { close(): void }> = {
  arcline: (path) => openSqliteDirectory({ path, bcryptCost: 4, log: silentLogger() }),
  mailindex: (path) => new MailIndex(path),
  queue: (_path, dir) => new QueueStore({ stateDir: dir, log: silentLogger() }),
};

describe('schemas of release 0.1.0', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arcline-upgrade-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('the directory database: domains, users with hash and quota, aliases, allowed senders', async () => {
    const d = await mkdtemp(join(dir, 'dir-'));
    const { path, version } = await fromFixture(d, 'arcline');
    const directory = openSqliteDirectory({ path, bcryptCost: 4, log: silentLogger() });
    try {
      assert.ok(versionOf(path) >= version);
      assert.deepEqual(
        (await directory.listDomains()).map((x) => x.name),
        ['example.test'],
      );
      assert.deepEqual((await directory.listUsers()).map((u) => u.address).sort(), [
        'alice@example.test',
        'bob@example.test',
      ]);
      assert.equal((await directory.getUser('bob@example.test'))?.quotaBytes, 1_000_000);
      assert.match((await directory.passwordHash('alice@example.test' as AccountId)) ?? '', /^\$2[aby]\$04\$/);
      assert.deepEqual(
        (await directory.listAliases()).map((a) => [a.source, a.destinations]),
        [
          ['abuse@example.test', ['alice@example.test']],
          ['fwd@example.test', ['someone@remote.example']],
          ['postmaster@example.test', ['alice@example.test']],
        ],
      );
      assert.deepEqual(await directory.listAllowedSenders('alice@example.test'), ['friend.example']);
    } finally {
      directory.close();
    }
  });

  test('the mail index: UIDVALIDITY, UIDs, flags, the journal and the parse cache', async () => {
    const d = await mkdtemp(join(dir, 'index-'));
    const { path, version } = await fromFixture(d, 'mailindex');
    const index = new MailIndex(path);
    try {
      assert.ok(versionOf(path) >= version);
      const boxes = index.mailboxes('alice@example.test');
      assert.deepEqual(
        boxes.map((b) => [b.name, b.uidvalidity, b.uidnext, b.subscribed]),
        [
          ['INBOX', 1796594173, 3, true],
          ['Projects', 1796594172, 1, true],
        ],
      );
      const inbox = boxes[0]?.id as number;
      assert.deepEqual(
        index.messages(inbox).map((m) => [m.uid, m.letters, m.size]),
        [
          [1, 'Sa', 422],
          [2, '', 422],
        ],
      );
      assert.deepEqual(
        index.changesSince(inbox, 0)?.map((c) => [c.modseq, c.kind, c.uid]),
        [
          [2, 'append', 1],
          [3, 'append', 2],
          [4, 'flags', 1],
        ],
      );
      assert.match(index.cached(inbox, 1, 'envelope') ?? '', /"<one@remote\.example>"/);
    } finally {
      index.close();
    }
  });

  test('the queue: the forwarded message and its recipient', async () => {
    const d = await mkdtemp(join(dir, 'queue-'));
    const { path, version } = await fromFixture(d, 'queue');
    const queue = new QueueStore({ stateDir: d, log: silentLogger() });
    try {
      assert.ok(versionOf(path) >= version);
      const list = await queue.list();
      assert.equal(list.length, 1);
      assert.equal(list[0]?.sender, 'sender@remote.example');
      assert.deepEqual(
        list[0]?.recipients.map((r) => [r.address, r.state, r.attempts]),
        [['someone@remote.example', 'queued', 1]],
      );
    } finally {
      await queue.close();
    }
  });

  test('a database of a newer schema is refused, and left as it was', async () => {
    for (const name of Object.keys(OPENERS)) {
      const d = await mkdtemp(join(dir, `newer-${name}-`));
      const { path } = await fromFixture(d, name);
      // What the current code makes of it, then one version more, as a later arcline would leave it.
      OPENERS[name]?.(path, d).close();
      const db = new DatabaseSync(path);
      const newer = schemaVersion(db) + 1;
      db.exec(`PRAGMA user_version = ${newer}`);
      db.close();
      assert.throws(
        () => OPENERS[name]?.(path, d),
        (e: Error & { code?: string }) =>
          e.code === 'CONFIG' &&
          e.message ===
            `${path} has schema version ${newer}, newer than this arcline knows (${newer - 1}): it was upgraded ` +
              'by a newer version; run that version, or restore the backup taken before the upgrade (docs/upgrading.md)',
        name,
      );
      assert.equal(versionOf(path), newer);
    }
  });

  test('migrations run in order, each in its transaction: a failing one leaves the version before it', async () => {
    const path = join(dir, 'steps.db');
    const one = ['CREATE TABLE t (x INTEGER) STRICT;'];
    openDatabase(path, { migrations: one }).close();
    assert.equal(versionOf(path), 1);
    const failing = [...one, 'INSERT INTO t VALUES (1);', 'INSERT INTO t VALUES (2); INSERT INTO nowhere VALUES (3);'];
    assert.throws(() => openDatabase(path, { migrations: failing }), /no such table: nowhere/);
    const db = new DatabaseSync(path);
    assert.equal(schemaVersion(db), 2);
    assert.deepEqual(
      db
        .prepare('SELECT x FROM t')
        .all()
        .map((r) => r.x),
      [1],
    );
    db.close();
  });
});
