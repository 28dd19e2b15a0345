// The IMAP side of the Maildir store: UIDs, flags in file names, keywords, expunge, append,
// reconciliation with files changed by other programs, and mailbox management.

import assert from 'node:assert/strict';
import { readdir, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { after, before, describe, test } from 'node:test';
import { isArclineError } from '../../src/core/errors.ts';
import type { AccountId } from '../../src/core/ids.ts';
import { silentLogger } from '../../src/core/log.ts';
import type { MailboxChange } from '../../src/store/mailboxes.ts';
import { createMaildirStore, type MaildirStore } from '../../src/store/maildir/index.ts';
import { spoolOf, tempStore } from '../harness/store.ts';

const ALICE = 'alice@example.test' as AccountId;

describe('Maildir mailboxes (IMAP side)', () => {
  let dir: string;
  let store: MaildirStore;
  const inbox = () => join(dir, 'mail/example.test/alice');
  const deliver = async (text: string) => {
    const w = store.createSpool();
    await w.write(Buffer.from(text));
    await store.deliver([{ account: ALICE, prefix: Buffer.alloc(0) }], await w.finish());
  };

  before(async () => {
    ({ dir, store } = await tempStore('arcline-mbox-'));
    await store.createAccount(ALICE);
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('delivered mail gets UIDs 1..n; SELECT claims \\Recent and moves new/ to cur/', async () => {
    for (const n of [1, 2, 3]) await deliver(`Subject: ${n}\r\n\r\nbody ${n}\r\n`);
    const box = await store.accounts.open(ALICE, 'inbox');
    const first = await box.sync({ claimRecent: true });
    assert.deepEqual(
      first.messages.map((m) => m.uid),
      [1, 2, 3],
    );
    assert.deepEqual(first.recent, [1, 2, 3]);
    assert.equal(first.uidNext, 4);
    assert.ok(first.uidValidity > 0);
    assert.deepEqual(await readdir(join(inbox(), 'new')), []);
    assert.ok((await readdir(join(inbox(), 'cur'))).every((n) => n.endsWith(':2,')));
    const again = await box.sync({ claimRecent: true });
    assert.deepEqual(again.recent, []);
    assert.equal(again.uidValidity, first.uidValidity);
  });

  test('flags live in file names; keywords in dovecot-keywords; MODSEQ grows; changes are broadcast', async () => {
    const box = await store.accounts.open(ALICE, 'INBOX');
    const seen: MailboxChange[] = [];
    const origin = {};
    const unsub = box.subscribe((c, o) => {
      if (o !== origin) seen.push(c);
    });
    const before = (await box.sync()).highestModseq;
    const { changed } = await box.storeFlags([1, 2], 'add', ['\\Seen', '$Work', '\\Flagged']);
    assert.equal(changed.length, 2);
    assert.deepEqual([...(changed[0]?.flags ?? [])].sort(), ['$Work', '\\Flagged', '\\Seen']);
    assert.ok((changed[1]?.modseq ?? 0) > before);
    const names = (await readdir(join(inbox(), 'cur'))).sort();
    assert.ok(
      names.some((n) => n.endsWith(':2,FSa')),
      names.join(' '),
    );
    assert.equal(await readFile(join(inbox(), 'dovecot-keywords'), 'utf8'), '0 $Work\n');
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.kind, 'flags');
    // UNCHANGEDSINCE (RFC 7162) refuses a message modified since.
    const r = await box.storeFlags([1, 3], 'remove', ['\\Seen'], { unchangedSince: before, origin });
    assert.deepEqual(r.modifiedRefused, [1]);
    assert.equal(r.changed.length, 0); // 3 had no \Seen
    unsub();
  });

  test('expunge hides the file at once but unlinks it only after every subscriber acknowledged', async () => {
    const box = await store.accounts.open(ALICE, 'INBOX');
    const a = () => {};
    const b = () => {};
    const ua = box.subscribe(a);
    const ub = box.subscribe(b);
    await box.storeFlags([3], 'add', ['\\Deleted']);
    await box.setCached([[3, 'envelope', '(NIL)']]);
    assert.equal((await box.cached([3], 'envelope')).get(3), '(NIL)');
    assert.deepEqual(await box.expunge([3]), [3]);
    assert.ok(!(await readdir(join(inbox(), 'cur'))).some((n) => n.endsWith(':2,T')));
    const fh = await box.openMessage(3);
    assert.ok(fh, 'still readable before every session was told');
    assert.equal((await text(fh.stream(0, fh.size))).includes('body 3'), true);
    await fh.close();
    assert.equal((await box.cached([3], 'envelope')).get(3), undefined, 'the parse cache went with the message');
    box.acknowledgeExpunges(a, [3]);
    assert.equal((await readdir(join(inbox(), 'tmp'))).length, 1);
    ub(); // leaving counts as acknowledging
    // The unlink runs in the background: wait for it (bounded), then check.
    for (let i = 0; i < 200 && (await readdir(join(inbox(), 'tmp'))).length > 0; i++)
      await new Promise((r) => setImmediate(r));
    assert.deepEqual(await readdir(join(inbox(), 'tmp')), []);
    assert.equal(await box.openMessage(3), null);
    ua();
    assert.deepEqual(await box.vanishedSince(0), [3]);
  });

  test('append writes durably into cur/ with flags and date, and returns the UID', async () => {
    const box = await store.accounts.open(ALICE, 'Drafts');
    const date = new Date('2024-07-04T10:00:00Z');
    const uid = await box.append(await spoolOf(store, 'Subject: draft\r\n\r\nx\r\n'), ['\\Draft', '\\Seen'], date);
    assert.equal(uid, 1);
    const m = box.meta(uid);
    assert.deepEqual([...(m?.flags ?? [])].sort(), ['\\Draft', '\\Seen']);
    assert.equal(m?.internalDate.getTime(), date.getTime());
    const names = await readdir(join(inbox(), '.Drafts', 'cur'));
    assert.equal(names.length, 1);
    assert.match(names[0] ?? '', /,S=21,W=21:2,DS$/);
  });

  test('files changed by another program: dropped in new/, renamed with flags, deleted', async () => {
    const box = await store.accounts.open(ALICE, 'INBOX');
    const before = await box.sync();
    await writeFile(join(inbox(), 'new', '1700000000.M1P1.other'), 'Subject: dropped\r\n\r\nhi\r\n');
    const s1 = await box.sync();
    const dropped = s1.messages.at(-1);
    assert.equal(dropped?.uid, before.uidNext);
    const cur = (await readdir(join(inbox(), 'cur'))).find((n) => n.endsWith(':2,FSa'));
    assert.ok(cur);
    await rename(join(inbox(), 'cur', cur), join(inbox(), 'cur', cur.replace(/:2,.*$/, ':2,RS')));
    await rm(join(inbox(), 'new', '1700000000.M1P1.other'));
    const s2 = await box.sync();
    assert.ok(!s2.messages.some((m) => m.uid === dropped?.uid));
    assert.ok(s2.messages.some((m) => m.flags.includes('\\Answered')));
    assert.ok(s2.highestModseq > s1.highestModseq);
  });

  test('after a trusted listing, changes by another program are still seen (directory mtimes move)', async () => {
    await store.accounts.create(ALICE, 'Scan');
    const dirOf = (sub: string) => join(inbox(), '.Scan', sub);
    await writeFile(join(dirOf('cur'), '1700000000.M1P1.other:2,S'), 'Subject: one\r\n\r\nhi\r\n');
    const box = await store.accounts.open(ALICE, 'Scan');
    await box.sync();
    // Age both directories so the next listing is trusted and later syncs may skip it.
    const past = new Date(Date.now() - 10_000);
    const age = async () => {
      await utimes(dirOf('new'), past, past);
      await utimes(dirOf('cur'), past, past);
    };
    await age();
    const s0 = await box.sync();
    assert.equal(s0.messages.length, 1);
    assert.equal((await box.sync()).highestModseq, s0.highestModseq, 'nothing changed');
    // A file dropped into new/ (new/ changes, cur/ does not: only new/ is listed).
    await writeFile(join(dirOf('new'), '1700000001.M1P1.other'), 'Subject: late\r\n\r\nhi\r\n');
    const s1 = await box.sync();
    assert.equal(s1.messages.length, 2);
    // A flag change in cur/ by another program after the directories were trusted again.
    await age();
    await box.sync();
    await rename(join(dirOf('cur'), '1700000000.M1P1.other:2,S'), join(dirOf('cur'), '1700000000.M1P1.other:2,FS'));
    const s2 = await box.sync();
    assert.ok(s2.messages.some((m) => m.flags.includes('\\Flagged')));
    assert.ok(s2.highestModseq > s1.highestModseq);
    // And a file deleted from cur/.
    await age();
    await box.sync();
    await rm(join(dirOf('cur'), '1700000000.M1P1.other:2,FS'));
    assert.equal((await box.sync()).messages.length, 1);
    store.accounts.release(ALICE, box);
  });

  test('a released mailbox stays loaded for the next open (no reload of a big index)', async () => {
    const a = await store.accounts.open(ALICE, 'INBOX');
    await a.sync();
    store.accounts.release(ALICE, a);
    const b = await store.accounts.open(ALICE, 'INBOX');
    assert.equal(b, a, 'the same object, its messages still loaded');
    store.accounts.release(ALICE, b);
  });

  test('a lost index is rebuilt from the files with a new UIDVALIDITY', async () => {
    const box = await store.accounts.open(ALICE, 'INBOX');
    const old = await box.sync();
    await store.close();
    await rm(join(dir, 'index.db'));
    await rm(join(dir, 'index.db-wal'), { force: true });
    await rm(join(dir, 'index.db-shm'), { force: true });
    store = createMaildirStore({
      root: join(dir, 'mail'),
      spoolDir: join(dir, 'spool'),
      indexPath: join(dir, 'index.db'),
      log: silentLogger(),
    });
    const fresh = await (await store.accounts.open(ALICE, 'INBOX')).sync();
    assert.notEqual(fresh.uidValidity, old.uidValidity);
    assert.equal(fresh.messages.length, old.messages.length);
    assert.deepEqual(
      fresh.messages.map((m) => [...m.flags].sort()),
      old.messages.map((m) => [...m.flags].sort()),
    );
  });

  test('concurrent first opens of a mailbox share one object and one index entry', async () => {
    // A new account's INBOX exists on disk but not yet in the index: the racy case.
    const dave = 'dave@example.test' as AccountId;
    await store.createAccount(dave);
    const boxes = await Promise.all(Array.from({ length: 50 }, () => store.accounts.open(dave, 'INBOX')));
    assert.ok(boxes.every((b) => b === boxes[0]));
    const statuses = await Promise.all(boxes.map((b) => b.sync()));
    assert.equal(new Set(statuses.map((st) => st.uidValidity)).size, 1);
  });

  test('mailbox management: list with attributes, create, rename with children, delete, refusals', async () => {
    const acc = store.accounts;
    await acc.create(ALICE, 'Archive.2024');
    await acc.create(ALICE, 'Entwürfe');
    const list = await acc.list(ALICE);
    const byName = new Map(list.map((m) => [m.name, m]));
    assert.equal(list[0]?.name, 'INBOX');
    assert.equal(byName.get('Sent')?.specialUse, '\\Sent');
    // CREATE Archive.2024 created its superior too (RFC 9051 §6.3.4).
    assert.equal(byName.get('Archive')?.noselect, false);
    assert.equal(byName.get('Archive')?.hasChildren, true);
    assert.ok(byName.has('Entwürfe'));
    assert.ok((await readdir(inbox())).includes('.Entw&APw-rfe'));
    await assert.rejects(acc.create(ALICE, 'Sent'), (e) => isArclineError(e, 'EXISTS'));
    for (const bad of ['a/b', '../x', '.hidden', 'a..b', 'x\0y']) {
      await assert.rejects(acc.create(ALICE, bad), (e) => isArclineError(e, 'INVALID'), bad);
    }
    await acc.create(ALICE, 'Projects');
    await acc.create(ALICE, 'Projects.Alpha');
    await acc.rename(ALICE, 'Projects', 'Work');
    const names = (await acc.list(ALICE)).map((m) => m.name);
    assert.ok(names.includes('Work') && names.includes('Work.Alpha') && !names.includes('Projects'));
    await acc.delete(ALICE, 'Work');
    const after = await acc.list(ALICE);
    assert.equal(after.find((m) => m.name === 'Work')?.noselect, true, 'parent kept as \\Noselect for its child');
    await assert.rejects(acc.delete(ALICE, 'INBOX'), (e) => isArclineError(e, 'INVALID'));
    await assert.rejects(acc.open(ALICE, 'Nope'), (e) => isArclineError(e, 'NOT_FOUND'));
  });
});
