// The mail store contract, part: the account journal (Mailboxes.accountState and
// accountChangesSince; docs/architecture.md §7), what JMAP's states and /changes are built on.
// Every change of every mailbox of one account, and mailbox events, in one order.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import type { AccountChange } from '../../src/store/mailboxes.ts';
import { deliver, type MakeStore, text, waitFor, withStore } from './contract-support.ts';

export function journalContract(make: MakeStore): void {
  test('accountChangesSince: every mailbox of the account in one order, with mailbox and email ids', () =>
    withStore(make, async (ctx) => {
      const acc = ctx.account;
      const start = await ctx.boxes.accountState(acc);
      const ids = async () => new Map((await ctx.boxes.list(acc, { ids: true })).map((e) => [e.name, e.id]));
      await ids(); // may make index entries (and journal entries) for folders never used
      const s0 = await ctx.boxes.accountState(acc);
      assert.ok(s0 >= start);
      await deliver(ctx, text(1));
      const inbox = await ctx.open('INBOX');
      await inbox.sync();
      const email = inbox.emailIds([1]).get(1);
      await inbox.storeFlags([1], 'add', ['\\Seen']);
      const sent = await ctx.open('Sent');
      await sent.sync();
      const [[, inSent] = [0, 0]] = await inbox.copyTo([1], sent);
      await ctx.boxes.create(acc, 'Box');
      const box = await ctx.open('Box');
      await box.sync();
      await sent.copyTo([inSent], box, { move: true });
      await ctx.boxes.rename(acc, 'Box', 'Crate');
      await ctx.boxes.setSubscribed(acc, 'Crate', true);
      const mid = await ctx.boxes.accountState(acc);
      const before = await ids();
      await ctx.boxes.delete(acc, 'Crate');
      const s1 = await ctx.boxes.accountState(acc);
      const all = await ctx.boxes.accountChangesSince(acc, s0, 1000);
      assert.ok(all);
      assert.equal(all.at(-1)?.aseq, s1, 'the state is the last entry');
      for (let i = 1; i < all.length; i++) assert.ok((all[i]?.aseq ?? 0) > (all[i - 1]?.aseq ?? 0), 'increasing');
      const [ib, st, bx] = [before.get('INBOX'), before.get('Sent'), before.get('Crate')];
      const show = (c: AccountChange) =>
        `${c.kind} ${c.mailboxId === ib ? 'INBOX' : c.mailboxId === st ? 'Sent' : c.mailboxId === bx ? 'Crate' : c.mailboxId}` +
        (c.emailId === null ? '' : c.emailId === email ? ' email' : ` ${c.emailId}`);
      // Index entries made on first use (a default folder never opened) may add creates: skip them.
      const seen = all.filter((c) => !(c.kind === 'mailbox-create' && c.mailboxId !== bx)).map(show);
      assert.deepEqual(seen, [
        'append INBOX email',
        'flags INBOX email',
        'append Sent email',
        'mailbox-create Crate',
        'append Crate email',
        'expunge Sent email',
        'mailbox-rename Crate',
        'mailbox-subscribe Crate',
        'expunge Crate email',
        'mailbox-delete Crate',
      ]);
      // Pages: `max` entries at a time, each page after the last one's aseq.
      const paged: AccountChange[] = [];
      for (let at = s0; ; ) {
        const page = await ctx.boxes.accountChangesSince(acc, at, 3);
        assert.ok(page);
        if (page.length === 0) break;
        assert.ok(page.length <= 3);
        paged.push(...page);
        at = page.at(-1)?.aseq ?? at;
      }
      assert.deepEqual(paged, all);
      assert.deepEqual(
        await ctx.boxes.accountChangesSince(acc, mid, 1000),
        all.filter((c) => c.aseq > mid),
      );
      assert.deepEqual(await ctx.boxes.accountChangesSince(acc, s1, 1000), []);
      assert.equal(await ctx.boxes.accountChangesSince(acc, s1 + 1000, 10), null, 'a state it never gave');
    }));

  test('accountState: moves with the account’s changes only; a lost index starts a new history (null before)', () =>
    withStore(make, async (ctx) => {
      const other = `zed${ctx.account.slice(ctx.account.indexOf('@'))}` as AccountId;
      await ctx.store.createAccount(other);
      await deliver(ctx, text(1));
      const mine = await ctx.open('INBOX');
      await mine.sync();
      const a0 = await ctx.boxes.accountState(ctx.account);
      const o0 = await ctx.boxes.accountState(other);
      const target = { account: other, mailbox: 'INBOX', prefix: Buffer.alloc(0) };
      const w = ctx.store.createSpool();
      await w.write(Buffer.from(text(2)));
      const msg = await w.finish();
      await ctx.store.deliver([target], msg);
      await msg.dispose();
      const theirs = await ctx.boxes.open(other, 'INBOX');
      await theirs.sync();
      await theirs.storeFlags([1], 'add', ['\\Flagged']);
      await ctx.boxes.create(other, 'Elsewhere');
      assert.equal(await ctx.boxes.accountState(ctx.account), a0, 'another account’s changes do not count');
      assert.ok((await ctx.boxes.accountState(other)) > o0);
      assert.deepEqual(await ctx.boxes.accountChangesSince(ctx.account, a0, 100), []);
      await mine.storeFlags([1], 'add', ['\\Seen']);
      const a1 = await ctx.boxes.accountState(ctx.account);
      assert.ok(a1 > a0);
      await ctx.reopen();
      assert.equal(await ctx.boxes.accountState(ctx.account), a1, 'kept by a restart');
      assert.equal((await ctx.boxes.accountChangesSince(ctx.account, a0, 100))?.length, 1);
      if (await ctx.reopen({ loseIndex: true })) {
        const box = await ctx.open('INBOX');
        await box.sync(); // the index is rebuilt from the files: a new history
        assert.equal(await ctx.boxes.accountChangesSince(ctx.account, a1, 100), null, 'below the floor');
        assert.equal(await ctx.boxes.accountChangesSince(ctx.account, a0, 100), null);
        const a2 = await ctx.boxes.accountState(ctx.account);
        assert.ok(a2 > a1, 'states never go back');
        assert.deepEqual(await ctx.boxes.accountChangesSince(ctx.account, a2, 100), []);
      }
    }));

  test('watchAccount: told after journal changes of any kind; deliveries to unopened mailboxes indexed at once', () =>
    withStore(make, async (ctx) => {
      const acc = ctx.account;
      await ctx.boxes.list(acc, { ids: true });
      let told = 0;
      const stop = ctx.boxes.watchAccount(acc, () => told++);
      const advanced = async (what: string, fn: () => Promise<unknown>) => {
        const [n, s] = [told, await ctx.boxes.accountState(acc)];
        await fn();
        await waitFor(async () => told > n && (await ctx.boxes.accountState(acc)) > s, what);
      };
      await advanced('create', () => ctx.boxes.create(acc, 'Watched'));
      await advanced('subscribe', () => ctx.boxes.setSubscribed(acc, 'Watched', false));
      // A delivery into a mailbox nobody has open: indexed (journal entry) without a session.
      await advanced('delivery', () => deliver(ctx, text(1), { mailbox: 'Watched' }));
      const box = await ctx.open('Watched');
      const status = await box.sync();
      assert.equal(status.messages.length, 1);
      await advanced('flags', () => box.storeFlags([1], 'add', ['\\Seen']));
      await advanced('rename', () => ctx.boxes.rename(acc, 'Watched', 'Seen'));
      stop();
      const n = told;
      await ctx.boxes.create(acc, 'Unwatched');
      assert.equal(told, n, 'not told after stop');
    }));

  test('indexDeliveries: a delivery into a mailbox no session has open enters the journal', () =>
    withStore(make, async (ctx) => {
      const acc = ctx.account;
      await ctx.boxes.create(acc, 'Quiet');
      const s0 = await ctx.boxes.accountState(acc);
      await deliver(ctx, text(1), { mailbox: 'Quiet' });
      await ctx.boxes.indexDeliveries(acc);
      const rows = await ctx.boxes.accountChangesSince(acc, s0, 10);
      assert.deepEqual(
        rows?.map((r) => r.kind),
        ['append'],
      );
      await ctx.boxes.indexDeliveries(acc); // nothing left: no change
      assert.equal(await ctx.boxes.accountState(acc), rows?.[0]?.aseq);
    }));
}
