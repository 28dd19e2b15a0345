import assert from 'node:assert/strict';
import { chmod, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isArclineError } from '../../src/core/errors.ts';
import type { AccountId } from '../../src/core/ids.ts';
import { LIMITS } from '../../src/core/limits.ts';
import { silentLogger } from '../../src/core/log.ts';
import { createMaildirStore, type MaildirStore } from '../../src/store/maildir/index.ts';
import { spoolOf, tempStore } from '../harness/store.ts';

const ALICE = 'alice@example.test' as AccountId;
const BOB = 'bob@example.test' as AccountId;

describe('Maildir store', () => {
  let dir: string;
  let store: MaildirStore;
  const box = (id: string, ...rest: string[]) => {
    const [local, domain] = id.split('@');
    return join(dir, 'mail', domain!, local!, ...rest);
  };
  before(async () => {
    ({ dir, store } = await tempStore('arcline-store-'));
    await store.createAccount(ALICE);
    await store.createAccount(BOB);
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('createAccount makes the Dovecot-compatible Maildir++ tree, idempotently, private', async () => {
    await store.createAccount(ALICE);
    const entries = (await readdir(box(ALICE))).sort();
    assert.deepEqual(entries, ['.Drafts', '.Junk', '.Sent', '.Trash', 'cur', 'new', 'tmp']);
    for (const f of ['.Drafts', '.Junk', '.Sent', '.Trash']) {
      assert.deepEqual((await readdir(box(ALICE, f))).sort(), ['cur', 'maildirfolder', 'new', 'tmp']);
    }
    assert.equal((await stat(box(ALICE))).mode & 0o777, 0o700);
  });

  test('deliver writes prefix + message byte-exact into new/, one file per target', async () => {
    const msg = await spoolOf(store, 'Subject: hi\r\n', '\r\nbody\r\n');
    const copies = await store.deliver(
      [
        { account: ALICE, prefix: Buffer.from('Delivered-To: alice@example.test\r\n') },
        { account: BOB, prefix: Buffer.from('Delivered-To: bob@example.test\r\n') },
        { account: BOB, mailbox: 'Junk', prefix: Buffer.alloc(0) },
      ],
      msg,
    );
    await msg.dispose();
    assert.equal(copies.length, 3);
    assert.equal(
      await readFile(copies[0]!.path, 'utf8'),
      'Delivered-To: alice@example.test\r\nSubject: hi\r\n\r\nbody\r\n',
    );
    assert.equal(
      await readFile(copies[1]!.path, 'utf8'),
      'Delivered-To: bob@example.test\r\nSubject: hi\r\n\r\nbody\r\n',
    );
    assert.ok(copies[2]!.path.startsWith(box(BOB, '.Junk', 'new')));
    for (const c of copies) {
      const size = (await stat(c.path)).size;
      assert.equal(c.size, size);
      assert.match(c.path, new RegExp(`,S=${size},W=${size}$`));
      assert.equal((await stat(c.path)).mode & 0o777, 0o600);
    }
    assert.deepEqual(await readdir(box(ALICE, 'tmp')), []);
  });

  test('a large message spills to a spool file, reads back twice, and dispose removes it', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 'x');
    const msg = await spoolOf(store, big.subarray(0, 1000), big.subarray(1000));
    assert.equal(msg.size, big.length);
    assert.equal((await readdir(join(dir, 'spool'))).length, 1);
    const read = async () => Buffer.concat(await msg.open().toArray());
    assert.ok((await read()).equals(big));
    assert.ok((await read()).equals(big));
    const [copy] = await store.deliver([{ account: ALICE, prefix: Buffer.from('X: y\r\n') }], msg);
    assert.ok((await readFile(copy!.path)).equals(Buffer.concat([Buffer.from('X: y\r\n'), big])));
    await msg.dispose();
    assert.deepEqual(await readdir(join(dir, 'spool')), []);
  });

  test('an aborted spool leaves nothing', async () => {
    const w = store.createSpool();
    await w.write(Buffer.alloc(2 * 1024 * 1024));
    assert.equal((await readdir(join(dir, 'spool'))).length, 1);
    await w.abort();
    assert.deepEqual(await readdir(join(dir, 'spool')), []);
  });

  test('a missing account is NOT_FOUND and nothing is delivered to the others', async () => {
    const before = await readdir(box(ALICE, 'new'));
    const msg = await spoolOf(store, 'Subject: x\r\n\r\n');
    await assert.rejects(
      store.deliver(
        [
          { account: ALICE, prefix: Buffer.alloc(0) },
          { account: 'ghost@example.test' as AccountId, prefix: Buffer.alloc(0) },
        ],
        msg,
      ),
      (e) => isArclineError(e, 'NOT_FOUND'),
    );
    assert.deepEqual(await readdir(box(ALICE, 'new')), before);
    assert.deepEqual(await readdir(box(ALICE, 'tmp')), []);
  });

  test('a write failure for one target removes every copy (TEMPORARY)', async () => {
    const beforeA = await readdir(box(ALICE, 'new'));
    const beforeB = await readdir(box(BOB, '.Trash', 'new'));
    // BOB's Trash/tmp is replaced by a file: opening a file in it fails.
    await store.deliver([{ account: BOB, mailbox: 'Trash', prefix: Buffer.alloc(0) }], await spoolOf(store, 'a\r\n'));
    await rm(box(BOB, '.Trash', 'tmp'), { recursive: true });
    await writeFile(box(BOB, '.Trash', 'tmp'), 'not a dir');
    const msg = await spoolOf(store, 'Subject: y\r\n\r\n');
    await assert.rejects(
      store.deliver(
        [
          { account: ALICE, prefix: Buffer.alloc(0) },
          { account: BOB, mailbox: 'Trash', prefix: Buffer.alloc(0) },
        ],
        msg,
      ),
      (e) => isArclineError(e, 'TEMPORARY'),
    );
    assert.deepEqual(await readdir(box(ALICE, 'new')), beforeA);
    assert.deepEqual(await readdir(box(ALICE, 'tmp')), []);
    assert.equal((await readdir(box(BOB, '.Trash', 'new'))).length, beforeB.length + 1);
    await rm(box(BOB, '.Trash', 'tmp'));
  });

  test('a deleted folder is recreated on delivery; a read-only new/ fails cleanly', async () => {
    await rm(box(ALICE, '.Junk'), { recursive: true });
    const fresh = createMaildirStore({
      root: join(dir, 'mail'),
      spoolDir: join(dir, 'spool'),
      indexPath: join(dir, 'index.db'),
      log: silentLogger(),
    });
    const [c] = await fresh.deliver(
      [{ account: ALICE, mailbox: 'Junk', prefix: Buffer.alloc(0) }],
      await spoolOf(fresh, 'j\r\n'),
    );
    assert.ok(c!.path.startsWith(box(ALICE, '.Junk', 'new')));
    assert.ok((await readdir(box(ALICE, '.Junk'))).includes('maildirfolder'));
    await fresh.close();
    if (process.getuid?.() !== 0) {
      await chmod(box(ALICE, 'new'), 0o500);
      await assert.rejects(store.deliver([{ account: ALICE, prefix: Buffer.alloc(0) }], await spoolOf(store, 'r\r\n')));
      await chmod(box(ALICE, 'new'), 0o700);
    }
  });

  test('200 concurrent deliveries (50 at a time) all land exactly once and intact', async () => {
    const before = (await readdir(box(BOB, 'new'))).length;
    const deliverOne = async (i: number) => {
      const msg = await spoolOf(store, `Subject: n${i}\r\n\r\n`, `${String(i).repeat(i % 50)}\r\n`);
      await store.deliver([{ account: BOB, prefix: Buffer.from(`X-N: ${i}\r\n`) }], msg);
      await msg.dispose();
    };
    for (let batch = 0; batch < 4; batch++) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => deliverOne(batch * 50 + j)));
    }
    const names = await readdir(box(BOB, 'new'));
    assert.equal(names.length, before + 200);
    const seen = new Set<number>();
    for (const n of names) {
      const text = await readFile(box(BOB, 'new', n), 'utf8');
      const m = /^X-N: (\d+)\r\nSubject: n\1\r\n\r\n(.*)\r\n$/s.exec(text);
      if (!m) continue; // messages of other tests
      const i = Number(m[1]);
      assert.equal(m[2], String(i).repeat(i % 50));
      assert.ok(!seen.has(i), `duplicate ${i}`);
      seen.add(i);
    }
    assert.equal(seen.size, 200);
  });

  test('a copy delivered with flags goes into cur/ with Dovecot info letters and keyword table', async () => {
    const msg = await spoolOf(store, 'Subject: flagged\r\n', '\r\nbody\r\n');
    const [copy] = await store.deliver(
      [{ account: BOB, mailbox: 'Sent', prefix: Buffer.alloc(0), flags: ['\\Seen', 'Work', '\\Answered', '$Fwd'] }],
      msg,
    );
    await msg.dispose();
    assert.equal(copy!.path.startsWith(box(BOB, '.Sent', 'cur')), true, copy!.path);
    assert.match(copy!.path, /,S=\d+,W=\d+:2,RSab$/);
    assert.equal(await readFile(box(BOB, '.Sent', 'dovecot-keywords'), 'utf8'), '0 Work\n1 $Fwd\n');
    assert.deepEqual(await readdir(box(BOB, '.Sent', 'tmp')), [], 'no lock or temporary file left');
    // A Unicode folder name is the IMAP one, in modified UTF-7 on disk (as Dovecot stores it).
    const m2 = await spoolOf(store, 'Subject: x\r\n', '\r\n');
    const [c2] = await store.deliver([{ account: BOB, mailbox: 'Entwürfe', prefix: Buffer.alloc(0) }], m2);
    await m2.dispose();
    assert.equal(c2!.path.startsWith(box(BOB, '.Entw&APw-rfe', 'new')), true, c2!.path);
  });

  test('concurrent deliveries with new keywords each keep their own letter (dovecot-keywords.lock)', async () => {
    const n = 20;
    const copies = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const msg = await spoolOf(store, `Subject: ${i}\r\n`, '\r\n');
        try {
          const [c] = await store.deliver(
            [{ account: ALICE, mailbox: 'Trash', prefix: Buffer.alloc(0), flags: [`kw${i}`] }],
            msg,
          );
          return c!;
        } finally {
          await msg.dispose();
        }
      }),
    );
    const table = (await readFile(box(ALICE, '.Trash', 'dovecot-keywords'), 'utf8')).trim().split('\n');
    assert.equal(table.length, n);
    const byKeyword = new Map(table.map((l) => [l.split(' ')[1], String.fromCharCode(97 + Number(l.split(' ')[0]))]));
    for (const [i, c] of copies.entries()) assert.ok(c.path.endsWith(`:2,${byKeyword.get(`kw${i}`)}`), c.path);
    assert.equal((await readdir(box(ALICE, '.Trash'))).includes('dovecot-keywords.lock'), false);
  });

  test('a keyword lock left by a crash is taken over once stale; a held one is waited for', async () => {
    const lock = box(BOB, '.Drafts', 'dovecot-keywords.lock');
    const deliverKw = async (kw: string) => {
      const msg = await spoolOf(store, `Subject: ${kw}\r\n`, '\r\n');
      try {
        return (
          await store.deliver([{ account: BOB, mailbox: 'Drafts', prefix: Buffer.alloc(0), flags: [kw] }], msg)
        )[0]!;
      } finally {
        await msg.dispose();
      }
    };
    await writeFile(lock, '');
    const old = new Date(Date.now() - LIMITS.store.keywordLockStaleMs - 5000);
    await utimes(lock, old, old);
    assert.match((await deliverKw('Stale')).path, /:2,a$/);
    // A held lock: the delivery waits for it, then adds its keyword after the holder's.
    await writeFile(lock, '');
    const pending = deliverKw('Later');
    await writeFile(box(BOB, '.Drafts', 'dovecot-keywords'), '0 Stale\n1 Holder\n');
    await rm(lock);
    assert.match((await pending).path, /:2,c$/);
    assert.equal(await readFile(box(BOB, '.Drafts', 'dovecot-keywords'), 'utf8'), '0 Stale\n1 Holder\n2 Later\n');
  });

  test('purgeAccount removes only that account', async () => {
    const carol = 'carol@example.test' as AccountId;
    await store.createAccount(carol);
    const before = await store.accounts.open(carol, 'INBOX');
    const v1 = (await before.sync()).uidValidity;
    store.accounts.release(carol, before);
    await store.purgeAccount(carol);
    await assert.rejects(stat(box(carol)));
    assert.ok((await stat(box(ALICE))).isDirectory());
    // Made again under the same address: a new INBOX, never the old index entry.
    await store.createAccount(carol);
    const again = await store.accounts.open(carol, 'INBOX');
    const s = await again.sync();
    store.accounts.release(carol, again);
    assert.ok(s.uidValidity > v1, `${s.uidValidity} > ${v1}`);
    assert.equal(s.uidNext, 1);
    await store.purgeAccount(carol);
    await assert.rejects(store.purgeAccount('../etc@example.test' as AccountId), (e) => isArclineError(e, 'INVALID'));
  });

  test('cleanSpool removes leftovers of an earlier process', async () => {
    await writeFile(join(dir, 'spool', 'old.eml'), 'x');
    await store.cleanSpool();
    assert.deepEqual(await readdir(join(dir, 'spool')), []);
  });
});
