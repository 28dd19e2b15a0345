// The IMAP server against real clients: imapflow for whole flows, raw sockets for byte-exact
// responses, and a second connection to check what other sessions see.

import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import type { AccountId } from '../../src/core/ids.ts';
import { RawImap } from '../harness/imap-client.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';

const PASSWORD = 'secret-password';

describe('IMAP server', () => {
  let s: TestServer;
  const clients: ImapFlow[] = [];
  before(async () => {
    s = await startTestServer({ smtp: 'max_connections_per_ip = 100' });
  });
  after(async () => {
    for (const c of clients) await c.logout().catch(() => {});
    await s.stop();
  });

  const imap = async (user = 'alice@example.test', port = s.imapPort, secure = false) => {
    const c = new ImapFlow({
      host: '127.0.0.1',
      port,
      secure,
      auth: { user, pass: PASSWORD },
      logger: false,
      tls: { rejectUnauthorized: false },
    });
    await c.connect();
    clients.push(c);
    return c;
  };
  const raw = async () => {
    const { client } = await RawImap.connect(s.imapPort);
    const login = await client.cmd(`LOGIN alice@example.test ${PASSWORD}`);
    assert.match(login.at(-1) ?? '', /^t1 OK /);
    return client;
  };
  const deliver = async (to: string, subject: string, body = 'Hello.\r\n') => {
    const raw = `From: Sender <sender@remote.example>\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@remote.example>\r\nDate: Tue, 24 Nov 2026 02:00:00 +0000\r\n\r\n${body}`;
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: s.port, secure: false, ignoreTLS: true });
    await t.sendMail({ envelope: { from: 'sender@remote.example', to: [to] }, raw });
    t.close();
    return raw;
  };

  test('greeting and capabilities; LOGIN and AUTHENTICATE PLAIN with SASL-IR; bad password', async () => {
    const { client, greeting } = await RawImap.connect(s.imapPort);
    assert.match(
      greeting,
      /^\* OK \[CAPABILITY IMAP4rev1 .*STARTTLS AUTH=PLAIN\] mx\.test\.example arcline IMAP ready$/,
    );
    const bad = await client.cmd(`LOGIN alice@example.test wrong`);
    assert.match(bad.at(-1) ?? '', /^t1 NO \[AUTHENTICATIONFAILED\] /);
    const plain = Buffer.from(`\0alice@example.test\0${PASSWORD}`).toString('base64');
    const ok = await client.cmd(`AUTHENTICATE PLAIN ${plain}`);
    assert.match(ok.at(-1) ?? '', /^t2 OK \[CAPABILITY IMAP4rev1 .*UIDPLUS MOVE .*\] Logged in$/);
    const again = await client.cmd('LOGIN a b');
    assert.match(again.at(-1) ?? '', /^t3 BAD LOGIN not allowed now$/);
    client.close();
    // AUTHENTICATE without an initial response: continuation, then the response line.
    const { client: c2 } = await RawImap.connect(s.imapPort);
    c2.write('a AUTHENTICATE PLAIN\r\n');
    assert.equal(await c2.readLine(), '+ ');
    c2.write(`${plain}\r\n`);
    assert.match((await c2.until('a')).at(-1) ?? '', /^a OK /);
    c2.close();
  });

  test('STARTTLS upgrades the session; implicit TLS works; pipelined plaintext after STARTTLS is dropped', async () => {
    const { client } = await RawImap.connect(s.imapPort);
    client.write('a STARTTLS\r\nb CAPABILITY\r\n');
    assert.equal(await client.readLine(), 'a OK Begin TLS negotiation now');
    client.close();
    const c = await imap('alice@example.test', s.imapsPort, true);
    assert.ok(c.secureConnection);
    const viaStartTls = await imap('alice@example.test', s.imapPort, false);
    assert.ok(viaStartTls.capabilities.has('UIDPLUS'));
    // The same through a raw TLS socket: the server speaks first.
    const sock = tls.connect({ port: s.imapsPort, host: '127.0.0.1', rejectUnauthorized: false });
    const greeting = await new Promise<string>((r) => sock.once('data', (d) => r(d.toString())));
    assert.match(greeting, /^\* OK \[CAPABILITY IMAP4rev1 [^\]]*AUTH=PLAIN\]/);
    assert.doesNotMatch(greeting, /STARTTLS/);
    sock.destroy();
  });

  test('end to end: SMTP delivery -> IDLE sees it -> FETCH returns the same bytes -> MOVE to Trash -> EXPUNGE', async () => {
    const c = await imap('bob@example.test');
    await c.mailboxOpen('INBOX');
    const exists = new Promise<number>((resolve) => c.on('exists', (d) => resolve(d.count)));
    void c.idle();
    await new Promise((r) => setTimeout(r, 50));
    const sent = await deliver('bob@example.test', 'e2e');
    assert.equal(await exists, 1);
    const msg = await c.fetchOne('1', { source: true, uid: true, envelope: true, flags: true });
    assert.ok(msg);
    const source = msg.source?.toString() ?? '';
    assert.ok(source.endsWith(sent), 'FETCH returns the stored bytes');
    assert.match(source, /^Return-Path: <sender@remote\.example>\r\nDelivered-To: bob@example\.test\r\n/);
    assert.equal(msg.envelope?.subject, 'e2e');
    assert.equal(msg.envelope?.from?.[0]?.address, 'sender@remote.example');
    assert.equal(msg.envelope?.messageId, '<e2e@remote.example>');
    const moved = await c.messageMove('1', 'Trash');
    assert.ok(moved && moved.uidMap?.get(1) === 1);
    assert.equal(c.mailbox ? c.mailbox.exists : null, 0);
    const trash = await c.status('Trash', { messages: true, unseen: true });
    assert.equal(trash ? trash.messages : null, 1);
    await c.mailboxOpen('Trash');
    // COPY keeps the message (a hard link in the store): imapflow reads COPYUID's UID map.
    const copied = await c.messageCopy('1', 'Drafts');
    const draftsNext = copied ? copied.uidMap?.get(1) : undefined;
    assert.equal(draftsNext, 1);
    const inDrafts = await c.status('Drafts', { messages: true });
    assert.equal(inDrafts ? inDrafts.messages : null, 1);
    await c.messageFlagsAdd('1', ['\\Deleted']);
    await c.messageDelete('1');
    const after = await c.status('Trash', { messages: true });
    assert.equal(after ? after.messages : null, 0);
    const drafts = await c.status('Drafts', { messages: true });
    assert.equal(drafts ? drafts.messages : null, 1, 'the copy outlives the original');
  });

  test('byte-exact: SELECT responses, FETCH items and sections, UIDPLUS codes, MOVE order', async () => {
    await deliver('alice@example.test', 'raw one', 'Body line\r\n');
    await deliver('alice@example.test', 'raw two');
    const c = await raw();
    const sel = await c.cmd('SELECT INBOX');
    assert.deepEqual(sel.slice(0, 3), [
      '* 2 EXISTS',
      '* 2 RECENT',
      '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)',
    ]);
    assert.ok(
      sel.includes('* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted'),
    );
    assert.ok(sel.some((l) => /^\* OK \[UIDVALIDITY \d+\] UIDs valid$/.test(l)));
    assert.ok(sel.includes('* OK [UIDNEXT 3] Predicted next UID'));
    assert.equal(sel.at(-1), 't2 OK [READ-WRITE] SELECT completed');
    const f = await c.cmd('FETCH 1 (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (Subject)] BODY.PEEK[TEXT]<0.4>)');
    assert.match(
      f[0] ?? '',
      /^\* 1 FETCH \(UID 1 FLAGS \(\\Recent\) RFC822\.SIZE \d+ BODY\[HEADER\.FIELDS \(Subject\)\] \{20\}$/,
    );
    assert.equal(f[1], 'Subject: raw one');
    assert.equal(f[2], '');
    assert.equal(f[3], ' BODY[TEXT]<0> {4}');
    assert.equal(f[4], 'Body)');
    assert.equal(f.at(-1), 't3 OK FETCH completed');
    // BODY[] without PEEK sets \Seen and reports it.
    const seen = await c.cmd('FETCH 2 BODY[TEXT]');
    assert.match(seen[0] ?? '', /^\* 2 FETCH \(BODY\[TEXT\] \{8\}$/);
    assert.equal(seen[2], ' FLAGS (\\Seen \\Recent))');
    const ap = await c.cmd('APPEND Drafts (\\Draft) {11+}\r\nSubject: x\r\n');
    assert.match(ap.at(-1) ?? '', /^t5 OK \[APPENDUID \d+ 1\] APPEND completed$/);
    const cp = await c.cmd('UID COPY 1:2 Drafts');
    assert.match(cp.at(-1) ?? '', /^t6 OK \[COPYUID \d+ 1:2 2:3\] COPY completed$/);
    const mv = await c.cmd('MOVE 1 Junk');
    assert.match(mv[0] ?? '', /^\* OK \[COPYUID \d+ 1 1\] Moved$/);
    assert.equal(mv[1], '* 1 EXPUNGE');
    assert.equal(mv.at(-1), 't7 OK MOVE completed');
    // A new keyword is announced in FLAGS and PERMANENTFLAGS before the FETCH that shows it.
    const st = await c.cmd('STORE 1 +FLAGS (\\Deleted $Later)');
    assert.deepEqual(st.slice(0, 3), [
      '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Later)',
      '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Later \\*)] Flags permitted',
      '* 1 FETCH (FLAGS (\\Seen \\Deleted $Later \\Recent))',
    ]);
    const ex = await c.cmd('EXPUNGE');
    assert.deepEqual(ex, ['* 1 EXPUNGE', 't9 OK EXPUNGE completed']);
    const missing = await c.cmd('COPY 1:* Nowhere');
    assert.match(missing.at(-1) ?? '', /^t10 (NO|BAD) /);
    const tc = await c.cmd('APPEND Nowhere {1+}\r\nx');
    assert.match(tc.at(-1) ?? '', /^t11 NO \[TRYCREATE\] /);
    c.close();
  });

  test('byte-exact BODYSTRUCTURE of multipart/alternative + attachment + message/rfc822, and part sections', async () => {
    const msg = [
      'From: A <a@example.test>',
      'To: B <b@example.test>',
      'Subject: structure',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="outer"',
      '',
      'preamble',
      '--outer',
      'Content-Type: multipart/alternative; boundary=inner',
      '',
      '--inner',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'Hello plain',
      '--inner',
      'Content-Type: text/html; charset=utf-8',
      '',
      '<p>Hello html</p>',
      '--inner--',
      '--outer',
      'Content-Type: application/pdf; name="doc.pdf"',
      'Content-Disposition: attachment; filename="doc.pdf"',
      'Content-Transfer-Encoding: base64',
      '',
      'JVBERi0xLjQK',
      '--outer',
      'Content-Type: message/rfc822',
      '',
      'From: C <c@example.test>',
      'Subject: inner message',
      '',
      'Inner body line 1',
      'Inner body line 2',
      '--outer--',
      'epilogue',
      '',
    ].join('\r\n');
    const c = await raw();
    await c.cmd('CREATE Structure');
    assert.match(
      (await c.cmd(`APPEND Structure {${Buffer.byteLength(msg)}+}\r\n${msg}`)).at(-1) ?? '',
      /OK \[APPENDUID/,
    );
    await c.cmd('EXAMINE Structure');
    const inner =
      '(NIL "inner message" (("C" NIL "c" "example.test")) (("C" NIL "c" "example.test")) (("C" NIL "c" "example.test")) NIL NIL NIL NIL NIL)';
    assert.deepEqual(await c.cmd('FETCH 1 BODYSTRUCTURE'), [
      '* 1 FETCH (BODYSTRUCTURE ((("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 11 0 NIL NIL NIL NIL)' +
        '("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "7BIT" 17 0 NIL NIL NIL NIL) "ALTERNATIVE" ("BOUNDARY" "inner") NIL NIL NIL)' +
        '("APPLICATION" "PDF" ("NAME" "doc.pdf") NIL NIL "BASE64" 12 NIL ("ATTACHMENT" ("FILENAME" "doc.pdf")) NIL NIL)' +
        `("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 88 ${inner} ("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 36 1 NIL NIL NIL NIL) 4 NIL NIL NIL NIL)` +
        ' "MIXED" ("BOUNDARY" "outer") NIL NIL NIL))',
      't5 OK FETCH completed',
    ]);
    // Parsed once, then served from the index cache (files never change in a Maildir). The
    // server writes the cache after its reply (not waited for); this is another store object on
    // the same index, so it waits for the commit (bounded).
    const cachedBox = await s.admin.store.accounts.open('alice@example.test' as AccountId, 'Structure');
    await cachedBox.sync();
    const committed = async (field: 'structure' | 'envelope') => {
      for (let i = 0; i < 500; i++) {
        const v = (await cachedBox.cached([1], field)).get(1);
        if (v !== undefined) return v;
        await new Promise((r) => setTimeout(r, 10));
      }
      return '';
    };
    assert.match(await committed('structure'), /"subtype":"mixed"/);
    await c.cmd('FETCH 1 ENVELOPE');
    assert.match(await committed('envelope'), /^\(NIL "structure" /);
    const body = await c.cmd('FETCH 1 BODY');
    assert.match(
      body[0] ?? '',
      /^\* 1 FETCH \(BODY \(\(\("TEXT" "PLAIN" \("CHARSET" "utf-8"\) NIL NIL "QUOTED-PRINTABLE" 11 0\)/,
    );
    const sections: [string, string[]][] = [
      ['BODY.PEEK[1.2]', ['* 1 FETCH (BODY[1.2] {17}', '<p>Hello html</p>)']],
      ['BODY.PEEK[2]', ['* 1 FETCH (BODY[2] {12}', 'JVBERi0xLjQK)']],
      [
        'BODY.PEEK[3.HEADER]',
        ['* 1 FETCH (BODY[3.HEADER] {52}', 'From: C <c@example.test>', 'Subject: inner message', '', ')'],
      ],
      ['BODY.PEEK[3.TEXT]', ['* 1 FETCH (BODY[3.TEXT] {36}', 'Inner body line 1', 'Inner body line 2)']],
      ['BODY.PEEK[3.1]', ['* 1 FETCH (BODY[3.1] {36}', 'Inner body line 1', 'Inner body line 2)']],
      [
        'BODY.PEEK[1.1.MIME]',
        [
          '* 1 FETCH (BODY[1.1.MIME] {88}',
          'Content-Type: text/plain; charset=utf-8',
          'Content-Transfer-Encoding: quoted-printable',
          '',
          ')',
        ],
      ],
      [
        'BODY.PEEK[3.HEADER.FIELDS (SUBJECT)]',
        ['* 1 FETCH (BODY[3.HEADER.FIELDS (SUBJECT)] {26}', 'Subject: inner message', '', ')'],
      ],
      ['BODY.PEEK[1.2]<3.5>', ['* 1 FETCH (BODY[1.2]<3> {5}', 'Hello)']],
      ['BODY.PEEK[9]', ['* 1 FETCH (BODY[9] {0}', ')']],
    ];
    for (const [item, expected] of sections)
      assert.deepEqual((await c.cmd(`FETCH 1 (${item})`)).slice(0, -1), expected, item);
    c.close();
    // A real client parses it.
    const flow = await imap();
    await flow.mailboxOpen('Structure');
    const m = await flow.fetchOne('1', { bodyStructure: true });
    assert.ok(m);
    assert.equal(m.bodyStructure?.type, 'multipart/mixed');
    assert.deepEqual(
      m.bodyStructure?.childNodes?.map((n) => n.type),
      ['multipart/alternative', 'application/pdf', 'message/rfc822'],
    );
    const { content } = await flow.download('1', '1.2');
    assert.ok(content);
    assert.equal(Buffer.concat(await content.toArray()).toString(), '<p>Hello html</p>');
  });

  test('nodemailer-built message with an attachment: structure and download through imapflow', async () => {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: s.port, secure: false, ignoreTLS: true });
    await t.sendMail({
      from: 'sender@remote.example',
      to: 'alice@example.test',
      subject: 'with attachment',
      text: 'plain part',
      html: '<b>html part</b>',
      attachments: [{ filename: 'data.bin', content: Buffer.alloc(3000, 7) }],
    });
    t.close();
    const c = await imap();
    await c.mailboxOpen('INBOX');
    const m = await c.fetchOne('*', { bodyStructure: true, envelope: true });
    assert.ok(m);
    assert.equal(m.envelope?.subject, 'with attachment');
    const att = m.bodyStructure?.childNodes?.find((n) => n.disposition === 'attachment');
    assert.ok(att?.part, JSON.stringify(m.bodyStructure));
    const { content } = await c.download('*', att.part);
    assert.ok(content);
    assert.ok(Buffer.concat(await content.toArray()).equals(Buffer.alloc(3000, 7)));
  });

  test('a second session sees flag changes, new mail and expunges only at allowed points', async () => {
    const a = await raw();
    const b = await raw();
    await deliver('alice@example.test', 'shared 1');
    await deliver('alice@example.test', 'shared 2');
    await a.cmd('SELECT INBOX');
    const sel = await b.cmd('SELECT INBOX');
    const n = Number(/^\* (\d+) EXISTS$/.exec(sel[0] ?? '')?.[1]);
    assert.ok(n >= 2);
    await a.cmd(`STORE ${n} +FLAGS.SILENT (\\Flagged)`);
    const noop = await b.cmd('NOOP');
    assert.match(noop[0] ?? '', new RegExp(`^\\* ${n} FETCH \\(UID \\d+ FLAGS \\(\\\\Flagged\\)\\)$`));
    // Expunge in A: B must not get EXPUNGE during FETCH, but at NOOP.
    await a.cmd(`STORE ${n} +FLAGS.SILENT (\\Deleted)`);
    await a.cmd('EXPUNGE');
    const during = await b.cmd(`FETCH ${n} (FLAGS)`);
    assert.ok(!during.some((l) => / EXPUNGE$/.test(l)), during.join('|'));
    assert.match(during[0] ?? '', new RegExp(`^\\* ${n} FETCH `));
    const later = await b.cmd('NOOP');
    assert.ok(later.includes(`* ${n} EXPUNGE`), `${during.join('|')} // ${later.join('|')}`);
    // New mail shows as EXISTS at the next NOOP.
    await deliver('alice@example.test', 'shared 3');
    const more = await b.cmd('NOOP');
    assert.ok(more.includes(`* ${n} EXISTS`), more.join('|'));
    a.close();
    b.close();
  });

  test('SEARCH matches decoded encoded words in headers; a client vanishing mid-APPEND leaves nothing', async () => {
    const c = await raw();
    await c.cmd('CREATE Search');
    const msg =
      'From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.test>\r\nSubject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n\r\nbody words here\r\n';
    await c.cmd(`APPEND Search {${msg.length}+}\r\n${msg}`);
    await c.cmd('SELECT Search');
    assert.deepEqual(await c.cmd('SEARCH CHARSET UTF-8 FROM {7+}\r\nJürgen'), ['* SEARCH 1', 't5 OK SEARCH completed']);
    assert.deepEqual(await c.cmd('UID SEARCH SUBJECT "grü" BODY "WORDS"'), ['* SEARCH 1', 't6 OK SEARCH completed']);
    // Non-ASCII is not an atom (RFC 9051 §9): clients send it as a literal.
    assert.match((await c.cmd('SEARCH NOT FROM jürgen')).at(-1) ?? '', /^t7 BAD /);
    assert.deepEqual(await c.cmd('SEARCH CHARSET UTF-8 NOT FROM {7+}\r\njürgen'), [
      '* SEARCH',
      't8 OK SEARCH completed',
    ]);
    const box = join(s.mailboxDir('alice@example.test', 'Search'));
    const before = await readdir(join(box, 'cur'));
    c.write(`x APPEND Search {200000+}\r\n${'y'.repeat(100_000)}`);
    await new Promise((r) => setTimeout(r, 100));
    c.close();
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(await readdir(join(box, 'cur')), before);
    assert.deepEqual(await readdir(join(box, 'tmp')), []);
    assert.deepEqual(await readdir(join(s.dir, 'state', 'spool')), []);
  });

  test('SEARCH BODY/TEXT finds text in base64 and quoted-printable parts in any charset, not in attachments', async () => {
    const html = Buffer.from('<p>Besprechung am Donnerstag</p>').toString('base64');
    const msg = [
      'Subject: encoded bodies',
      'Content-Type: multipart/mixed; boundary=x',
      '',
      '--x',
      'Content-Type: text/html; charset=utf-8',
      'Content-Transfer-Encoding: base64',
      '',
      html,
      '--x',
      'Content-Type: text/plain; charset=iso-8859-1',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'Gr=FC=DFe aus M=FCnchen, eine sehr lange Zeile die umgebrochen=',
      ' wird',
      '--x',
      'Content-Type: application/octet-stream',
      'Content-Transfer-Encoding: base64',
      '',
      Buffer.from('secret attachment words').toString('base64'),
      '--x--',
      '',
    ].join('\r\n');
    const c = await raw();
    await c.cmd('CREATE Bodies');
    await c.cmd(`APPEND Bodies {${msg.length}+}\r\n${msg}`);
    await c.cmd('SELECT Bodies');
    const hits = async (key: string) => (await c.cmd(`SEARCH CHARSET UTF-8 ${key}`))[0];
    assert.equal(await hits('BODY donnerstag'), '* SEARCH 1');
    assert.equal(await hits('BODY {8+}\r\nMünchen'), '* SEARCH 1');
    assert.equal(await hits('BODY "umgebrochen wird"'), '* SEARCH 1', 'soft line breaks are joined');
    assert.equal(await hits('TEXT "encoded bodies"'), '* SEARCH 1');
    assert.equal(await hits('BODY "attachment words"'), '* SEARCH');
    assert.equal(await hits('BODY "encoded bodies"'), '* SEARCH', 'BODY does not search the header');
    c.close();
  });

  test('APPEND with bare LF line endings is stored with CRLF: sizes and sections agree (small and streamed)', async () => {
    const c = await raw();
    await c.cmd('CREATE Lf');
    await c.cmd('APPEND Lf {27+}\r\nSubject: lf\n\nline 1\nline 2\n');
    const big = `Subject: big\n\n${'z'.repeat(70)}\n`.repeat(1000); // above the 64 KiB streaming threshold
    await c.cmd(`APPEND Lf {${big.length}+}\r\n${big}`);
    await c.cmd('EXAMINE Lf');
    const f = await c.cmd('FETCH 1 (RFC822.SIZE BODY.PEEK[TEXT])');
    assert.equal(f[0], '* 1 FETCH (RFC822.SIZE 31 BODY[TEXT] {16}');
    assert.deepEqual(f.slice(1, 3), ['line 1', 'line 2']);
    const g = await c.cmd('FETCH 2 (RFC822.SIZE)');
    assert.equal(g[0], `* 2 FETCH (RFC822.SIZE ${big.length + big.split('\n').length - 1})`);
    c.close();
  });

  test('mail dropped into new/ by another program shows up with a new UID', async () => {
    const newDir = join(s.mailboxDir('bob@example.test'), 'new');
    await writeFile(join(newDir, '1700000000.M1P1.otherhost'), 'Subject: dropped\r\n\r\nfrom outside\r\n');
    const c = await imap('bob@example.test');
    const mb = await c.mailboxOpen('INBOX');
    assert.equal(mb.exists, 1);
    const m = await c.fetchOne('*', { envelope: true, uid: true });
    assert.equal(m ? m.envelope?.subject : null, 'dropped');
    assert.deepEqual(await readdir(newDir), [], 'SELECT moved it to cur/');
  });

  test('mailboxes: create (UTF-8 names), list, rename, delete, subscribe; path tricks refused', async () => {
    const c = await imap();
    await c.mailboxCreate('Entwürfe');
    await c.mailboxCreate(['Projects', 'Alpha']);
    const names = (await c.list()).map((m) => m.path);
    assert.ok(names.includes('Entwürfe') && names.includes('Projects.Alpha'), names.join(','));
    await c.mailboxRename('Projects', 'Work');
    assert.ok((await c.list()).some((m) => m.path === 'Work.Alpha'));
    await c.mailboxDelete('Work.Alpha');
    const r = await raw();
    for (const bad of ['"../evil"', '"a/b"', '".hidden"', '"x..y"']) {
      const res = await r.cmd(`CREATE ${bad}`);
      assert.match(res.at(-1) ?? '', /^t\d+ NO /, bad);
    }
    const del = await r.cmd('DELETE INBOX');
    assert.match(del.at(-1) ?? '', /^t\d+ NO /);
    const list = await r.cmd('LIST "" "%"');
    assert.ok(list.includes('* LIST (\\HasNoChildren \\Sent) "." Sent'), list.join('|'));
    assert.ok(list.some((l) => l.endsWith(' Entw&APw-rfe')));
    const delim = await r.cmd('LIST "" ""');
    assert.equal(delim[0], '* LIST (\\Noselect) "." ""');
    r.close();
  });

  test('robustness: bad syntax gets BAD with the tag and the session goes on; oversized literal refused first', async () => {
    const c = await raw();
    assert.deepEqual(await c.cmd('FROBNICATE'), ['t2 BAD Unknown command FROBNICATE']);
    assert.match((await c.cmd('FETCH 1 FLAGS')).at(-1) ?? '', /^t3 BAD FETCH not allowed now$/);
    assert.match((await c.cmd('SELECT')).at(-1) ?? '', /^t4 BAD /);
    await c.cmd('SELECT INBOX');
    assert.match((await c.cmd('FETCH 999999 FLAGS')).at(-1) ?? '', /^t6 BAD Invalid message sequence number$/);
    c.write('big APPEND INBOX {999999999}\r\n');
    assert.match(await c.readLine(), /^big NO \[TOOBIG\] Message too large$/);
    assert.deepEqual(await c.cmd('NOOP'), ['t7 OK NOOP completed']);
    c.write(`long ${'x'.repeat(70_000)}\r\n`);
    assert.match(await c.readLine(), /^\* BYE Command line too long$/);
    c.close();
    // The server is fine for everyone else.
    const d = await raw();
    assert.deepEqual(await d.cmd('NOOP'), ['t2 OK NOOP completed']);
    d.close();
  });
});
