// The mail store contract, part: the full-text search (Mailboxes.searchEmails; docs/jmap-email.md
// "Search"), what JMAP Email/query text conditions use. An index kept in the background: every
// answer is complete with its `unindexed` tail (emails appended since the index's position),
// and the index catches up with appends, expunges, a restart and the loss of its file.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Mailbox, TextCondition, TextField, TextSearchResult } from '../../src/store/mailboxes.ts';
import { append, type Ctx, deliver, type MakeStore, waitFor, withStore } from './contract-support.ts';

const mail = (from: string, subject: string, body: string, extra = '') =>
  `From: ${from}\r\nTo: Alice <alice@example.test>\r\n${extra}Subject: ${subject}\r\n` +
  `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n`;

const search = (ctx: Ctx, field: TextField, value: string, more: TextCondition[] = []) =>
  ctx.boxes.searchEmails(ctx.account, [{ field, value }, ...more]);

/** The ids found, once the index has caught up (no unindexed tail left). */
async function indexed(ctx: Ctx, field: TextField, value: string, more: TextCondition[] = []): Promise<string[]> {
  let r: TextSearchResult | null = null;
  await waitFor(
    async () => {
      r = await search(ctx, field, value, more);
      return r !== null && r.unindexed.length === 0;
    },
    `the index answers ${field}:${value} alone`,
    30_000,
  );
  return [...(r as unknown as TextSearchResult).ids].sort();
}

/** The email id of the newest email. */
async function newest(ctx: Ctx): Promise<string> {
  await ctx.boxes.indexDeliveries(ctx.account);
  const page = await ctx.boxes.accountMessages(ctx.account, {
    sort: 'receivedAt',
    descending: true,
    position: 0,
    limit: 1,
  });
  return page.ids[0] as string;
}

export function searchContract(make: MakeStore): void {
  test('searchEmails: words and prefixes by field, case and accents ignored, phrases, client syntax inert', () =>
    withStore(make, async (ctx) => {
      const inbox = await ctx.open('INBOX');
      await inbox.sync();
      await deliver(ctx, mail('Bob Martin <bob@example.test>', 'Réunion de lundi', 'The quick brown fox, complète.'));
      const a = await newest(ctx);
      await append(
        ctx,
        inbox,
        mail('=?utf-8?q?Zo=C3=A9?= <zoe@example.test>', 'Budget', 'zebra crossing', 'Cc: carol@example.test\r\n'),
      );
      const b = await newest(ctx);
      const html =
        'From: dan@example.test\r\nSubject: html\r\nContent-Type: text/html\r\n\r\n<p>Hello <b>world</b> &amp; more</p>\r\n';
      await append(ctx, inbox, html);
      const c = await newest(ctx);
      assert.deepEqual(await indexed(ctx, 'text', 'quick'), [a]);
      assert.deepEqual(await indexed(ctx, 'subject', 'REUNION'), [a], 'case and accents');
      assert.deepEqual(await indexed(ctx, 'subject', 'réu'), [a], 'a word prefix');
      assert.deepEqual(await indexed(ctx, 'body', 'complete'), [a]);
      assert.deepEqual(await indexed(ctx, 'from', 'bob@example.test'), [a], 'an address');
      assert.deepEqual(await indexed(ctx, 'from', 'martin'), [a], 'a name');
      assert.deepEqual(await indexed(ctx, 'from', 'zoe'), [b], 'an encoded word decoded, accents ignored');
      assert.deepEqual(await indexed(ctx, 'cc', 'carol'), [b]);
      assert.deepEqual(await indexed(ctx, 'to', 'alice'), [a, b].sort());
      assert.deepEqual(await indexed(ctx, 'from', 'quick'), [], 'a body word is not in From');
      assert.deepEqual(await indexed(ctx, 'subject', 'fox'), []);
      assert.deepEqual(await indexed(ctx, 'text', 'zebra'), [b], 'text: the body too');
      assert.deepEqual(await indexed(ctx, 'text', 'budget zebra'), [b], 'every word, in any field');
      assert.deepEqual(await indexed(ctx, 'text', 'budget quick'), []);
      assert.deepEqual(await indexed(ctx, 'body', '"quick brown"'), [a], 'a phrase');
      assert.deepEqual(await indexed(ctx, 'body', '"brown quick"'), [], 'a phrase in order');
      assert.deepEqual(await indexed(ctx, 'body', 'world'), [c], 'HTML as text');
      assert.deepEqual(await indexed(ctx, 'body', 'amp'), [], 'entities decoded');
      assert.deepEqual(await indexed(ctx, 'text', 'quick', [{ field: 'subject', value: 'budget' }]), [], 'AND');
      for (const hostile of ['NOT quick', 'quick OR zebra', '{body} : zebra', 'qu* ) (', '"unbalanced', 'NEAR(a b)']) {
        const r = await search(ctx, 'text', hostile);
        assert.ok(r === null || Array.isArray(r.ids), hostile);
      }
      assert.deepEqual(await indexed(ctx, 'text', 'quick OR zebra'), [], 'OR is a word');
      assert.deepEqual(await indexed(ctx, 'text', '...'), [a, b, c].sort(), 'no word: every email');
    }));

  test('searchEmails: an email appended is found at once (unindexed tail), then by the index', () =>
    withStore(make, async (ctx) => {
      const inbox = await ctx.open('INBOX');
      await inbox.sync();
      await append(ctx, inbox, mail('a@example.test', 'first', 'aardvark'));
      await indexed(ctx, 'text', 'aardvark');
      await append(ctx, inbox, mail('a@example.test', 'second', 'aardvark again'));
      const id = await newest(ctx);
      const r = await search(ctx, 'text', 'aardvark');
      assert.ok(r);
      assert.ok(r.ids.includes(id) || r.unindexed.includes(id), 'found or left to the caller');
      assert.equal((await indexed(ctx, 'text', 'aardvark')).length, 2);
    }));

  test('searchEmails: an email goes with its last copy; a large body is indexed up to the limit', () =>
    withStore(make, async (ctx) => {
      const inbox = await ctx.open('INBOX');
      await ctx.boxes.create(ctx.account, 'Archive');
      const archive = await ctx.open('Archive');
      await Promise.all([inbox.sync(), archive.sync()]);
      const uid = await append(ctx, inbox, mail('a@example.test', 'kept', 'platypus'));
      const id = inbox.emailIds([uid]).get(uid) as string;
      const big = `${'lorem ipsum '.repeat(200_000)}needle-at-the-end`;
      await append(ctx, inbox, mail('a@example.test', 'big', `wombat ${big}`));
      const bigId = await newest(ctx);
      assert.deepEqual(await indexed(ctx, 'text', 'platypus'), [id]);
      assert.deepEqual(await indexed(ctx, 'body', 'wombat'), [bigId], 'the start of a 2.4 MB body');
      await inbox.copyTo([uid], archive);
      await inbox.expunge([uid]);
      await indexed(ctx, 'text', 'kept');
      assert.deepEqual(await indexed(ctx, 'text', 'platypus'), [id], 'a copy is left');
      await archive.expunge(await uidsOf(archive));
      await waitFor(async () => (await indexed(ctx, 'text', 'platypus')).length === 0, 'the email removed', 30_000);
    }));

  test('searchEmails: a purged account leaves nothing behind for a new account of the same name', () =>
    withStore(make, async (ctx) => {
      let inbox = await ctx.open('INBOX');
      await inbox.sync();
      await append(ctx, inbox, mail('a@example.test', 'secret', 'okapi'));
      await indexed(ctx, 'text', 'okapi');
      ctx.boxes.release(ctx.account, inbox);
      await ctx.store.purgeAccount(ctx.account);
      await ctx.store.createAccount(ctx.account);
      inbox = await ctx.open('INBOX');
      await inbox.sync();
      const r = await search(ctx, 'text', 'okapi');
      assert.ok(r === null || (r.ids.length === 0 && r.unindexed.length === 0));
    }));

  test('searchEmails: the index catches up after a restart and is rebuilt after its loss', () =>
    withStore(make, async (ctx) => {
      let inbox = await ctx.open('INBOX');
      await inbox.sync();
      await append(ctx, inbox, mail('a@example.test', 'one', 'capybara'));
      const one = await newest(ctx);
      await indexed(ctx, 'text', 'capybara');
      await ctx.reopen();
      inbox = await ctx.open('INBOX');
      await inbox.sync();
      await append(ctx, inbox, mail('a@example.test', 'two', 'capybara'));
      const two = await newest(ctx);
      assert.deepEqual(await indexed(ctx, 'text', 'capybara'), [one, two].sort(), 'after a restart');
      const lost = await ctx.reopen({ loseSearchIndex: true });
      if (!lost) return;
      assert.deepEqual(await indexed(ctx, 'text', 'capybara'), [one, two].sort(), 'rebuilt');
    }));
}

async function uidsOf(box: Mailbox): Promise<number[]> {
  return (await box.sync()).messages.map((m) => m.uid);
}
