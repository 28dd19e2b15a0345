// Session views with several clients on one mailbox (src/imap/selected.ts): what each session is
// told stays consistent with what it was told before, byte-exact over raw sockets. Each case
// replays a state error imaptest's stress run found (seq too high, MODSEQ dropped, keyword not
// in FLAGS) or one of its `select`/`store` compliance scripts.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RawImap } from '../harness/imap-client.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';

const PASSWORD = 'secret-password';

describe('session views of one mailbox', () => {
  let s: TestServer;
  const open: RawImap[] = [];

  before(async () => {
    s = await startTestServer();
  });
  after(async () => {
    for (const c of open) c.close();
    await s?.stop();
  });

  const login = async () => {
    const { client } = await RawImap.connect(s.imapPort);
    client.timeoutMs = 20_000;
    open.push(client);
    assert.match((await client.cmd(`LOGIN alice@example.test ${PASSWORD}`)).at(-1) ?? '', /OK/);
    return client;
  };
  /** APPEND with a synchronizing-free literal (LITERAL+); returns the tagged line. */
  const append = async (c: RawImap, box: string, text: string, flags = '') => {
    const body = `Subject: ${text}\r\n\r\n${text}\r\n`;
    const out = await c.cmd(`APPEND ${box} (${flags}) {${Buffer.byteLength(body)}+}\r\n${body}`);
    assert.match(out.at(-1) ?? '', /OK \[APPENDUID/, out.join('|'));
    return out;
  };
  /** A fresh mailbox with `n` messages, and two sessions that have it selected. */
  const twoSessions = async (box: string, n: number, flags = '') => {
    const a = await login();
    assert.match((await a.cmd(`CREATE ${box}`)).at(-1) ?? '', /OK/);
    for (let i = 1; i <= n; i++) await append(a, box, `m${i}`, flags);
    await a.cmd(`SELECT ${box}`);
    const b = await login();
    await b.cmd(`SELECT ${box}`);
    return { a, b };
  };

  test('a new message is announced with EXISTS before any response that numbers it', async () => {
    const { a, b } = await twoSessions('Numbers', 2);
    await append(a, 'Numbers', 'm3');
    await a.cmd('STORE 3 +FLAGS.SILENT (\\Flagged)');
    assert.deepEqual(await b.cmd('NOOP'), [
      '* 3 EXISTS',
      '* 0 RECENT',
      '* 3 FETCH (UID 3 FLAGS (\\Flagged))',
      't3 OK NOOP completed',
    ]);
    // Appended, flagged and expunged before B hears of it: B counts it before it loses it.
    await append(a, 'Numbers', 'm4');
    await a.cmd('STORE 4 +FLAGS.SILENT (\\Deleted)');
    await a.cmd('EXPUNGE');
    assert.deepEqual(await b.cmd('NOOP'), [
      '* 4 EXISTS',
      '* 0 RECENT',
      '* 4 FETCH (UID 4 FLAGS (\\Deleted))',
      '* 4 EXPUNGE',
      't4 OK NOOP completed',
    ]);
  });

  test("an older flag change never overwrites a newer one (imaptest store: sessions keep each other's changes)", async () => {
    const { a, b } = await twoSessions('Order', 1, '\\Seen');
    await b.cmd('ENABLE CONDSTORE');
    await a.cmd('STORE 1 +FLAGS.SILENT (\\Answered)');
    const st = await b.cmd('STORE 1 -FLAGS (\\Seen)');
    const m = /^\* 1 FETCH \(FLAGS \(\\Answered\) MODSEQ \((\d+)\)\)$/.exec(st[0] ?? '');
    assert.ok(m, st.join('|'));
    // A's change is older than the state B just reported: nothing to tell, nothing undone.
    assert.deepEqual(await b.cmd('NOOP'), ['t5 OK NOOP completed']);
    assert.deepEqual(await b.cmd('FETCH 1 (FLAGS MODSEQ)'), [
      `* 1 FETCH (FLAGS (\\Answered) MODSEQ (${m[1]}))`,
      't6 OK FETCH completed',
    ]);
    assert.deepEqual(await a.cmd('NOOP'), ['* 1 FETCH (UID 1 FLAGS (\\Answered \\Recent))', 't6 OK NOOP completed']);
  });

  test('a keyword from another session is announced in FLAGS and PERMANENTFLAGS before a FETCH shows it', async () => {
    const { a, b } = await twoSessions('Keywords', 1);
    const examine = await login();
    await examine.cmd('EXAMINE Keywords');
    await a.cmd('STORE 1 +FLAGS.SILENT ($Hello)');
    const system = '\\Answered \\Flagged \\Deleted \\Seen \\Draft';
    assert.deepEqual(await b.cmd('NOOP'), [
      `* FLAGS (${system} $Hello)`,
      `* OK [PERMANENTFLAGS (${system} $Hello \\*)] Flags permitted`,
      '* 1 FETCH (UID 1 FLAGS ($Hello))',
      't3 OK NOOP completed',
    ]);
    // A new message with a new keyword: announced before EXISTS; read-only sessions get () as
    // PERMANENTFLAGS (RFC 9051 §6.3.3).
    await append(a, 'Keywords', 'm2', '$World');
    assert.deepEqual(await examine.cmd('NOOP'), [
      `* FLAGS (${system} $Hello)`,
      '* OK [PERMANENTFLAGS ()] Flags permitted',
      '* 1 FETCH (UID 1 FLAGS ($Hello))',
      `* FLAGS (${system} $Hello $World)`,
      '* OK [PERMANENTFLAGS ()] Flags permitted',
      '* 2 EXISTS',
      '* 0 RECENT',
      't3 OK NOOP completed',
    ]);
  });

  test('FLAGS at SELECT lists every keyword the mailbox has defined, also those no message has now', async () => {
    const { a } = await twoSessions('Defined', 1);
    await a.cmd('STORE 1 +FLAGS.SILENT ($Gone)');
    await a.cmd('STORE 1 -FLAGS.SILENT ($Gone)');
    const c = await login();
    const sel = await c.cmd('SELECT Defined');
    // A client told of $Gone once is never told a FLAGS list without it (imaptest's checkpoint
    // mode keeps keywords per mailbox across its sessions and aborts when one disappears).
    assert.ok(sel.includes('* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Gone)'), sel.join('|'));
  });

  test('\\Recent: appended messages are recent for exactly one session; EXAMINE and STATUS keep them (imaptest select)', async () => {
    const c = await login();
    await c.cmd('CREATE Recent');
    await append(c, 'Recent', 'm1');
    await append(c, 'Recent', 'm2');
    const examine = await c.cmd('EXAMINE Recent');
    assert.ok(examine.includes('* 2 RECENT'), examine.join('|'));
    assert.deepEqual((await c.cmd('FETCH 1:* (FLAGS)')).slice(0, 2), [
      '* 1 FETCH (FLAGS (\\Recent))',
      '* 2 FETCH (FLAGS (\\Recent))',
    ]);
    await c.cmd('CLOSE');
    assert.equal((await c.cmd('STATUS Recent (MESSAGES RECENT)'))[0], '* STATUS Recent (MESSAGES 2 RECENT 2)');
    const a = await login();
    assert.ok((await a.cmd('SELECT Recent')).includes('* 2 RECENT'));
    const b = await login();
    assert.ok((await b.cmd('SELECT Recent')).includes('* 0 RECENT'));
    assert.equal((await c.cmd('STATUS Recent (RECENT)'))[0], '* STATUS Recent (RECENT 0)');
    // Appended from a session that has not selected it: recent for one of those that have.
    await append(c, 'Recent', 'm3');
    const [na, nb] = [await a.cmd('NOOP'), await b.cmd('NOOP')];
    const counts = [na, nb].map((lines) => Number(/^\* (\d+) RECENT$/.exec(lines[1] ?? '')?.[1]));
    assert.deepEqual([na[0], nb[0]], ['* 3 EXISTS', '* 3 EXISTS']);
    assert.deepEqual(counts.sort(), [0, 3], `${na.join('|')} // ${nb.join('|')}`);
    const flags = [(await a.cmd('FETCH 3 (FLAGS)'))[0], (await b.cmd('FETCH 3 (FLAGS)'))[0]];
    assert.equal(flags.filter((l) => l?.includes('\\Recent')).length, 1, flags.join('|'));
    assert.equal((await c.cmd('STATUS Recent (RECENT)'))[0], '* STATUS Recent (RECENT 0)');
  });

  test('EXPUNGE removes what is \\Deleted now, not what the session last heard', async () => {
    const { a, b } = await twoSessions('Undelete', 2);
    await a.cmd('STORE 1 +FLAGS.SILENT (\\Deleted)');
    assert.equal((await b.cmd('NOOP'))[0], '* 1 FETCH (UID 1 FLAGS (\\Deleted))');
    await a.cmd('STORE 1 -FLAGS.SILENT (\\Deleted)');
    assert.deepEqual(await b.cmd('EXPUNGE'), ['* 1 FETCH (UID 1 FLAGS ())', 't4 OK EXPUNGE completed']);
    assert.equal((await a.cmd('STATUS Undelete (MESSAGES)'))[0], '* STATUS Undelete (MESSAGES 2)');
  });
});
