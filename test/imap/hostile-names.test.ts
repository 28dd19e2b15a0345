// Hostile mailbox names and LIST patterns (issue #10, items 4 and 9) against the real server:
// patterns that made the old RegExp backtrack for minutes, names too long or too deep for the
// Maildir++ layout, more folders than an account may have, and CREATE/RENAME that fail half-way.
// Every answer must be quick, a NO with the right RFC 5530 code, and leave no partial state.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LIMITS } from '../../src/core/limits.ts';
import { encodeMutf7 } from '../../src/core/mutf7.ts';
import { RawImap } from '../harness/imap-client.ts';
import { provisionAlice, spawnServer } from '../harness/process.ts';
import { startTestServer, TEST_CONFIG, type TestServer } from '../harness/server.ts';

const PASSWORD = 'secret-password';
const LONG = 'L'.repeat(250); // 250 characters: ".LLL…" is 251 octets on disk, allowed

async function login(port: number, user = 'alice@example.test', password = PASSWORD): Promise<RawImap> {
  const { client } = await RawImap.connect(port);
  client.timeoutMs = 60_000; // the old code takes minutes; the assertions below bound the time
  assert.match((await client.cmd(`LOGIN ${user} ${password}`)).at(-1) ?? '', /^t1 OK /);
  return client;
}

const last = (lines: string[]) => lines.at(-1) ?? '';

/** The folder directories of an account on disk (".Name"). */
async function folders(dir: string): Promise<string[]> {
  return (await readdir(dir, { withFileTypes: true }))
    .filter((d) => d.isDirectory() && d.name.startsWith('.'))
    .map((d) => d.name)
    .sort();
}

describe('IMAP: hostile mailbox names and patterns', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(() => s.stop());

  test('LIST "" "*****X" and "%*%*%*%*%*X" against a 250-character name answer in milliseconds', async () => {
    const c = await login(s.imapPort);
    assert.match(last(await c.cmd(`CREATE ${LONG}`)), /^t2 OK /);
    for (const pattern of ['*****X', '%*%*%*%*%*X', `${'*L'.repeat(40)}X`, `${'%'.repeat(500)}X`]) {
      const started = performance.now();
      const res = await c.cmd(`LIST "" "${pattern}"`);
      const ms = performance.now() - started;
      assert.match(last(res), /^t\d+ OK LIST completed$/, pattern);
      assert.ok(!res.some((l) => l.endsWith(LONG)), pattern);
      // The old RegExp took 27 s of CPU for the first pattern; generous for a loaded machine.
      assert.ok(ms < 1000, `${pattern}: ${ms.toFixed(0)} ms`);
    }
    // LSUB takes the same patterns.
    const started = performance.now();
    assert.match(last(await c.cmd('LSUB "" "%*%*%*%*%*X"')), /^t\d+ OK /);
    assert.ok(performance.now() - started < 1000);
    // And the matcher still finds what it should.
    const found = await c.cmd(`LIST "" "*${'L'.repeat(10)}"`);
    assert.ok(found.includes(`* LIST (\\HasNoChildren) "." ${LONG}`), found.join('|'));
    const inbox = await c.cmd('LIST "" "inb%"');
    assert.ok(
      inbox.some((l) => /^\* LIST \(.*\) "\." INBOX$/.test(l)),
      inbox.join('|'),
    );
    c.close();
  });

  test('LIST patterns: too long or too many get NO [LIMIT] at once', async () => {
    const c = await login(s.imapPort);
    const long = '*'.repeat(LIMITS.mailboxes.maxPatternLength + 1);
    assert.match(last(await c.cmd(`LIST "" "${long}"`)), /^t2 NO \[LIMIT\] /);
    const many = Array.from({ length: LIMITS.mailboxes.maxListPatterns + 1 }, (_, i) => `p${i}`).join(' ');
    assert.match(last(await c.cmd(`LIST "" (${many})`)), /^t3 NO \[LIMIT\] /);
    assert.match(last(await c.cmd(`LSUB "" "${long}"`)), /^t4 NO \[LIMIT\] /);
    // The session goes on.
    assert.match(last(await c.cmd('LIST "" "%"')), /^t5 OK /);
    c.close();
  });

  test('names too long or too deep get NO [LIMIT], names that cannot be stored NO [CANNOT], never SERVERBUG', async () => {
    const c = await login(s.imapPort);
    const huge = 'x'.repeat(10_000);
    const started = performance.now();
    assert.match(last(await c.cmd(`CREATE ${huge}`)), /^t2 NO \[LIMIT\] /);
    assert.ok(performance.now() - started < 1000);
    // 255 octets + the leading "." is one more than NAME_MAX.
    assert.match(last(await c.cmd(`CREATE ${'y'.repeat(255)}`)), /^t3 NO \[LIMIT\] /);
    // Modified UTF-7 makes non-ASCII names longer on disk: 100 "ü" are 269 octets encoded.
    const umlauts = encodeMutf7('\u00fc'.repeat(100));
    assert.ok(umlauts.length > 254 && umlauts.length < 300);
    assert.match(last(await c.cmd(`CREATE ${umlauts}`)), /^t4 NO \[LIMIT\] /);
    const deep = Array.from({ length: LIMITS.mailboxes.maxDepth + 1 }, (_, i) => `d${i}`).join('.');
    assert.match(last(await c.cmd(`CREATE ${deep}`)), /^t5 NO \[LIMIT\] /);
    for (const cmd of [`SELECT ${huge}`, `STATUS ${huge} (MESSAGES)`, `DELETE ${huge}`, `RENAME ${huge} z`]) {
      assert.match(last(await c.cmd(cmd)), /^t\d+ NO \[LIMIT\] /, cmd.slice(0, 12));
    }
    assert.match(last(await c.cmd(`RENAME Sent ${'z'.repeat(300)}`)), /^t\d+ NO \[LIMIT\] /);
    assert.match(last(await c.cmd(`RENAME Sent ${deep}`)), /^t\d+ NO \[LIMIT\] /);
    assert.match(last(await c.cmd('CREATE "a..b"')), /^t\d+ NO \[CANNOT\] /);
    // A subscription keeps an index row even without a folder: the same name limits apply.
    assert.match(last(await c.cmd(`SUBSCRIBE ${'s'.repeat(300)}`)), /^t\d+ NO \[LIMIT\] /);
    assert.match(last(await c.cmd('SUBSCRIBE "s/t"')), /^t\d+ NO \[CANNOT\] /);
    assert.match(last(await c.cmd('SUBSCRIBE not-yet')), /^t\d+ OK /);
    // A name at the limit works.
    const ok = 'k'.repeat(LIMITS.mailboxes.maxEncodedNameBytes);
    assert.match(last(await c.cmd(`CREATE ${ok}`)), /^t\d+ OK /);
    assert.match(last(await c.cmd(`SELECT ${ok}`)), /^t\d+ OK /);
    assert.ok(!s.logs.some((l) => l.msg === 'imap command failed'), 'no internal error was logged');
    c.close();
  });

  test('CREATE of a hierarchy is all or nothing: a failing leaf leaves no parent behind', async () => {
    const c = await login(s.imapPort);
    const acct = s.mailboxDir('alice@example.test');
    const before = await folders(acct);
    // The leaf is too long for the file system: the parents must not be made either.
    assert.match(last(await c.cmd(`CREATE p1.q1.${'z'.repeat(250)}`)), /^t2 NO \[LIMIT\] /);
    assert.deepEqual(await folders(acct), before);
    // The leaf cannot be made (a file is in its place): the parents made for it are removed.
    await writeFile(join(acct, '.p2.q2.leaf'), 'in the way');
    assert.match(last(await c.cmd('CREATE p2.q2.leaf')), /^t3 NO \[CANNOT\] /);
    assert.deepEqual(await folders(acct), before);
    const list = await c.cmd('LIST "" "p2*"');
    assert.deepEqual(list, ['t4 OK LIST completed']);
    await rm(join(acct, '.p2.q2.leaf'));
    // A parent that existed before stays when the leaf fails.
    assert.match(last(await c.cmd('CREATE p3')), /^t5 OK /);
    await writeFile(join(acct, '.p3.q3.leaf'), 'in the way');
    assert.match(last(await c.cmd('CREATE p3.q3.leaf')), /^t6 NO \[CANNOT\] /);
    assert.deepEqual(await folders(acct), [...before, '.p3'].sort());
    await rm(join(acct, '.p3.q3.leaf'));
    assert.match(last(await c.cmd('CREATE p3.q3.leaf')), /^t7 OK /);
    assert.deepEqual(await folders(acct), [...before, '.p3', '.p3.q3', '.p3.q3.leaf'].sort());
    c.close();
  });

  test('RENAME of a hierarchy is all or nothing; a stale subscription under the new name does not break it', async () => {
    const c = await login(s.imapPort);
    const acct = s.mailboxDir('alice@example.test');
    for (const n of ['r1', 'r1.x', 'r1.y']) assert.match(last(await c.cmd(`CREATE ${n}`)), /^t\d+ OK /);
    // Something is in the way of the last child's new name: nothing may move.
    await writeFile(join(acct, '.r2.y'), 'in the way');
    const before = await folders(acct);
    assert.match(last(await c.cmd('RENAME r1 r2')), /^t\d+ NO \[ALREADYEXISTS\] /);
    assert.deepEqual(await folders(acct), before);
    const names = (await c.cmd('LIST "" "r*"')).filter((l) => l.startsWith('* LIST'));
    assert.deepEqual(
      names.map((l) => l.split(' ').at(-1)),
      ['r1', 'r1.x', 'r1.y'],
    );
    await rm(join(acct, '.r2.y'));
    // A child's new name over the length limit: refused before anything moves.
    assert.match(last(await c.cmd(`CREATE r1.${'w'.repeat(240)}`)), /^t\d+ OK /);
    assert.match(last(await c.cmd(`RENAME r1 ${'r'.repeat(20)}`)), /^t\d+ NO \[LIMIT\] /);
    assert.ok((await folders(acct)).includes('.r1.x'));
    assert.match(last(await c.cmd(`DELETE r1.${'w'.repeat(240)}`)), /^t\d+ OK /);
    // SUBSCRIBE keeps a row for a name that does not exist; RENAME onto that name works.
    assert.match(last(await c.cmd('SUBSCRIBE r3')), /^t\d+ OK /);
    assert.match(last(await c.cmd('RENAME r1 r3')), /^t\d+ OK /);
    assert.match(last(await c.cmd('SELECT r3.x')), /^t\d+ OK /);
    c.close();
  });
});

describe('IMAP: thousands of folders', () => {
  let dir: string;
  let config: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arcline-names-'));
    config = join(dir, 'arcline.toml');
    await provisionAlice(config, TEST_CONFIG(dir).replace('level = "debug"', 'level = "info"'), PASSWORD);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('the per-account folder limit gives NO [LIMIT]; LIST over them never stalls other clients', async () => {
    const acct = join(dir, 'mail/example.test/alice');
    // Fill the account up to one below the limit, directly on disk (as another program could).
    const have = (await folders(acct)).length;
    const names: string[] = [];
    for (let i = 0; names.length < LIMITS.mailboxes.maxPerAccount - have - 2; i++) {
      names.push(`.f${String(i).padStart(5, '0')}${'.g'.repeat(i % 3)}`);
    }
    for (let i = 0; i < names.length; i += 500) {
      await Promise.all(names.slice(i, i + 500).map((n) => mkdir(join(acct, n, 'cur'), { recursive: true })));
    }
    const srv = await spawnServer(config);
    const imapPort = srv.ports.imap?.[0] ?? 0;
    try {
      const c = await login(imapPort);
      assert.match(last(await c.cmd(`CREATE ${LONG}`)), /^t2 OK /);
      // One left: a CREATE that needs two folders is refused whole, one that needs one works.
      assert.match(last(await c.cmd('CREATE top.sub')), /^t3 NO \[LIMIT\] /);
      assert.ok(!(await folders(acct)).includes('.top'));
      assert.match(last(await c.cmd('CREATE top')), /^t4 OK /);
      assert.match(last(await c.cmd('CREATE more')), /^t5 NO \[LIMIT\] /);

      // Hostile LISTs over 10,000 folders while another client connects again and again.
      let running = true;
      const greetings: number[] = [];
      const prober = (async () => {
        while (running) {
          const t0 = performance.now();
          const { client, greeting } = await RawImap.connect(imapPort);
          greetings.push(performance.now() - t0);
          assert.match(greeting, /^\* OK /);
          client.close();
        }
      })();
      const timings: Record<string, number> = {};
      for (const pattern of ['*', '*****X', '%*%*%*%*%*X', `${'%f'.repeat(100)}X`]) {
        const t0 = performance.now();
        const res = await c.cmd(`LIST "" "${pattern}"`);
        timings[pattern.slice(0, 12)] = performance.now() - t0;
        assert.match(last(res), /^t\d+ OK LIST completed$/);
        if (pattern === '*') assert.ok(res.length > LIMITS.mailboxes.maxPerAccount, `${res.length} lines`);
      }
      running = false;
      await prober;
      greetings.sort((a, b) => a - b);
      const worst = greetings.at(-1) ?? 0;
      console.log(
        `LIST over ${LIMITS.mailboxes.maxPerAccount} folders (ms): ${JSON.stringify(timings)}; ` +
          `${greetings.length} greetings meanwhile, worst ${worst.toFixed(0)} ms`,
      );
      for (const [p, ms] of Object.entries(timings)) assert.ok(ms < 10_000, `${p}: ${ms} ms`);
      // Generous for a loaded 2-core machine; the old code stalled greetings for 20 s and more.
      assert.ok(worst < 1000, `greeting took ${worst} ms during LIST`);
      c.close();
    } finally {
      srv.child.kill('SIGTERM');
      await srv.exited;
    }
  });
});
