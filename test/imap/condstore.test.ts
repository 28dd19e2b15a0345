// CONDSTORE and QRESYNC (RFC 7162) and ESEARCH (RFC 4731), byte-exact over raw sockets, with a
// second session making the changes the first one must learn about.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import nodemailer from 'nodemailer';
import { RawImap } from '../harness/imap-client.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';

const PASSWORD = 'secret-password';

describe('CONDSTORE / QRESYNC', () => {
  let s: TestServer;

  before(async () => {
    s = await startTestServer();
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: s.port, secure: false, ignoreTLS: true });
    for (let i = 1; i <= 5; i++) {
      await t.sendMail({
        envelope: { from: 'a@remote.example', to: ['alice@example.test'] },
        raw: `From: a@remote.example\r\nSubject: m${i}\r\n\r\nbody ${i}\r\n`,
      });
    }
    t.close();
  });
  after(() => s?.stop());

  const login = async () => {
    const { client } = await RawImap.connect(s.imapPort);
    assert.match((await client.cmd(`LOGIN alice@example.test ${PASSWORD}`)).at(-1) ?? '', /OK/);
    return client;
  };
  const modseqOf = (lines: string[], re = /HIGHESTMODSEQ (\d+)/) =>
    Number(lines.map((l) => re.exec(l)?.[1]).find(Boolean));

  test('capabilities, ENABLE, HIGHESTMODSEQ on SELECT and STATUS', async () => {
    const c = await login();
    const caps = (await c.cmd('CAPABILITY'))[0] ?? '';
    for (const cap of ['CONDSTORE', 'QRESYNC', 'ESEARCH']) assert.ok(caps.includes(` ${cap}`), cap);
    assert.deepEqual((await c.cmd('ENABLE QRESYNC')).slice(0, 1), ['* ENABLED QRESYNC']);
    assert.deepEqual((await c.cmd('ENABLE CONDSTORE QRESYNC X-UNKNOWN')).slice(0, 1), ['* ENABLED']);
    const sel = await c.cmd('SELECT INBOX');
    assert.ok(modseqOf(sel) > 0, sel.join('|'));
    const st = await c.cmd('STATUS INBOX (MESSAGES HIGHESTMODSEQ)');
    assert.match(st[0] ?? '', /^\* STATUS INBOX \(MESSAGES 5 HIGHESTMODSEQ \d+\)$/);
    c.close();
  });

  test('STORE reports MODSEQ; FETCH CHANGEDSINCE returns only what changed; UNCHANGEDSINCE refuses stale changes', async () => {
    const c = await login();
    const sel = await c.cmd('SELECT INBOX (CONDSTORE)');
    const base = modseqOf(sel);
    const store = await c.cmd('STORE 2 +FLAGS (\\Flagged)');
    const m = /^\* 2 FETCH \(FLAGS \(\\Flagged\) MODSEQ \((\d+)\)\)$/.exec(store[0] ?? '');
    assert.ok(m, store.join('|'));
    const after2 = Number(m[1]);
    assert.ok(after2 > base);
    const changed = await c.cmd(`FETCH 1:* (FLAGS) (CHANGEDSINCE ${base})`);
    assert.deepEqual(changed.slice(0, -1), [`* 2 FETCH (FLAGS (\\Flagged) MODSEQ (${after2}))`]);
    const explicit = await c.cmd('UID FETCH 2 (MODSEQ)');
    assert.match(explicit[0] ?? '', new RegExp(`^\\* 2 FETCH \\(UID \\d+ MODSEQ \\(${after2}\\)\\)$`));
    // Message 2 changed after `base`: a conditional store based on `base` is refused for it only.
    const cond = await c.cmd(`STORE 1:2 (UNCHANGEDSINCE ${base}) +FLAGS (\\Answered)`);
    assert.match(cond.at(-1) ?? '', /^t\d+ OK \[MODIFIED 2\] STORE completed$/);
    assert.match(cond[0] ?? '', /^\* 1 FETCH \(FLAGS \(\\Answered\) MODSEQ \(\d+\)\)$/);
    // .SILENT with CONDSTORE still reports the new MODSEQ (RFC 7162 §3.1.3).
    const silent = await c.cmd('STORE 3 +FLAGS.SILENT (\\Seen)');
    assert.match(silent[0] ?? '', /^\* 3 FETCH \(MODSEQ \(\d+\)\)$/);
    c.close();
  });

  test('another session sees flag changes with MODSEQ, and expunges as VANISHED once QRESYNC is on', async () => {
    const a = await login();
    await a.cmd('ENABLE QRESYNC');
    await a.cmd('SELECT INBOX');
    const b = await login();
    await b.cmd('SELECT INBOX');
    await b.cmd('STORE 4 +FLAGS (\\Seen)');
    const uid5 = Number(/UID (\d+)/.exec((await b.cmd('FETCH 5 (UID)'))[0] ?? '')?.[1]);
    await b.cmd('STORE 5 +FLAGS (\\Deleted)');
    await b.cmd('EXPUNGE');
    const noop = await a.cmd('NOOP');
    assert.ok(
      noop.some((l) => /^\* 4 FETCH \(UID \d+ FLAGS \(\\Seen\) MODSEQ \(\d+\)\)$/.test(l)),
      noop.join('|'),
    );
    assert.ok(noop.includes(`* VANISHED ${uid5}`), noop.join('|'));
    assert.ok(!noop.some((l) => / EXPUNGE$/.test(l)), 'no EXPUNGE with QRESYNC');
    a.close();
    b.close();
  });

  test('SELECT (QRESYNC ...) resynchronises: VANISHED (EARLIER) then the changed messages; CLOSED on reselect', async () => {
    const a = await login();
    await a.cmd('ENABLE QRESYNC');
    const first = await a.cmd('SELECT INBOX');
    const validity = Number(/UIDVALIDITY (\d+)/.exec(first.join('\n'))?.[1]);
    const known = modseqOf(first);
    const uids = (await a.cmd('UID SEARCH ALL'))[0]?.replace('* SEARCH ', '').split(' ').map(Number) ?? [];
    await a.cmd('UNSELECT');
    // Changes while the client is away.
    const b = await login();
    await b.cmd('SELECT INBOX');
    await b.cmd('STORE 1 +FLAGS ($Important)');
    await b.cmd('STORE 2 +FLAGS (\\Deleted)');
    await b.cmd('EXPUNGE');
    b.close();
    const re = await a.cmd(`SELECT INBOX (QRESYNC (${validity} ${known} ${uids.join(',')}))`);
    const i = re.findIndex((l) => l.startsWith('* OK [HIGHESTMODSEQ'));
    assert.equal(re[i + 1], `* VANISHED (EARLIER) ${uids[1]}`, re.join('|'));
    assert.match(
      re[i + 2] ?? '',
      new RegExp(`^\\* 1 FETCH \\(UID ${uids[0]} FLAGS \\(.*\\$Important.*\\) MODSEQ \\(\\d+\\)\\)$`),
    );
    assert.match(re.at(-1) ?? '', /OK \[READ-WRITE\] SELECT completed/);
    // A wrong UIDVALIDITY: a plain SELECT, nothing replayed. Reselecting reports [CLOSED] first.
    const wrong = await a.cmd(`SELECT INBOX (QRESYNC (${validity + 1} 1))`);
    assert.equal(wrong[0], '* OK [CLOSED] Previous mailbox closed');
    assert.ok(!wrong.some((l) => l.includes('VANISHED')));
    // UID FETCH ... (CHANGEDSINCE n VANISHED)
    const vf = await a.cmd(`UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${known} VANISHED)`);
    assert.equal(vf[0], `* VANISHED (EARLIER) ${uids[1]}`);
    assert.ok(vf.some((l) => l.includes(`UID ${uids[0]} `) && l.includes('MODSEQ')));
    a.close();
  });

  test('QRESYNC parameters without ENABLE QRESYNC are a BAD; VANISHED without QRESYNC too', async () => {
    const c = await login();
    assert.match((await c.cmd('SELECT INBOX (QRESYNC (1 1))')).at(-1) ?? '', /^t\d+ BAD /);
    await c.cmd('SELECT INBOX');
    assert.match((await c.cmd('UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)')).at(-1) ?? '', /^t\d+ BAD /);
    c.close();
  });

  test('SEARCH MODSEQ reports the highest MODSEQ found; ESEARCH RETURN (MIN MAX COUNT ALL)', async () => {
    const c = await login();
    await c.cmd('SELECT INBOX');
    // The highest MODSEQ of the messages (HIGHESTMODSEQ may be higher: expunges count too).
    const mods = (await c.cmd('FETCH 1:* (MODSEQ)')).map((l) => Number(/MODSEQ \((\d+)\)/.exec(l)?.[1] ?? 0));
    const high = Math.max(...mods);
    const r = await c.cmd('SEARCH MODSEQ 1');
    assert.match(r[0] ?? '', new RegExp(`^\\* SEARCH [\\d ]+ \\(MODSEQ ${high}\\)$`));
    assert.equal((await c.cmd(`SEARCH MODSEQ ${high + 1}`))[0], '* SEARCH', 'no MODSEQ for an empty result');
    const e = await c.cmd('SEARCH RETURN (MIN MAX COUNT ALL) ALL');
    assert.match(e[0] ?? '', /^\* ESEARCH \(TAG "t\d+"\) MIN 1 MAX \d+ ALL 1:\d+ COUNT \d+$/);
    const u = await c.cmd('UID SEARCH RETURN () UNSEEN');
    assert.match(u[0] ?? '', /^\* ESEARCH \(TAG "t\d+"\) UID ALL [\d:,]+$/);
    assert.match(
      (await c.cmd('SEARCH RETURN (COUNT) SUBJECT nothing-matches'))[0] ?? '',
      /^\* ESEARCH \(TAG "t\d+"\) COUNT 0$/,
    );
    assert.match((await c.cmd('SEARCH RETURN (BOGUS) ALL')).at(-1) ?? '', /^t\d+ BAD /);
    c.close();
  });
});
