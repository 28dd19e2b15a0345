// FETCH and SEARCH answers that Dovecot's imaptest compliance scripts found wrong
// (fetch-body-message-rfc822, -rfc822-x2, -rfc822-mime, fetch-bodystructure, fetch-envelope,
// fetch-binary-mime-qp, esearch, esearch-condstore, search-date, search-addresses), checked byte
// for byte over a raw socket against the messages of those scripts. The expected answers are
// Dovecot 2.3.19's, which passes every script.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type RawImap, selectNewMailbox } from '../harness/imap-client.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';

let s: TestServer;
before(async () => {
  s = await startTestServer();
});
after(() => s?.stop());

let boxes = 0;
/** A new mailbox holding `messages`, selected. */
const mailboxWith = (...messages: string[]) =>
  selectNewMailbox(s.imapPort, 'alice@example.test secret-password', `box${++boxes}`, messages);

/** The untagged answer of a FETCH as one string (lines joined with CRLF). */
async function fetch(c: RawImap, what: string): Promise<string> {
  const lines = await c.cmd(`FETCH ${what}`);
  assert.match(lines.at(-1) ?? '', /OK/);
  return lines.slice(0, -1).join('\r\n');
}

const crlf = (t: string) => t.replace(/\n/g, '\r\n');
const literal = (t: string) => `{${Buffer.byteLength(crlf(t), 'latin1')}}\r\n${crlf(t)}`;

const SUB = 'From: sub@domain.org\nDate: Sun, 12 Aug 2012 12:34:56 +0300\nSubject: submsg\n\n';

test('imaptest fetch-body-message-rfc822: a top-level message/rfc822 is part 1, its message 1.HEADER/1.TEXT/1.1', async () => {
  const c = await mailboxWith(
    `From: user@domain.org\nDate: Sat, 24 Mar 2007 23:00:00 +0200\nMime-Version: 1.0\nContent-Type: message/rfc822\n\n${SUB}Hello world\n`,
  );
  assert.equal(await fetch(c, '1 (BODY.PEEK[1])'), `* 1 FETCH (BODY[1] ${literal(`${SUB}Hello world\n`)})`);
  assert.equal(await fetch(c, '1 (BODY.PEEK[1.1])'), `* 1 FETCH (BODY[1.1] ${literal('Hello world\n')})`);
  assert.equal(await fetch(c, '1 (BODY.PEEK[1.HEADER])'), `* 1 FETCH (BODY[1.HEADER] ${literal(SUB)})`);
  assert.equal(await fetch(c, '1 (BODY.PEEK[1.TEXT])'), `* 1 FETCH (BODY[1.TEXT] ${literal('Hello world\n')})`);
  assert.equal(
    await fetch(c, '1 (BODY.PEEK[1.HEADER.FIELDS (from subject X-foo)])'),
    `* 1 FETCH (BODY[1.HEADER.FIELDS (from subject X-foo)] ${literal('From: sub@domain.org\nSubject: submsg\n\n')})`,
  );
  c.close();
});

test('imaptest fetch-body-message-rfc822-x2: message/rfc822 inside message/rfc822', async () => {
  const mid =
    'From: user2@domain.org\nDate: Fri, 23 Mar 2007 11:22:33 +0200\nMime-Version: 1.0\nContent-Type: message/rfc822\n\n';
  const c = await mailboxWith(
    `From: user@domain.org\nDate: Sat, 24 Mar 2007 23:00:00 +0200\nMime-Version: 1.0\nContent-Type: message/rfc822\n\n${mid}${SUB}Hello world\n`,
  );
  assert.equal(await fetch(c, '1 (BODY.PEEK[1])'), `* 1 FETCH (BODY[1] ${literal(`${mid}${SUB}Hello world\n`)})`);
  assert.equal(await fetch(c, '1 (BODY.PEEK[1.1])'), `* 1 FETCH (BODY[1.1] ${literal(`${SUB}Hello world\n`)})`);
  assert.equal(await fetch(c, '1 (BODY.PEEK[1.HEADER])'), `* 1 FETCH (BODY[1.HEADER] ${literal(mid)})`);
  assert.equal(await fetch(c, '1 (BODY.PEEK[1.1.HEADER])'), `* 1 FETCH (BODY[1.1.HEADER] ${literal(SUB)})`);
  assert.equal(await fetch(c, '1 (BODY.PEEK[1.1.1])'), `* 1 FETCH (BODY[1.1.1] ${literal('Hello world\n')})`);
  assert.equal(await fetch(c, '1 (BODY.PEEK[1.1.TEXT])'), `* 1 FETCH (BODY[1.1.TEXT] ${literal('Hello world\n')})`);
  c.close();
});

test('imaptest fetch-body-message-rfc822-mime: a digest inside message/rfc822; its parts default to message/rfc822, their messages do not', async () => {
  const digest =
    'From: sub@domain.org\nDate: Sun, 12 Aug 2012 12:34:56 +0300\nSubject: submsg\nContent-Type: multipart/digest; boundary="foo"\n\n' +
    'prologue\n\n--foo \n\nFrom: m1@example.com\nSubject: m1\n\nm1 body\n\n--foo \nX-Mime: m2 header\n\n' +
    'From: m2@example.com\nSubject: m2\n\nm2 body\n\n--foo--\n\nepilogue\n';
  const c = await mailboxWith(
    `From: user@domain.org\nDate: Sat, 24 Mar 2007 23:00:00 +0200\nMime-Version: 1.0\nContent-Type: message/rfc822\n\n${digest}`,
  );
  const m1 = 'From: m1@example.com\nSubject: m1\n\nm1 body\n';
  const m2 = 'From: m2@example.com\nSubject: m2\n\nm2 body\n';
  assert.equal(await fetch(c, '1 (BODY.PEEK[1.1])'), `* 1 FETCH (BODY[1.1] ${literal(m1)})`);
  assert.equal(await fetch(c, '1 (BODY.PEEK[1.1.MIME])'), `* 1 FETCH (BODY[1.1.MIME] ${literal('\n')})`);
  assert.equal(await fetch(c, '1 (BODY.PEEK[1.1.TEXT])'), `* 1 FETCH (BODY[1.1.TEXT] ${literal('m1 body\n')})`);
  assert.equal(await fetch(c, '1 (BODY.PEEK[1.2])'), `* 1 FETCH (BODY[1.2] ${literal(m2)})`);
  assert.equal(
    await fetch(c, '1 (BODY.PEEK[1.2.MIME])'),
    `* 1 FETCH (BODY[1.2.MIME] ${literal('X-Mime: m2 header\n\n')})`,
  );
  assert.equal(
    await fetch(c, '1 (BODY.PEEK[1.2.HEADER])'),
    `* 1 FETCH (BODY[1.2.HEADER] ${literal('From: m2@example.com\nSubject: m2\n\n')})`,
  );
  // The encapsulated messages are text/plain (1 line each), not messages nested without end.
  const structure = await fetch(c, '1 (BODY)');
  assert.match(structure, /\("TEXT" "PLAIN" \("CHARSET" "us-ascii"\) NIL NIL "7BIT" 9 1\) 4\)/);
  c.close();
});

test("imaptest fetch-bodystructure: body lines count line breaks (the CRLF before a boundary is the boundary's)", async () => {
  const c = await mailboxWith(
    'From: user@domain.org\nMime-Version: 1.0\nContent-Type: multipart/mixed; boundary="foo\n bar"\n\n--foo bar\nContent-Type: text/x-myown; charset=us-ascii\n\nhello\n\n--foo bar--\n',
    'Subject: no line break at the end\n\nabc',
  );
  assert.equal(
    await fetch(c, '1:2 BODY'),
    '* 1 FETCH (BODY (("TEXT" "X-MYOWN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 7 1) "MIXED"))\r\n' +
      '* 2 FETCH (BODY ("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 3 0))',
  );
  c.close();
});

test("imaptest fetch-envelope: a comment alone is no group member; a source route is the address's adl", async () => {
  const c = await mailboxWith(
    'Date: Thu, 15 Feb 2007 01:02:03 +0200\nFrom: user@domain (Real Name)\nTo: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\nCc: group:;, group2: (foo) ;\n\nbody\n',
    'Date: Thu, 15 Feb 2007 01:02:03 +0200\nFrom: <@route:user@domain>\n\nbody\n',
  );
  const from = '(("Real Name" NIL "user" "domain"))';
  const route = '((NIL "@route" "user" "domain"))';
  assert.equal(
    await fetch(c, '1:2 ENVELOPE'),
    `* 1 FETCH (ENVELOPE ("Thu, 15 Feb 2007 01:02:03 +0200" NIL ${from} ${from} ${from} ` +
      '((NIL NIL "group" NIL)(NIL NIL "g1" "d1.org")(NIL NIL "g2" "d2.org")(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL "g3" "d3.org")(NIL NIL NIL NIL)) ' +
      '((NIL NIL "group" NIL)(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL NIL NIL)) NIL NIL NIL))\r\n' +
      `* 2 FETCH (ENVELOPE ("Thu, 15 Feb 2007 01:02:03 +0200" NIL ${route} ${route} ${route} NIL NIL NIL NIL NIL))`,
  );
  c.close();
});

test('imaptest fetch-binary-mime-qp: quoted-printable loses trailing white space, "=" ends soft line breaks', async () => {
  const c = await mailboxWith(
    'From: user@domain.org\nMime-Version: 1.0\nContent-Type: multipart/mixed; boundary="foo bar"\n\nRoot MIME prologue\n\n--foo bar\n' +
      'Content-Type: text/x-myown; charset=us-ascii\nContent-Transfer-Encoding: quoted-printable\n\n' +
      'hello  \nbar=\n\nfoo\t=\nbar\nfoo\t \t= \n=62\nfoo = \t\nbar\nfoo =\n=62\nfoo  \nbar=\n\nfoo_bar\n\n--foo bar--\nRoot MIME epilogue\n',
  );
  const decoded = 'hello\nbar\nfoo\tbar\nfoo\t \tb\nfoo bar\nfoo b\nfoo\nbar\nfoo_bar\n';
  assert.equal(
    await fetch(c, '1 (BINARY.SIZE[1] BINARY.PEEK[1])'),
    `* 1 FETCH (BINARY.SIZE[1] 65 BINARY[1] ${literal(decoded)})`,
  );
  assert.equal(await fetch(c, '1 (BINARY.PEEK[1]<10.10>)'), `* 1 FETCH (BINARY[1]<10> ${literal('\nfoo\tbar\r')})`);
  c.close();
});

const msg = (header: string) => `${header}\nSubject: x\n\nbody\n`;

test('imaptest esearch: a sequence number beyond EXISTS matches nothing (OK, not BAD)', async () => {
  const c = await mailboxWith(msg('From: a@example.test'), msg('From: b@example.test'));
  const all = await c.cmd('SEARCH RETURN () 1000');
  assert.match(all[0] ?? '', /^\* ESEARCH \(TAG "t\d+"\)$/);
  assert.match(all[1] ?? '', /^t\d+ OK /);
  const min = await c.cmd('SEARCH RETURN (MIN) 1000');
  assert.match(min.at(-1) ?? '', /^t\d+ OK /);
  assert.deepEqual((await c.cmd('SEARCH 2:1000'))[0], '* SEARCH 2');
  // FETCH keeps its BAD (RFC 9051 §9 seq-number).
  assert.match((await c.cmd('FETCH 1000 FLAGS')).at(-1) ?? '', /^t\d+ BAD /);
  c.close();
});

test('imaptest esearch-condstore: HIGHESTMODSEQ when CONDSTORE is enabled while selected; MODSEQ entries; MIN/MAX report their own MODSEQ', async () => {
  const c = await mailboxWith(...['a', 'b', 'c', 'd'].map((x) => msg(`From: ${x}@x.test`)));
  const first = await c.cmd('FETCH 1 MODSEQ');
  assert.match(first[0] ?? '', /^\* 1 FETCH \(MODSEQ \(\d+\)\)$/);
  assert.match(first[1] ?? '', /^\* OK \[HIGHESTMODSEQ \d+\] /);
  assert.match(first[2] ?? '', /^t\d+ OK /);
  // Only the first CONDSTORE-enabling command announces it.
  assert.equal((await c.cmd('FETCH 1 MODSEQ')).length, 2);
  const modseq: Record<number, number> = {};
  for (const n of [1, 3, 2, 4]) {
    const line = (await c.cmd(`STORE ${n} +FLAGS (\\Seen)`))[0] ?? '';
    modseq[n] = Number(/MODSEQ \((\d+)\)/.exec(line)?.[1]);
  }
  const esearch = async (args: string) =>
    ((await c.cmd(`SEARCH ${args}`))[0] ?? '').replace(/^\* ESEARCH \(TAG "t\d+"\) /, '');
  assert.equal(await esearch('RETURN (MIN) 1:3 MODSEQ "/flags/\\\\seen" all 1'), `MIN 1 MODSEQ ${modseq[1]}`);
  assert.equal(await esearch('RETURN (MAX) 1:3 MODSEQ "/flags/\\\\seen" all 1'), `MAX 3 MODSEQ ${modseq[3]}`);
  assert.equal(await esearch('RETURN () 1:3 MODSEQ "/flags/\\\\seen" all 1'), `ALL 1:3 MODSEQ ${modseq[2]}`);
  assert.equal(
    await esearch('RETURN (MIN MAX) 2:3 MODSEQ "/flags/\\\\seen" priv 1'),
    `MIN 2 MAX 3 MODSEQ ${modseq[2]}`,
  );
  assert.match((await c.cmd('SEARCH MODSEQ "/flags/\\\\seen" other 1')).at(-1) ?? '', /^t\d+ BAD /);
  c.close();
});

test('imaptest search-date: SENT* keys compare the date as written, whatever its zone', async () => {
  const c = await mailboxWith(
    msg('Date: Sat, 24 Mar 2007 23:00:00 +0200'),
    msg('Date: Sun, 25 Mar 2007 00:00:00 +0200'),
    msg('Date: Sun, 25 Mar 2007 23:00:00 +0300'),
    msg('Date: Mon, 26 Mar 2007 00:00:00 +0300'),
    msg('Date: 28 Oct 07 01:00:00 +0300'),
  );
  assert.equal((await c.cmd('SEARCH SENTON 24-Mar-2007'))[0], '* SEARCH 1');
  assert.equal((await c.cmd('SEARCH SENTON 25-Mar-2007'))[0], '* SEARCH 2 3');
  assert.equal((await c.cmd('SEARCH SENTBEFORE 26-Mar-2007'))[0], '* SEARCH 1 2 3');
  assert.equal((await c.cmd('SEARCH SENTSINCE 26-Mar-2007'))[0], '* SEARCH 4 5');
  assert.equal((await c.cmd('SEARCH SENTON 28-Oct-2007'))[0], '* SEARCH 5');
  c.close();
});

test('imaptest search-addresses: FROM matches the parsed address, comments inside it left out', async () => {
  const c = await mailboxWith(
    msg('From: <user-from (comment)@ (comment) domain.org>'),
    msg('From: "Real From" <user-from@domain.org>'),
    msg('From: other@domain.org'),
  );
  assert.equal((await c.cmd('SEARCH FROM user-from@domain.org'))[0], '* SEARCH 1 2');
  assert.equal((await c.cmd('SEARCH FROM "eal Fro"'))[0], '* SEARCH 2');
  c.close();
});
