// The mail store contract: every implementation of MessageStore (store/mailboxes.ts; Maildir now,
// PostgreSQL with issue #18) runs this suite, as test/directory/contract.ts does for directories.
// It reaches the store only through its interfaces (MailStore.createAccount / deliver /
// createSpool, Mailboxes, Mailbox): no file, path or SQL. This file covers mailboxes, messages
// and flags; contract-delivery.ts delivery with flags and mailboxExists; contract-changes.ts the
// journal, events, \Recent, concurrency, the parse cache and persistence. Each test runs on a
// fresh store (contract-support.ts).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LIMITS } from '../../src/core/limits.ts';
import { changesContract } from './contract-changes.ts';
import { copyContract } from './contract-copy.ts';
import { deliveryContract } from './contract-delivery.ts';
import { idsContract } from './contract-ids.ts';
import { journalContract } from './contract-journal.ts';
import { queryContract } from './contract-query.ts';
import { searchContract } from './contract-search.ts';
import { sortOrderContract } from './contract-sort-order.ts';
import {
  append,
  contentOf,
  deliver,
  type MakeStore,
  prng,
  Recorder,
  rejectsWith,
  sorted,
  streamed,
  text,
  waitFor,
  withStore,
} from './contract-support.ts';
import { threadsContract } from './contract-threads.ts';

export type { MakeStore, StoreUnderTest } from './contract-support.ts';

const DEFAULTS = [
  ['Sent', '\\Sent'],
  ['Drafts', '\\Drafts'],
  ['Trash', '\\Trash'],
  ['Junk', '\\Junk'],
] as const;

export function mailStoreContract(name: string, make: MakeStore): void {
  describe(`${name}: mail store contract: mailboxes`, () => mailboxesContract(make));
  describe(`${name}: mail store contract: messages and flags`, () => messagesContract(make));
  describe(`${name}: mail store contract: changes`, () => changesContract(make));
  describe(`${name}: mail store contract: delivery with flags`, () => deliveryContract(make));
  describe(`${name}: mail store contract: copy and move`, () => copyContract(make));
  describe(`${name}: mail store contract: ids`, () => idsContract(make));
  describe(`${name}: mail store contract: sortOrder`, () => sortOrderContract(make));
  describe(`${name}: mail store contract: account journal`, () => journalContract(make));
  describe(`${name}: mail store contract: account-wide listing and lookups`, () => queryContract(make));
  describe(`${name}: mail store contract: full-text search`, () => searchContract(make));
  describe(`${name}: mail store contract: threads`, () => threadsContract(make));
}

function mailboxesContract(make: MakeStore): void {
  test('a new account: INBOX first, the default folders with their special use, subscribed', () =>
    withStore(make, async (ctx) => {
      const list = await ctx.boxes.list(ctx.account, { ids: true });
      assert.equal(list[0]?.name, 'INBOX');
      const by = await ctx.list();
      const { id: _, sortOrder, ...inbox } = by.get('INBOX') ?? { name: '' };
      assert.equal(sortOrder, 0, 'JMAP sortOrder 0 until set');
      assert.deepEqual(inbox, {
        name: 'INBOX',
        specialUse: null,
        subscribed: true,
        noselect: false,
        hasChildren: false,
      });
      for (const [name, use] of DEFAULTS) {
        const e = by.get(name);
        assert.ok(e, name);
        assert.equal(e.specialUse, use, name);
        assert.equal(e.subscribed, true, name);
        assert.equal(e.noselect, false, name);
        assert.equal(e.hasChildren, false, name);
        assert.ok(!e.nonexistent, name);
      }
      assert.equal(await ctx.boxes.exists(ctx.account, 'inbox'), true);
      assert.equal(await ctx.boxes.exists(ctx.account, 'Nope'), false);
      await rejectsWith(ctx.open('Nope'), 'NOT_FOUND');
      for (const e of list) {
        const s = await (await ctx.open(e.name)).sync();
        assert.ok(s.uidValidity > 0, e.name);
        assert.equal(s.uidNext, 1, e.name);
        assert.deepEqual(s.messages, [], e.name);
      }
      // INBOX is case-insensitive (RFC 9051 §5.1): one mailbox whatever the spelling.
      await deliver(ctx, text(1));
      assert.equal((await (await ctx.open('iNbOx')).sync()).messages.length, 1);
      // createAccount is idempotent: it keeps the mail and the mailboxes.
      await ctx.store.createAccount(ctx.account);
      assert.equal((await (await ctx.open('INBOX')).sync()).messages.length, 1);
      assert.deepEqual(await ctx.boxes.list(ctx.account, { ids: true }), list);
    }));

  test('CREATE makes missing parents, all or nothing; existing names are refused with EXISTS', () =>
    withStore(make, async (ctx) => {
      const acc = ctx.account;
      await ctx.boxes.create(acc, 'A.B.C');
      let by = await ctx.list();
      // RFC 9051 §6.3.4: superiors are created; CREATE does not subscribe.
      for (const [n, children] of [
        ['A', true],
        ['A.B', true],
        ['A.B.C', false],
      ] as const) {
        assert.equal(by.get(n)?.noselect, false, n);
        assert.equal(by.get(n)?.hasChildren, children, n);
        assert.equal(by.get(n)?.subscribed, false, n);
        assert.equal(await ctx.boxes.exists(acc, n), true, n);
      }
      for (const n of ['A', 'A.B', 'A.B.C', 'INBOX', 'inbox', 'Sent'])
        await rejectsWith(ctx.boxes.create(acc, n), 'EXISTS', n);
      // RFC 6154 §3 CREATE-SPECIAL-USE.
      await ctx.boxes.create(acc, 'Stash', ['\\Archive']);
      assert.equal((await ctx.list()).get('Stash')?.specialUse, '\\Archive');
      await rejectsWith(ctx.boxes.create(acc, 'Everything', ['\\All']), 'INVALID', 'virtual use');
      await rejectsWith(ctx.boxes.create(acc, 'Two', ['\\Sent', '\\Trash']), 'INVALID', 'two uses');
      const before = await ctx.boxes.list(acc);
      // All or nothing: a refused name leaves none of its parents behind.
      const deep = Array.from({ length: LIMITS.mailboxes.maxDepth + 1 }, (_, i) => `D${i}`).join('.');
      await rejectsWith(ctx.boxes.create(acc, deep), 'LIMIT', 'too deep');
      for (const bad of ['P.Q..R', 'P.Q.', '']) await rejectsWith(ctx.boxes.create(acc, bad), 'INVALID', bad);
      assert.deepEqual(await ctx.boxes.list(acc), before);
      by = await ctx.list();
      for (const n of ['D0', 'P', 'P.Q', 'Everything', 'Two']) assert.ok(!by.has(n), n);
      // A name that exists only as a \Noselect parent can be created.
      await ctx.boxes.create(acc, 'N.Leaf');
      await ctx.boxes.delete(acc, 'N');
      assert.equal((await ctx.list()).get('N')?.noselect, true);
      await ctx.boxes.create(acc, 'N');
      assert.equal((await ctx.list()).get('N')?.noselect, false);
      assert.deepEqual((await (await ctx.open('N')).sync()).messages, []);
    }));

  test('DELETE: messages go, children stay under a \\Noselect parent; INBOX and missing names refused', () =>
    withStore(make, async (ctx) => {
      const acc = ctx.account;
      await ctx.boxes.create(acc, 'W.Child');
      await deliver(ctx, text(1), { mailbox: 'W' });
      await deliver(ctx, text(2), { mailbox: 'W.Child' });
      const w = await ctx.open('W');
      const v1 = (await w.sync()).uidValidity;
      ctx.boxes.release(acc, w);
      await ctx.boxes.delete(acc, 'W');
      let by = await ctx.list();
      assert.equal(by.get('W')?.noselect, true);
      assert.equal(by.get('W')?.hasChildren, true);
      assert.equal(by.get('W.Child')?.noselect, false);
      assert.equal(await ctx.boxes.exists(acc, 'W'), false);
      await rejectsWith(ctx.open('W'), 'NOT_FOUND');
      assert.equal((await (await ctx.open('W.Child')).sync()).messages.length, 1, 'the child keeps its mail');
      // RFC 9051 §6.3.5: a \Noselect name with inferiors cannot be deleted.
      await rejectsWith(ctx.boxes.delete(acc, 'W'), 'NOT_FOUND', 'noselect parent');
      for (const n of ['INBOX', 'inbox']) await rejectsWith(ctx.boxes.delete(acc, n), 'INVALID', n);
      await rejectsWith(ctx.boxes.delete(acc, 'Nope'), 'NOT_FOUND');
      await ctx.boxes.delete(acc, 'W.Child');
      by = await ctx.list();
      assert.ok(!by.has('W') && !by.has('W.Child'), [...by.keys()].join(' '));
      // The same name again: a new, empty mailbox with a larger UIDVALIDITY (RFC 9051 §2.3.1.1).
      await ctx.boxes.create(acc, 'W');
      const again = await (await ctx.open('W')).sync();
      assert.deepEqual(again.messages, []);
      assert.ok(again.uidValidity > v1, `${again.uidValidity} > ${v1}`);
    }));

  test('RENAME moves a mailbox with its children and messages; INBOX, taken and missing names refused', () =>
    withStore(make, async (ctx) => {
      const acc = ctx.account;
      await ctx.boxes.create(acc, 'Proj.Alpha');
      await deliver(ctx, text('p'), { mailbox: 'Proj' });
      for (const n of [1, 2]) await deliver(ctx, text(n), { mailbox: 'Proj.Alpha' });
      const alpha = await ctx.open('Proj.Alpha');
      const before = await alpha.sync();
      await alpha.storeFlags([2], 'add', ['\\Seen', '$Done']);
      ctx.boxes.release(acc, alpha);
      await ctx.boxes.rename(acc, 'Proj', 'Arch.2024');
      const by = await ctx.list();
      assert.ok(!by.has('Proj') && !by.has('Proj.Alpha'), [...by.keys()].join(' '));
      // RFC 9051 §6.3.6: superiors SHOULD be created; a \Noselect parent (Maildir++) lists the name too.
      assert.equal(by.get('Arch')?.hasChildren, true);
      assert.equal(by.get('Arch.2024')?.hasChildren, true);
      assert.equal(by.get('Arch.2024.Alpha')?.noselect, false);
      await rejectsWith(ctx.open('Proj'), 'NOT_FOUND');
      const moved = await ctx.open('Arch.2024.Alpha');
      const after = await moved.sync();
      assert.equal(after.uidValidity, before.uidValidity);
      assert.deepEqual(
        after.messages.map((m) => m.uid),
        [1, 2],
      );
      assert.deepEqual(sorted(moved.meta(2)?.flags ?? []), ['$Done', '\\Seen']);
      assert.deepEqual(await contentOf(moved, 1), Buffer.from(text(1)));
      const parent = await ctx.open('Arch.2024');
      assert.deepEqual(
        (await parent.sync()).messages.map((m) => m.uid),
        [1],
      );
      assert.deepEqual(await contentOf(parent, 1), Buffer.from(text('p')));
      for (const n of ['INBOX', 'inbox']) await rejectsWith(ctx.boxes.rename(acc, n, 'X'), 'INVALID', n);
      for (const to of ['Drafts', 'INBOX', 'inbox', 'Arch.2024.Alpha'])
        await rejectsWith(ctx.boxes.rename(acc, 'Sent', to), 'EXISTS', to);
      await rejectsWith(ctx.boxes.rename(acc, 'Nope', 'Y'), 'NOT_FOUND');
      await rejectsWith(ctx.boxes.rename(acc, 'Sent', 'S..x'), 'INVALID');
      assert.equal(await ctx.boxes.exists(acc, 'Sent'), true, 'refusals change nothing');
      assert.equal(await ctx.boxes.exists(acc, 'Y'), false);
    }));

  test('a re-created mailbox (after DELETE or RENAME) gets a larger UIDVALIDITY', () =>
    withStore(make, async (ctx) => {
      const acc = ctx.account;
      const validity = async (n: string) => (await (await ctx.open(n)).sync()).uidValidity;
      await ctx.boxes.create(acc, 'X');
      const v1 = await validity('X');
      await ctx.boxes.delete(acc, 'X');
      await ctx.boxes.create(acc, 'X');
      const v2 = await validity('X');
      await ctx.boxes.rename(acc, 'X', 'Y');
      await ctx.boxes.create(acc, 'X');
      const v3 = await validity('X');
      assert.ok(v1 < v2 && v2 < v3, `${v1} < ${v2} < ${v3}`);
      assert.equal(await validity('Y'), v2);
    }));

  test('subscriptions: a name may be subscribed before it exists, outlives DELETE, is kept by CREATE', () =>
    withStore(make, async (ctx) => {
      const acc = ctx.account;
      const entry = async (n: string) => (await ctx.list()).get(n);
      // RFC 9051 §6.3.7; RFC 5258 §3.4 \NonExistent.
      await ctx.boxes.setSubscribed(acc, 'Ghost', true);
      assert.deepEqual(
        { ...(await entry('Ghost')) },
        { name: 'Ghost', specialUse: null, subscribed: true, noselect: true, hasChildren: false, nonexistent: true },
      );
      assert.equal(await ctx.boxes.exists(acc, 'Ghost'), false);
      await ctx.boxes.create(acc, 'Ghost');
      let e = await entry('Ghost');
      assert.equal(e?.subscribed, true);
      assert.equal(e?.noselect, false);
      assert.ok(!e?.nonexistent);
      await ctx.boxes.delete(acc, 'Ghost');
      e = await entry('Ghost');
      assert.equal(e?.subscribed, true);
      assert.equal(e?.nonexistent, true);
      await ctx.boxes.setSubscribed(acc, 'Ghost', false);
      assert.equal(await entry('Ghost'), undefined);
      await ctx.boxes.setSubscribed(acc, 'Sent', false);
      assert.equal((await entry('Sent'))?.subscribed, false);
      await ctx.boxes.setSubscribed(acc, 'Sent', true);
      assert.equal((await entry('Sent'))?.subscribed, true);
      await ctx.boxes.create(acc, 'Plain');
      await ctx.boxes.setSubscribed(acc, 'Plain', true);
      assert.equal((await entry('Plain'))?.subscribed, true);
    }));

  test('a mailbox selected in one session and renamed by another stays one mailbox (UIDs never collide)', () =>
    withStore(make, async (ctx) => {
      await ctx.boxes.create(ctx.account, 'Old');
      await deliver(ctx, text(1), { mailbox: 'Old' });
      const a = await ctx.open('Old');
      const rec = new Recorder();
      await a.sync({ claimRecent: true, subscribe: { listener: rec.listener, claimsRecent: true } });
      await ctx.boxes.rename(ctx.account, 'Old', 'New');
      const b = await ctx.open('New');
      const u2 = await append(ctx, b, text(2));
      const u3 = await append(ctx, a, text(3));
      const u4 = await append(ctx, b, text(4));
      assert.ok(1 < u2 && u2 < u3 && u3 < u4, `UIDs 1 < ${u2} < ${u3} < ${u4}`);
      const sa = await a.sync();
      const sb = await b.sync();
      for (const s of [sa, sb]) {
        assert.deepEqual(
          s.messages.map((m) => m.uid),
          [1, u2, u3, u4],
        );
      }
      assert.equal(sa.highestModseq, sb.highestModseq);
      assert.deepEqual(await contentOf(b, u3), Buffer.from(text(3)));
      assert.deepEqual(
        rec.of('exists').flatMap((c) => c.messages.map((m) => m.uid)),
        [u2, u3, u4],
        'the session that had it selected hears of every new message',
      );
    }));
}

function messagesContract(make: MakeStore): void {
  test('delivered and appended messages get UIDs 1, 2, 3 ...; UIDNEXT; a UID is never used again', () =>
    withStore(make, async (ctx) => {
      const box = await ctx.open('INBOX');
      assert.equal((await box.sync()).uidNext, 1);
      for (const n of [1, 2, 3]) await deliver(ctx, text(n));
      let s = await box.sync();
      assert.deepEqual(
        s.messages.map((m) => m.uid),
        [1, 2, 3],
      );
      assert.equal(s.uidNext, 4);
      assert.equal(await append(ctx, box, text(4)), 4);
      await deliver(ctx, text(5));
      assert.equal((await box.sync()).uidNext, 6);
      assert.deepEqual(await box.expunge([5]), [5]);
      s = await box.sync();
      assert.equal(s.uidNext, 6, 'an expunge does not give the UID back');
      assert.equal(await append(ctx, box, text(6)), 6);
      assert.deepEqual(await box.expunge([1, 2, 3, 4, 6]), [1, 2, 3, 4, 6]);
      assert.deepEqual((await box.sync()).messages, []);
      await deliver(ctx, text(7));
      s = await box.sync();
      assert.deepEqual(
        s.messages.map((m) => m.uid),
        [7],
      );
      assert.equal(s.uidNext, 8);
      // One delivery to two mailboxes: a UID in each.
      const msg = await (async () => {
        const w = ctx.store.createSpool();
        await w.write(Buffer.from(text(8)));
        return w.finish();
      })();
      const copies = await ctx.store.deliver(
        [
          { account: ctx.account, prefix: Buffer.alloc(0) },
          { account: ctx.account, mailbox: 'Junk', prefix: Buffer.from('X-Spam: yes\r\n') },
        ],
        msg,
      );
      await msg.dispose();
      assert.equal(copies.length, 2);
      assert.deepEqual(
        (await box.sync()).messages.map((m) => m.uid),
        [7, 8],
      );
      const junk = await ctx.open('Junk');
      assert.deepEqual(
        (await junk.sync()).messages.map((m) => m.uid),
        [1],
      );
      assert.deepEqual(await contentOf(junk, 1), Buffer.from(`X-Spam: yes\r\n${text(8)}`));
    }));

  test('APPEND keeps flags, keywords and the internal date; meta() describes a message', () =>
    withStore(make, async (ctx) => {
      const box = await ctx.open('Drafts');
      const date = new Date('2024-07-04T10:00:00Z');
      const bytes = text('draft');
      const uid = await append(ctx, box, bytes, ['\\Draft', '\\Seen', '$Label1'], date);
      const m = box.meta(uid);
      assert.ok(m);
      assert.equal(m.uid, uid);
      assert.deepEqual(sorted(m.flags), ['$Label1', '\\Draft', '\\Seen']);
      assert.equal(m.internalDate.getTime(), date.getTime());
      assert.equal(m.size, Buffer.byteLength(bytes));
      assert.ok(m.modseq > 0);
      const s = await box.sync();
      assert.deepEqual(
        s.messages.map((x) => ({ ...x, flags: sorted(x.flags) })),
        [{ ...m, flags: sorted(m.flags) }],
      );
      assert.ok(s.keywords.includes('$Label1'));
      // Without a date, the internal date is the time of the append (whole seconds are enough).
      const t0 = Date.now();
      const u2 = await append(ctx, box, text(2));
      const t1 = Date.now();
      const d2 = box.meta(u2)?.internalDate.getTime() ?? 0;
      assert.ok(d2 >= t0 - 1000 && d2 <= t1 + 1000, `${d2} in [${t0}, ${t1}]`);
      assert.deepEqual(box.meta(u2)?.flags, []);
      assert.equal(box.meta(999), null);
      await box.expunge([u2]);
      assert.equal(box.meta(u2), null, 'an expunged message has no metadata');
    }));

  test('openMessage: size, read() at offsets and stream(start, end) are byte-exact', () =>
    withStore(make, async (ctx) => {
      // Larger than a memory spool and than a stream's chunk; every byte value; CRLF lines.
      const rnd = prng(7);
      const random = Buffer.from(Array.from({ length: 1_500_000 }, () => rnd(256)));
      const body = Buffer.concat([Buffer.from(text('big')), random, Buffer.from('\r\n')]);
      const prefix = 'Return-Path: <a@example.test>\r\nDelivered-To: alice@example.test\r\n';
      const copy = await deliver(ctx, body, { prefix });
      const whole = Buffer.concat([Buffer.from(prefix), body]);
      assert.equal(copy.size, whole.length);
      const box = await ctx.open('INBOX');
      await box.sync();
      assert.equal(box.meta(1)?.size, whole.length);
      const h = await box.openMessage(1);
      assert.ok(h);
      try {
        assert.equal(h.size, whole.length);
        for (const pos of [0, 1, 4095, 65_536, 1_048_577, whole.length - 10, whole.length, whole.length + 5]) {
          const buf = Buffer.alloc(1000);
          const { bytesRead } = await h.read(buf, 0, buf.length, pos);
          const want = whole.subarray(pos, pos + 1000);
          assert.equal(bytesRead, want.length, `read at ${pos}`);
          assert.deepEqual(buf.subarray(0, bytesRead), want, `read at ${pos}`);
        }
        const into = Buffer.alloc(20, 0xee);
        assert.equal((await h.read(into, 5, 10, 100)).bytesRead, 10);
        assert.deepEqual(into, Buffer.concat([Buffer.alloc(5, 0xee), whole.subarray(100, 110), Buffer.alloc(5, 0xee)]));
        const ranges: [number, number][] = [
          [0, whole.length],
          [0, 1],
          [100, 70_000],
          [65_535, 1_300_000],
          [whole.length - 1, whole.length],
          [500, 500],
        ];
        for (const [a, b] of ranges)
          assert.deepEqual(await streamed(h, a, b), whole.subarray(a, b), `stream ${a}-${b}`);
        // Two streams of one body at once, and a read after them: the body stays open.
        const [x, y] = await Promise.all([streamed(h, 0, 300_000), streamed(h, 300_000, 600_000)]);
        assert.deepEqual(Buffer.concat([x, y]), whole.subarray(0, 600_000));
        assert.equal((await h.read(Buffer.alloc(4), 0, 4, 0)).bytesRead, 4);
      } finally {
        await h.close();
      }
      const uid = await append(ctx, box, body);
      assert.deepEqual(await contentOf(box, uid), body);
      assert.equal(await box.openMessage(999), null);
    }));

  test('an expunged message stays readable until every subscriber acknowledged the expunge', () =>
    withStore(make, async (ctx) => {
      const box = await ctx.open('INBOX');
      for (const n of [1, 2, 3, 4, 5]) await deliver(ctx, text(n));
      const a = new Recorder();
      const b = new Recorder();
      await box.sync({ subscribe: { listener: a.listener } });
      await box.sync({ subscribe: { listener: b.listener } });
      const gone = async (uid: number) => {
        const body = await box.openMessage(uid);
        await body?.close();
        return body === null;
      };
      const early = await box.openMessage(1);
      assert.ok(early);
      assert.deepEqual(await box.expunge([1, 99]), [1]);
      assert.equal(box.meta(1), null);
      assert.ok(!(await box.sync()).messages.some((m) => m.uid === 1));
      assert.deepEqual(await contentOf(box, 1), Buffer.from(text(1)), 'no subscriber acknowledged yet');
      box.acknowledgeExpunges(a.listener, [1]);
      assert.deepEqual(await contentOf(box, 1), Buffer.from(text(1)), 'b has not acknowledged');
      box.acknowledgeExpunges(b.listener, [1]);
      await waitFor(() => gone(1), 'the acknowledged message to go');
      // A body opened before stays readable whatever happened to the message.
      assert.deepEqual(await streamed(early, 0, early.size), Buffer.from(text(1)));
      await early.close();
      // A subscriber that leaves no longer holds expunged messages.
      await box.expunge([2]);
      box.unsubscribe(a.listener);
      assert.deepEqual(await contentOf(box, 2), Buffer.from(text(2)), 'b is still subscribed');
      box.unsubscribe(b.listener);
      await waitFor(() => gone(2), 'the message to go when the last subscriber left');
      // With no subscriber, an expunged message goes at once.
      await box.expunge([3]);
      await waitFor(() => gone(3), 'an expunged message nobody holds to go');
      // EXPUNGE (onlyDeleted): only messages that have \Deleted now.
      await box.storeFlags([4], 'add', ['\\Deleted']);
      assert.deepEqual(await box.expunge([4, 5], null, true), [4]);
      assert.ok(box.meta(5));
      assert.deepEqual(await box.expunge([4]), [], 'already gone');
    }));

  test('storeFlags: set, add and remove system flags and keywords; the result, meta() and sync() agree', () =>
    withStore(make, async (ctx) => {
      const box = await ctx.open('INBOX');
      for (const n of [1, 2, 3]) await deliver(ctx, text(n));
      await box.sync();
      const flagsOf = (uid: number) => sorted(box.meta(uid)?.flags ?? []);
      let r = await box.storeFlags([1, 2], 'add', ['\\Seen', '\\Flagged', '$Work']);
      assert.deepEqual(
        r.changed.map((m) => m.uid),
        [1, 2],
      );
      assert.deepEqual(r.modifiedRefused, []);
      for (const m of r.changed) {
        assert.deepEqual(sorted(m.flags), ['$Work', '\\Flagged', '\\Seen']);
        assert.deepEqual(flagsOf(m.uid), sorted(m.flags));
        assert.equal(box.meta(m.uid)?.modseq, m.modseq);
      }
      assert.deepEqual(flagsOf(3), []);
      r = await box.storeFlags([1], 'remove', ['\\Flagged', '$Work']);
      assert.deepEqual(sorted(r.changed[0]?.flags ?? []), ['\\Seen']);
      assert.deepEqual(flagsOf(1), ['\\Seen']);
      await box.storeFlags([2], 'set', ['\\Answered', '\\Draft', '\\Deleted', 'Custom']);
      assert.deepEqual(flagsOf(2), ['Custom', '\\Answered', '\\Deleted', '\\Draft']);
      await box.storeFlags([2], 'set', []);
      assert.deepEqual(flagsOf(2), []);
      const every = ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft', '$Forwarded', '$Junk', 'x-custom'];
      await box.storeFlags([3], 'add', every);
      assert.deepEqual(flagsOf(3), sorted(every));
      await box.storeFlags([3], 'remove', ['$Junk', '\\Deleted']);
      assert.deepEqual(flagsOf(3), sorted(every.filter((f) => f !== '$Junk' && f !== '\\Deleted')));
      assert.deepEqual(await box.storeFlags([99], 'add', ['\\Seen']), { changed: [], modifiedRefused: [] });
      for (const m of (await box.sync()).messages) assert.deepEqual(sorted(m.flags), flagsOf(m.uid), `${m.uid}`);
    }));

  test('UNCHANGEDSINCE (RFC 7162 §3.1.3): messages modified since are refused and left alone', () =>
    withStore(make, async (ctx) => {
      const box = await ctx.open('INBOX');
      for (const n of [1, 2, 3]) await deliver(ctx, text(n));
      const m0 = (await box.sync()).highestModseq;
      await box.storeFlags([2], 'add', ['\\Seen']);
      let r = await box.storeFlags([1, 2, 3], 'add', ['\\Flagged'], { unchangedSince: m0 });
      assert.deepEqual(r.modifiedRefused, [2]);
      assert.deepEqual(
        r.changed.map((m) => m.uid),
        [1, 3],
      );
      assert.deepEqual(box.meta(2)?.flags, ['\\Seen'], 'a refused message is not changed');
      // UNCHANGEDSINCE 0 always fails (every message has a MODSEQ).
      r = await box.storeFlags([1], 'add', ['\\Answered'], { unchangedSince: 0 });
      assert.deepEqual(r, { changed: [], modifiedRefused: [1] });
      // Unmodified since, but nothing to change: neither changed nor refused.
      r = await box.storeFlags([1], 'add', ['\\Flagged'], { unchangedSince: box.meta(1)?.modseq ?? 0 });
      assert.deepEqual(r, { changed: [], modifiedRefused: [] });
      r = await box.storeFlags([1], 'add', ['\\Answered'], { unchangedSince: null });
      assert.equal(r.changed.length, 1);
      // Sessions racing with the same UNCHANGEDSINCE: exactly one wins.
      const since = box.meta(3)?.modseq ?? 0;
      const results = await Promise.all(
        [0, 1, 2, 3, 4].map((i) => box.storeFlags([3], 'set', [`$s${i}`], { unchangedSince: since, origin: {} })),
      );
      assert.equal(results.filter((x) => x.changed.length === 1).length, 1);
      assert.equal(results.filter((x) => x.modifiedRefused[0] === 3).length, 4);
      const winner = results.find((x) => x.changed.length === 1)?.changed[0];
      assert.deepEqual(box.meta(3)?.flags, winner?.flags);
    }));

  test('each change gets a MODSEQ above every earlier one; HIGHESTMODSEQ follows; no-ops change none', () =>
    withStore(make, async (ctx) => {
      const box = await ctx.open('INBOX');
      for (const n of [1, 2, 3, 4]) await deliver(ctx, text(n));
      let high = (await box.sync()).highestModseq;
      for (const m of (await box.sync()).messages) assert.ok(m.modseq <= high);
      const above = async (modseqs: readonly number[]) => {
        for (const m of modseqs) {
          assert.ok(m > high, `${m} > ${high}`);
          high = m;
        }
        assert.equal((await box.sync()).highestModseq, high);
      };
      await above((await box.storeFlags([3, 1, 2], 'add', ['\\Seen'])).changed.map((m) => m.modseq));
      await above((await box.storeFlags([1], 'add', ['$A'])).changed.map((m) => m.modseq));
      const uid = await append(ctx, box, text(5), ['\\Flagged']);
      await above([box.meta(uid)?.modseq ?? 0]);
      await box.expunge([2]);
      const afterExpunge = (await box.sync()).highestModseq;
      assert.ok(afterExpunge > high, 'an expunge is a change');
      high = afterExpunge;
      await above((await box.storeFlags([1, 3], 'set', ['\\Answered'])).changed.map((m) => m.modseq));
      // Stores that change nothing change no MODSEQ (RFC 7162 §3.1).
      const metas = (await box.sync()).messages;
      assert.deepEqual((await box.storeFlags([1], 'add', ['\\Answered'])).changed, []);
      assert.deepEqual((await box.storeFlags([1, 4], 'remove', ['\\Draft'])).changed, []);
      assert.deepEqual((await box.storeFlags([2], 'add', ['\\Seen'])).changed, [], 'an expunged message');
      const same = await box.sync();
      assert.equal(same.highestModseq, high);
      assert.deepEqual(same.messages, metas);
    }));

  test('the keywords a mailbox has defined only grow, in the order they were defined', () =>
    withStore(make, async (ctx) => {
      const box = await ctx.open('INBOX');
      await deliver(ctx, text(1));
      assert.deepEqual((await box.sync()).keywords, []);
      await box.storeFlags([1], 'add', ['$A']);
      await box.storeFlags([1], 'add', ['$B', '\\Seen']);
      await box.storeFlags([1], 'remove', ['$A', '$B']);
      assert.deepEqual((await box.sync()).keywords, ['$A', '$B']);
      const uid = await append(ctx, box, text(2), ['$C', '$A']);
      assert.deepEqual((await box.sync()).keywords, ['$A', '$B', '$C']);
      await box.expunge([1, uid]);
      assert.deepEqual((await box.sync()).keywords, ['$A', '$B', '$C']);
    }));
}
