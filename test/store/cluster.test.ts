// Mailboxes across nodes (issue #18, docs/cluster.md "Mailboxes across nodes"): three Maildir
// stores in this process play three nodes, each with its own PostgreSQL pool, its own
// listening session (Notifier) and its own spool, on one database and one Maildir root. What a
// node's sessions see of the others' deliveries, flags, expunges and appends, and that UIDs are
// unique, increasing and stable.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import { silentLogger } from '../../src/core/log.ts';
import { Notifier } from '../../src/db/notify.ts';
import type { Postgres } from '../../src/db/postgres.ts';
import { PostgresMailIndex } from '../../src/store/index/postgres.ts';
import type { MailboxChange } from '../../src/store/mailboxes.ts';
import { createMaildirStore, type MaildirStore } from '../../src/store/maildir/index.ts';
import { freshDatabase, type TestDatabase } from '../harness/postgres.ts';
import { spoolOf } from '../harness/store.ts';
import { waitFor } from './contract-support.ts';

const alice = 'alice@example.test' as AccountId;
const msg = (n: number | string) =>
  `From: a@example.test\r\nSubject: m ${n}\r\nMessage-ID: <${n}@x>\r\n\r\nbody ${n}\r\n`;

interface Node {
  readonly store: MaildirStore;
  readonly db: Postgres;
  readonly notifier: Notifier;
}

describe('mailboxes across three nodes on one PostgreSQL and one Maildir', () => {
  let t: TestDatabase;
  let dir: string;
  const nodes: Node[] = [];

  async function startNode(i: number): Promise<Node> {
    const db = await t.open();
    const notifier = await Notifier.start({
      session: { url: t.url, connectTimeoutMs: 5000, applicationName: `n${i}` },
    });
    const store = createMaildirStore({
      root: join(dir, 'mail'),
      spoolDir: join(dir, `spool-${i}`),
      indexPath: join(dir, `unused-${i}.db`),
      index: new PostgresMailIndex(db, join(dir, 'mail')),
      feed: notifier,
      log: silentLogger(),
    });
    await store.openIndex();
    return { store, db, notifier };
  }

  async function stopNode(n: Node): Promise<void> {
    await n.store.close();
    await n.notifier.close();
  }

  before(async () => {
    t = await freshDatabase();
    dir = await mkdtemp(join(tmpdir(), 'arcline-cluster-store-'));
    await mkdir(join(dir, 'mail'), { recursive: true });
    for (let i = 0; i < 3; i++) nodes.push(await startNode(i));
    await (nodes[0] as Node).store.createAccount(alice);
  });
  after(async () => {
    for (const n of nodes) await stopNode(n).catch(() => {});
    await t.drop();
    await rm(dir, { recursive: true, force: true });
  });

  const node = (i: number) => nodes[i] as Node;

  /** Opens INBOX on node i with a subscriber collecting its changes. */
  async function watch(i: number, name = 'INBOX') {
    const mbox = await node(i).store.accounts.open(alice, name);
    const changes: MailboxChange[] = [];
    const listener = (c: MailboxChange) => changes.push(c);
    const status = await mbox.sync({ subscribe: { listener } });
    return { mbox, changes, status, stop: () => mbox.unsubscribe(listener) };
  }

  const existsUids = (changes: readonly MailboxChange[]) =>
    changes.flatMap((c) => (c.kind === 'exists' ? c.messages.map((m) => m.uid) : []));

  test('a delivery on node A reaches a session on node B within 100 ms, as EXISTS', async (tc) => {
    const b = await watch(1);
    try {
      const latencies: number[] = [];
      for (let k = 0; k < 10; k++) {
        const before = existsUids(b.changes).length;
        const started = performance.now();
        await node(0).store.deliver(
          [{ account: alice, prefix: Buffer.alloc(0) }],
          await spoolOf(node(0).store, msg(`d${k}`)),
        );
        await waitFor(() => existsUids(b.changes).length > before, 'EXISTS on node B');
        latencies.push(performance.now() - started);
      }
      latencies.sort((x, y) => x - y);
      const median = latencies[5] as number;
      tc.diagnostic(`delivery on A -> EXISTS on B: median ${median.toFixed(1)} ms, max ${latencies[9]?.toFixed(1)} ms`);
      assert.ok(median < 100, `median delivery -> EXISTS on another node ${median.toFixed(1)} ms`);
      const uids = existsUids(b.changes);
      assert.deepEqual(
        uids,
        [...uids].sort((x, y) => x - y),
        'UIDs increase',
      );
      assert.equal(new Set(uids).size, uids.length);
      // Indexed messages are in cur/: new/ is empty once every delivery is indexed.
      assert.deepEqual(await readdir(join(dir, 'mail', 'example.test', 'alice', 'new')), []);
    } finally {
      b.stop();
    }
  });

  test('a flag set on node B reaches a session on node C; an expunge on C reaches B', async () => {
    const b = await watch(1);
    const c = await watch(2);
    try {
      const uid = b.status.messages[0]?.uid as number;
      assert.ok(uid > 0);
      await b.mbox.storeFlags([uid], 'add', ['\\Flagged']);
      await waitFor(
        () =>
          c.changes.some(
            (x) => x.kind === 'flags' && x.messages.some((m) => m.uid === uid && m.flags.includes('\\Flagged')),
          ),
        'FETCH FLAGS on node C',
      );
      assert.ok(c.mbox.meta(uid)?.flags.includes('\\Flagged'));
      await c.mbox.storeFlags([uid], 'add', ['\\Deleted']);
      assert.deepEqual(await c.mbox.expunge([uid], null, true), [uid]);
      await waitFor(() => b.changes.some((x) => x.kind === 'expunge' && x.uids.includes(uid)), 'EXPUNGE on node B');
      assert.equal(b.mbox.meta(uid), null);
    } finally {
      b.stop();
      c.stop();
    }
  });

  test('APPENDs through three nodes at once get unique, increasing UIDs', async () => {
    const views = await Promise.all([0, 1, 2].map((i) => watch(i)));
    try {
      const per = 20;
      const results = await Promise.all(
        [0, 1, 2].map(async (i) => {
          const got: number[] = [];
          const mbox = (views[i] as (typeof views)[number]).mbox;
          for (let k = 0; k < per; k++)
            got.push(await mbox.append(await spoolOf(node(i).store, msg(`a${i}-${k}`)), [], null));
          return got;
        }),
      );
      const all = results.flat();
      assert.equal(new Set(all).size, all.length, 'no UID given twice');
      for (const r of results)
        assert.deepEqual(
          r,
          [...r].sort((x, y) => x - y),
          'each node sees its UIDs increase',
        );
      // Every node's view converges to the same messages with the same UIDs.
      const index = new PostgresMailIndex(node(0).db, null);
      const row = await index.mailbox(alice, 'INBOX');
      const cols = await index.messageColumns(row?.id as number);
      const indexed = [...cols.uids];
      for (const uid of all) assert.ok(indexed.includes(uid));
      for (const v of views) {
        await waitFor(() => v.mbox.loadedMessages === cols.count, 'every view has every message');
        assert.deepEqual(
          indexed.map((uid) => v.mbox.meta(uid)?.uid),
          indexed,
        );
      }
    } finally {
      for (const v of views) v.stop();
    }
  });

  test('deliveries on three nodes at once to one mailbox: each file indexed once, UIDs unique', async () => {
    const views = await Promise.all([0, 1, 2].map((i) => watch(i)));
    try {
      const per = 15;
      await Promise.all(
        [0, 1, 2].map(async (i) => {
          const s = node(i).store;
          await Promise.all(
            Array.from({ length: per }, async (_, k) =>
              s.deliver([{ account: alice, prefix: Buffer.alloc(0) }], await spoolOf(s, msg(`c${i}-${k}`))),
            ),
          );
        }),
      );
      const inbox = join(dir, 'mail', 'example.test', 'alice');
      const index = new PostgresMailIndex(node(1).db, null);
      const id = (await index.mailbox(alice, 'INBOX'))?.id as number;
      await waitFor(
        async () =>
          (await readdir(join(inbox, 'new'))).length === 0 &&
          (await index.messageColumns(id)).count === (await readdir(join(inbox, 'cur'))).length,
        'every file indexed',
      );
      const cols = await index.messageColumns(id);
      const bases = cols.bases.split('/');
      assert.equal(new Set(bases).size, bases.length, 'no file indexed twice');
      assert.equal(new Set(cols.uids).size, cols.count);
      assert.deepEqual(await readdir(join(inbox, 'new')), []);
      for (const v of views) await waitFor(() => v.mbox.loadedMessages === cols.count, 'every view has every message');
    } finally {
      for (const v of views) v.stop();
    }
  });

  test('a burst of deliveries to more mailboxes than the pool has connections: every one indexed', async () => {
    // The test pools have 4 connections; 12 accounts indexed at once used to leave every
    // connection to a lock holder waiting for another (a deadlock, found by bench:cluster).
    const s = node(0).store;
    const accounts = Array.from({ length: 12 }, (_, i) => `burst${i}@example.test` as AccountId);
    for (const a of accounts) await s.createAccount(a);
    await Promise.all(
      accounts.flatMap((a) =>
        [0, 1, 2].map(async (k) =>
          s.deliver([{ account: a, prefix: Buffer.alloc(0) }], await spoolOf(s, msg(`${a}-${k}`))),
        ),
      ),
    );
    const index = new PostgresMailIndex(node(1).db, null);
    for (const a of accounts) {
      await waitFor(async () => {
        const row = await index.mailbox(a, 'INBOX');
        return row !== null && (await index.messageColumns(row.id)).count === 3;
      }, `the deliveries to ${a} indexed`);
    }
  });

  test('a mailbox deleted and made again on one node is the new one on another', async () => {
    await node(0).store.accounts.create(alice, 'Doomed');
    const b = await watch(1, 'Doomed');
    const oldValidity = b.status.uidValidity;
    b.stop();
    await node(0).store.accounts.delete(alice, 'Doomed');
    await node(0).store.accounts.create(alice, 'Doomed');
    const s = node(0).store;
    await s.deliver([{ account: alice, mailbox: 'Doomed', prefix: Buffer.alloc(0) }], await spoolOf(s, msg('reborn')));
    // Node B still holds the old object (idle): its next catch-up finds the entry gone, and the
    // next open gets the new mailbox.
    await assert.rejects(b.mbox.sync(), (e: Error & { code?: string }) => e.code === 'NOT_FOUND');
    const again = await watch(1, 'Doomed');
    try {
      assert.notEqual(again.status.uidValidity, oldValidity);
      assert.equal(again.status.messages.length, 1);
    } finally {
      again.stop();
    }
  });

  test('UIDs never change after a node restarts', async () => {
    const before = await watch(0);
    const uids = before.status.messages.map((m) => m.uid);
    const ids = before.mbox.emailIds(uids);
    before.stop();
    await stopNode(node(0));
    nodes[0] = await startNode(0);
    const after = await watch(0);
    try {
      assert.deepEqual(
        after.status.messages.map((m) => m.uid),
        uids,
      );
      assert.deepEqual(after.mbox.emailIds(uids), ids);
      assert.equal(after.status.uidValidity, before.status.uidValidity);
    } finally {
      after.stop();
    }
  });

  test('a MOVE on one node reaches sessions of both mailboxes on another', async () => {
    await node(0).store.accounts.create(alice, 'Archive');
    const inboxB = await watch(1);
    const archiveB = await watch(1, 'Archive');
    try {
      const a = await node(2).store.accounts.open(alice, 'INBOX');
      await a.sync();
      const uid = inboxB.status.messages.at(-1)?.uid as number;
      const target = await node(2).store.accounts.open(alice, 'Archive');
      const pairs = await a.copyTo([uid], target, { move: true });
      assert.equal(pairs.length, 1);
      await waitFor(() => inboxB.changes.some((x) => x.kind === 'expunge' && x.uids.includes(uid)), 'EXPUNGE in INBOX');
      await waitFor(
        () => existsUids(archiveB.changes).includes((pairs[0] as [number, number])[1]),
        'EXISTS in Archive',
      );
    } finally {
      inboxB.stop();
      archiveB.stop();
    }
  });
});
