// Email/query text conditions through the full-text index (store/search/, docs/jmap-email.md
// "Search") against the real server over HTTP: messages delivered by SMTP and appended by IMAP,
// words and prefixes without case and accents, phrases, field scoping, a large body, the
// unindexed tail found at once, and an account past the bounded scan (LIMITS.jmapMail.
// maxTextScan) answered through the index; jmap-jam as an independent client.

import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import { LIMITS } from '../../src/core/limits.ts';
import { accountIdOf } from '../../src/jmap/session.ts';
import { imapflowClient } from '../harness/imap-client.ts';
import { transaction } from '../harness/smtp-client.ts';
import { ALICE, aliceId, append, base, call, type Json, MESSAGE, s, useEmailServer } from './email-support.ts';

useEmailServer();

const mail = (subject: string, body: string, from = 'Bob <bob@example.test>') =>
  Buffer.from(
    `From: ${from}\r\nTo: Alice <alice@example.test>\r\nSubject: ${subject}\r\n` +
      `Date: Mon, 7 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n`,
  );

const ids = async (filter: Record<string, unknown>): Promise<string[]> => {
  const r = await call('Email/query', { filter });
  assert.equal(r.error, undefined, JSON.stringify(r.error));
  return [...r.ids].sort();
};

describe('Email/query text conditions through the full-text index (RFC 8621 §4.4.1)', () => {
  test('text, from, subject, body on delivered and appended messages; case, accents, prefixes, phrases', async () => {
    const r = await transaction(
      s.port,
      'dora@example.org',
      [ALICE],
      'From: =?utf-8?q?D=C3=B6ra_Expl=C3=B6rer?= <dora@example.org>\r\nTo: alice@example.test\r\n' +
        'Subject: =?utf-8?q?Caf=C3=A9_cr=C3=A8me?=\r\n\r\nThe quick brown fox jumps over the lazy dog.\r\n',
    );
    assert.equal(r.code, 250);
    const appended = await append(mail('Quarterly numbers', 'Brown bread and a fox-trot'));
    const other = await append(mail('Other', 'nothing of the kind'));
    const [delivered] = await ids({ from: 'dora@example.org' });
    assert.ok(delivered);
    assert.deepEqual(await ids({ subject: 'cafe' }), [delivered], 'accents');
    assert.deepEqual(await ids({ subject: 'CAFÉ CRÈME' }), [delivered], 'case');
    assert.deepEqual(await ids({ subject: 'crem' }), [delivered], 'a word prefix');
    assert.deepEqual(await ids({ from: 'dora explorer' }), [delivered], 'the decoded name');
    assert.deepEqual(await ids({ body: 'fox' }), [appended, delivered].sort());
    assert.deepEqual(await ids({ body: '"quick brown"' }), [delivered], 'a phrase');
    assert.deepEqual(await ids({ body: '"brown quick"' }), [], 'a phrase keeps its order');
    assert.deepEqual(await ids({ text: 'quarterly fox' }), [appended], 'every word, any field');
    assert.deepEqual(await ids({ subject: 'fox' }), [], 'a body word is not in the subject');
    assert.deepEqual(await ids({ text: 'uarterly' }), [], 'words, not substrings');
    assert.deepEqual(
      await ids({ operator: 'OR', conditions: [{ subject: 'quarterly' }, { from: 'dora' }] }),
      [appended, delivered].sort(),
    );
    assert.deepEqual(await ids({ operator: 'AND', conditions: [{ body: 'fox' }, { subject: 'cafe' }] }), [delivered]);
    const notFox = await ids({ operator: 'NOT', conditions: [{ body: 'fox' }] });
    assert.ok(!notFox.includes(appended) && !notFox.includes(delivered) && notFox.includes(other));
    for (const hostile of ['fox OR NOT', '{body} : fox', 'f* ) (', '"unbalanced', 'NEAR(fox dog)', '"']) {
      const q = await call('Email/query', { filter: { text: hostile } });
      assert.ok(Array.isArray(q.ids), `${hostile}: ${JSON.stringify(q.error)}`);
    }
    const snip = await call('SearchSnippet/get', { filter: { body: '"quick brown"' }, emailIds: [delivered] });
    assert.match(snip.list[0].preview, /<mark>quick<\/mark> <mark>brown<\/mark>/);
  });

  test('a large body: its first MiB of text is searchable', async () => {
    const body = `wombat ${'lorem ipsum dolor '.repeat(120_000)} aardwolf`;
    const id = await append(mail('Large one', body));
    assert.deepEqual(await ids({ body: 'wombat' }), [id]);
    assert.ok(body.length > LIMITS.search.maxTextChars);
    assert.deepEqual(await ids({ body: 'aardwolf' }), [], 'past LIMITS.search.maxTextChars');
  });

  test('jmap-jam: a text query with a result reference into Email/get', async () => {
    interface Draft {
      $ref(path: string): unknown;
    }
    interface Jam {
      requestMany<T>(
        f: (t: { Email: Record<'query' | 'get', (a: object) => Draft> }) => T,
      ): Promise<[Record<keyof T, Json>, unknown]>;
    }
    const name = 'jmap-jam';
    const { JamClient } = (await import(name)) as { JamClient: new (c: object) => Jam };
    const bearerToken = s.admin.access.create({ role: { kind: 'user', user: ALICE } }).token;
    const jam = new JamClient({ bearerToken, sessionUrl: `${base}/.well-known/jmap` });
    const id = await append(mail('Jam session', 'Über-cool improvisation'));
    const [{ emails }] = await jam.requestMany((t) => {
      const found = t.Email.query({ accountId: aliceId, filter: { text: 'uber improv' } });
      return { found, emails: t.Email.get({ accountId: aliceId, ids: found.$ref('/ids'), properties: ['subject'] }) };
    });
    assert.deepEqual(emails.list, [{ id, subject: 'Jam session' }]);
  });

  test(`an account past the bounded scan (${LIMITS.jmapMail.maxTextScan} emails) is searched through the index`, async () => {
    // Bob's account: files put into his Maildir by another program (as Dovecot's LDA would),
    // found when IMAP opens INBOX; then indexed in the background.
    const BOB = 'bob@example.test';
    const n = LIMITS.jmapMail.maxTextScan + 200;
    const dir = join(s.mailboxDir(BOB), 'new');
    const stamp = Date.now();
    for (let i = 0; i < n; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, n - i) }, (_, k) => {
          const j = i + k;
          const words = j === 1234 ? 'the unique needle' : j % 10 === 0 ? 'a common tenth' : 'filler text';
          return writeFile(join(dir, `${stamp}.M${j}P1.test`), mail(`Bulk ${j}`, words));
        }),
      );
    }
    const imap = await imapflowClient(s.imapPort, BOB);
    try {
      const box = await imap.mailboxOpen('INBOX');
      assert.equal(box.exists, n);
    } finally {
      await imap.logout();
    }
    const bobId = accountIdOf(BOB as AccountId);
    const auth = `Basic ${Buffer.from(`${BOB}:secret-password`).toString('base64')}`;
    const bob = async (name: string, args: Record<string, unknown>): Promise<Json> => {
      const res = await fetch(`${base}/jmap/api`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({
          using: ['urn:ietf:params:jmap:core', 'urn:ietf:params:jmap:mail'],
          methodCalls: [[name, { accountId: bobId, ...args }, '0']],
        }),
      });
      const [[kind, out]] = ((await res.json()) as { methodResponses: [string, Json][] }).methodResponses as [
        [string, Json],
      ];
      return kind === 'error' ? { error: out } : out;
    };
    // A header condition still reads every message: past the bound it is refused.
    const header = await bob('Email/query', { filter: { header: ['Subject', 'Bulk 1234'] } });
    assert.equal(header.error?.type, 'unsupportedFilter');
    // The text query is answered once the index holds most of the account (until then the
    // unindexed tail is longer than the scan's bound): wait for that, not for a time.
    let found: Json;
    for (;;) {
      found = await bob('Email/query', { filter: { text: 'needle' }, calculateTotal: true });
      if (!found.error) break;
      assert.equal(found.error.type, 'unsupportedFilter');
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(found.total, 1);
    const got = await bob('Email/get', { ids: found.ids, properties: ['subject'] });
    assert.equal(got.list[0].subject, 'Bulk 1234');
    const tenth = await bob('Email/query', {
      filter: { operator: 'AND', conditions: [{ body: 'common' }, { subject: 'bulk' }] },
      sort: [{ property: 'receivedAt', isAscending: false }],
      limit: 50,
      calculateTotal: true,
    });
    assert.equal(tenth.total, Math.ceil(n / 10));
    assert.equal(tenth.ids.length, 50);
    // An email appended now is found at once (the unindexed tail), before the indexer runs.
    const imap2 = await imapflowClient(s.imapPort, BOB);
    try {
      await imap2.append('INBOX', MESSAGE('Late needle', 'the late needle'));
    } finally {
      await imap2.logout();
    }
    const after = await bob('Email/query', { filter: { text: 'needle' } });
    assert.equal(after.ids.length, 2);
  });
});
