// The mail store contract, delivery with flags and without creating folders (issue #16: what
// Sieve's imap4flags, fileinto :flags and fileinto without :create need of MailStore.deliver),
// and mailboxExists. Through the interfaces only (contract-support.ts).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import { LIMITS } from '../../src/core/limits.ts';
import {
  append,
  deliver,
  type MakeStore,
  Recorder,
  rejectsWith,
  sorted,
  spool,
  text,
  waitFor,
  withStore,
} from './contract-support.ts';

export function deliveryContract(make: MakeStore): void {
  test('deliver with flags: system flags and keywords at once, a UID and \\Recent like any delivery', () =>
    withStore(make, async (ctx) => {
      await deliver(ctx, text(1));
      await deliver(ctx, text(2), { flags: ['\\Seen', '\\Flagged', '$label1', 'Work'] });
      await deliver(ctx, text(3), { flags: ['\\Answered', '\\Draft', '\\Deleted', '$Forwarded'] });
      const box = await ctx.open('INBOX');
      const s = await box.sync({ claimRecent: true });
      assert.deepEqual(
        s.messages.map((m) => [m.uid, sorted(m.flags)]),
        [
          [1, []],
          [2, ['$label1', 'Work', '\\Flagged', '\\Seen']],
          [3, ['$Forwarded', '\\Answered', '\\Deleted', '\\Draft']],
        ],
      );
      assert.deepEqual(s.keywords, ['$label1', 'Work']);
      assert.equal(s.uidNext, 4);
      // \Recent is a session's (RFC 3501 §2.3.2): new to this mailbox, flags or not.
      assert.deepEqual(s.recent, [1, 2, 3]);
      // The flags are the message's like any others: STORE changes them, a restart keeps them.
      await box.storeFlags([2], 'remove', ['\\Seen', 'Work']);
      await ctx.reopen();
      const again = await (await ctx.open('INBOX')).sync();
      assert.deepEqual(sorted(again.messages[1]?.flags ?? []), ['$label1', '\\Flagged']);
      assert.deepEqual(sorted(again.messages[2]?.flags ?? []), ['$Forwarded', '\\Answered', '\\Deleted', '\\Draft']);
    }));

  test('deliver with flags: \\Recent, non-atoms, unknown system flags and duplicates are dropped, bounded', () =>
    withStore(make, async (ctx) => {
      const long = 'k'.repeat(LIMITS.store.maxKeywordLength + 1);
      const junk = ['\\Recent', 'two words', 'a(b', 'x]', '"q"', 'st*r', '%', '\\Custom', '', long, 'é', 'a\u0001'];
      await deliver(ctx, text(1), { flags: [...junk, '\\SEEN', '\\seen', 'Kw', 'KW'] });
      await deliver(ctx, text(2), { flags: junk });
      const many = Array.from({ length: LIMITS.store.maxDeliveryFlags + 10 }, (_, i) => `$k${i}`);
      await deliver(ctx, text(3), { flags: many });
      const s = await (await ctx.open('INBOX')).sync();
      assert.deepEqual(sorted(s.messages[0]?.flags ?? []), ['Kw', '\\Seen']);
      assert.deepEqual(s.messages[1]?.flags, [], 'only invalid flags: delivered as without flags');
      // At most 26 keywords per mailbox (as Dovecot): the message gets those that fit.
      const kws = s.messages[2]?.flags ?? [];
      assert.equal(kws.length, 25);
      assert.equal(s.keywords.length, 26);
    }));

  test('deliver with keywords shares the table with STORE and APPEND (one letter per keyword)', () =>
    withStore(make, async (ctx) => {
      const box = await ctx.open('Junk');
      const rec = new Recorder();
      await box.sync({ subscribe: { listener: rec.listener } });
      const u1 = await append(ctx, box, text(1), ['Old']);
      await deliver(ctx, text(2), { mailbox: 'Junk', flags: ['old', 'New'] });
      // A subscriber hears of the delivered message with its flags.
      await waitFor(async () => rec.of('exists').some((c) => c.messages.some((m) => m.uid === u1 + 1)), 'EXISTS');
      const ev = rec
        .of('exists')
        .flatMap((c) => c.messages)
        .find((m) => m.uid === u1 + 1);
      assert.deepEqual(sorted(ev?.flags ?? []), ['New', 'Old']);
      await box.storeFlags([u1], 'add', ['Third']);
      const s = await box.sync();
      assert.deepEqual(s.keywords, ['Old', 'New', 'Third']);
      assert.deepEqual(
        s.messages.map((m) => sorted(m.flags)),
        [
          ['Old', 'Third'],
          ['New', 'Old'],
        ],
      );
      box.unsubscribe(rec.listener);
    }));

  test('create: false delivers into an existing folder and refuses a missing one before writing anything', () =>
    withStore(make, async (ctx) => {
      await deliver(ctx, text(1), { mailbox: 'Junk', create: false });
      await deliver(ctx, text(2), { mailbox: 'inbox', create: false });
      const msg = await spool(ctx.store, text(3));
      try {
        await rejectsWith(
          ctx.store.deliver(
            [
              { account: ctx.account, mailbox: 'INBOX', prefix: Buffer.alloc(0) },
              { account: ctx.account, mailbox: 'Missing', prefix: Buffer.alloc(0), create: false },
            ],
            msg,
          ),
          'NOT_FOUND',
          'missing folder',
        );
      } finally {
        await msg.dispose();
      }
      assert.equal(await ctx.store.mailboxExists(ctx.account, 'Missing'), false);
      assert.equal(await ctx.boxes.exists(ctx.account, 'Missing'), false);
      assert.equal((await (await ctx.open('INBOX')).sync()).messages.length, 1, 'no copy of the failed delivery');
      assert.equal((await (await ctx.open('Junk')).sync()).messages.length, 1);
      // A folder deleted after a delivery into it is missing for the next one.
      await ctx.boxes.create(ctx.account, 'Gone');
      await deliver(ctx, text(5), { mailbox: 'Gone', create: false });
      await ctx.boxes.delete(ctx.account, 'Gone');
      await rejectsWith(deliver(ctx, text(6), { mailbox: 'Gone', create: false }), 'NOT_FOUND', 'deleted folder');
      // The default (create: true) makes the folder, as for Junk today.
      await deliver(ctx, text(4), { mailbox: 'Lists.arcline' });
      assert.equal(await ctx.store.mailboxExists(ctx.account, 'Lists.arcline'), true);
      assert.equal((await (await ctx.open('Lists.arcline')).sync()).messages.length, 1);
    }));

  test('mailboxExists names mailboxes as IMAP does and refuses names that cannot be one', () =>
    withStore(make, async (ctx) => {
      const exists = (name: string) => ctx.store.mailboxExists(ctx.account, name);
      for (const name of ['INBOX', 'inbox', 'InBox', 'Junk', 'Sent']) assert.equal(await exists(name), true, name);
      assert.equal(await exists('junk'), false, 'only INBOX is case-insensitive');
      await ctx.boxes.create(ctx.account, 'INBOX.Sub');
      assert.equal(await exists('inbox.Sub'), true, 'INBOX as a parent is case-insensitive too');
      await deliver(ctx, text(0), { mailbox: 'Inbox.Sub', create: false });
      assert.equal((await (await ctx.open('INBOX.Sub')).sync()).messages.length, 1);
      await ctx.boxes.create(ctx.account, 'Entwürfe.2026');
      assert.equal(await exists('Entwürfe'), true);
      assert.equal(await exists('Entwürfe.2026'), true);
      // A delivery to a Unicode name lands in the mailbox IMAP sees under that name.
      await deliver(ctx, text(1), { mailbox: 'Entwürfe.2026', create: false, flags: ['\\Seen'] });
      const s = await (await ctx.open('Entwürfe.2026')).sync();
      assert.deepEqual(
        s.messages.map((m) => m.flags),
        [['\\Seen']],
      );
      const weird = [
        '',
        '.',
        '..',
        '../x',
        'a/b',
        '/etc',
        'a..b',
        '.Junk',
        'Junk.',
        'x\u0000y',
        'x\ny',
        'y'.repeat(300),
      ];
      for (const name of weird) {
        assert.equal(await exists(name), false, JSON.stringify(name));
        await rejectsWith(deliver(ctx, text(2), { mailbox: name }), 'INVALID', JSON.stringify(name));
      }
      assert.equal(await ctx.store.mailboxExists('nobody@example.test' as AccountId, 'INBOX'), false);
      assert.equal(await ctx.store.mailboxExists('../x@example.test' as AccountId, 'INBOX'), false);
    }));
}
