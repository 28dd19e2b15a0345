// The parsers of Dovecot's files (src/import/dovecot-files.ts) and of passwd-file passwords
// (src/import/passwd-file.ts): the formats Dovecot writes, and fuzzing: any input either parses
// into something consistent or throws a plain Error, quickly.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parsePasswdFile, parseSubscriptions, parseUidlist } from '../../src/import/dovecot-files.ts';
import { passwordOf } from '../../src/import/passwd-file.ts';

test('dovecot-uidlist version 3, as Dovecot 2.3 writes it (extensions, expunged files still listed)', () => {
  const u = parseUidlist(
    '3 V1796593927 N7 G89c0ae3505d9156b263a000083ecc375\n' +
      '1 :1796593925.M945855P14886.vm,S=188,W=196\n' +
      '2 W196 GAAAA :1796593925.M955010P14886.vm,S=188,W=196\n' +
      '5 :1796593925.M990741P14886.vm,S=188,W=196:2,S\n',
  );
  assert.equal(u.version, 3);
  assert.equal(u.uidValidity, 1796593927);
  assert.equal(u.uidNext, 7);
  assert.deepEqual(
    [...u.uids],
    [
      ['1796593925.M945855P14886.vm,S=188,W=196', 1],
      ['1796593925.M955010P14886.vm,S=188,W=196', 2],
      ['1796593925.M990741P14886.vm,S=188,W=196', 5],
    ],
  );
  assert.deepEqual(u.problems, []);
});

test('dovecot-uidlist versions 1 and 2; a next UID below a listed UID is raised; bad lines are reported', () => {
  const v1 = parseUidlist('1 1100000000 4\n1 1099999999.123_4.host:2,S\n3 1099999999.200_1.host\n9 x\nbad line\n');
  assert.equal(v1.version, 1);
  assert.equal(v1.uidValidity, 1100000000);
  assert.equal(v1.uidNext, 10, 'UID 9 is listed: the next UID cannot be 4');
  assert.equal(v1.uids.get('1099999999.123_4.host'), 1);
  assert.deepEqual(v1.problems, ['line 5: no valid UID']);
  const v2 = parseUidlist('2 42 3\n1 0 a.host\n1 0 b.host\n2 0 a.host\n');
  assert.equal(v2.version, 2);
  assert.deepEqual([...v2.uids], [['a.host', 1]]);
  assert.deepEqual(v2.problems, ['line 3: UID 1 listed twice', 'line 4: file listed twice']);
  assert.throws(() => parseUidlist('3 N5\n'), /no valid UIDVALIDITY/);
  assert.throws(() => parseUidlist('4 V1 N1\n'), /unknown version/);
  assert.throws(() => parseUidlist('3 V0 N1\n'), /UIDVALIDITY/);
  assert.throws(() => parseUidlist('3 V4294967296 N1\n'), /UIDVALIDITY/);
});

test('subscriptions: version 2 (tab-separated levels, tab-escaped, modified UTF-7) and the old form', () => {
  const v2 = parseSubscriptions('V\t2\n\nINBOX\nArchive\nProjects\tAlpha\nR&AOk-unions 2026\nbad.dot\tx\n');
  assert.deepEqual(v2.names, ['INBOX', 'Archive', 'Projects.Alpha', 'Réunions 2026']);
  assert.equal(v2.problems.length, 1);
  const old = parseSubscriptions('inbox\nSent\nA.B\n&Jgo-\n');
  assert.deepEqual(old.names, ['INBOX', 'Sent', 'A.B', '☊']);
  const fs = parseSubscriptions('Lists/dovecot\n', '/');
  assert.deepEqual(fs.names, ['Lists.dovecot']);
  // mailbox_list_utf8 = yes: names in UTF-8.
  assert.deepEqual(parseSubscriptions('V\t2\n\nRéunions\n').names, ['Réunions']);
});

test('passwd-file lines and which passwords are kept, hashed or refused', () => {
  const { entries, problems } = parsePasswdFile(
    '# comment\n\nuser@example.test:{SHA512-CRYPT}$6$x$y:1000:1000::/home/u::userdb_quota_rule=*:storage=1G\n:nouser\nbob:{PLAIN}pw\n',
  );
  assert.deepEqual(
    entries.map((e) => [e.line, e.user, e.password, e.extra]),
    [
      [3, 'user@example.test', '{SHA512-CRYPT}$6$x$y', 'userdb_quota_rule=*:storage=1G'],
      [5, 'bob', '{PLAIN}pw', ''],
    ],
  );
  assert.deepEqual(problems, ['line 4: no user name']);
  const sha = `$6$saltsalt$${'a'.repeat(86)}`;
  const bcrypt = `$2y$05$${'b'.repeat(53)}`;
  assert.deepEqual(passwordOf(`{SHA512-CRYPT}${sha}`), { hash: `{SHA512-CRYPT}${sha}` });
  assert.deepEqual(passwordOf(`{BLF-CRYPT}${bcrypt}`), { hash: `{BLF-CRYPT}${bcrypt}` });
  assert.deepEqual(passwordOf(`{CRYPT}${sha}`), { hash: sha });
  assert.deepEqual(passwordOf(sha), { hash: sha }, 'no prefix: CRYPT, Dovecot’s default for passwd-file');
  assert.deepEqual(passwordOf('{PLAIN}secret'), { plain: 'secret' });
  assert.deepEqual(passwordOf('{cleartext}secret'), { plain: 'secret' });
  assert.match((passwordOf('{CRYPT}$1$abc$def') as { problem: string }).problem, /DES, MD5-crypt/);
  assert.match((passwordOf('{SSHA}abcd') as { problem: string }).problem, /not a scheme arcline verifies/);
  assert.match((passwordOf(`{BLF-CRYPT}${sha}`) as { problem: string }).problem, /prefix does not match/);
  assert.match((passwordOf('{SHA512-CRYPT}') as { problem: string }).problem, /no password/);
});

const FRAGMENTS = [
  '3 ',
  '1 ',
  '2 ',
  'V',
  'N',
  'G',
  ' :',
  ':',
  '\n',
  '\r\n',
  '\t',
  '12',
  '4294967295',
  'a.host',
  ' ',
  '&',
  '-',
  'V\t2\n\n',
  '\x01t',
];

test('fuzz: the parsers accept or refuse any input with a plain Error, consistently and quickly', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.constantFrom(...FRAGMENTS),
          fc.string({ maxLength: 12 }),
          fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a).toString('latin1')),
        ),
        { maxLength: 60 },
      ),
      (parts) => {
        const text = parts.join('');
        try {
          const u = parseUidlist(text);
          assert.ok(u.uidValidity >= 1 && u.uidValidity <= 0xffffffff);
          for (const [base, uid] of u.uids) {
            assert.ok(uid < u.uidNext, 'every listed UID is below the next UID');
            assert.ok(base !== '' && !base.includes(':') && !base.includes('\n'));
          }
          assert.equal(new Set(u.uids.values()).size, u.uids.size, 'no UID twice');
        } catch (e) {
          assert.ok(e instanceof Error && !(e instanceof TypeError) && !(e instanceof RangeError), String(e));
        }
        for (const name of parseSubscriptions(text).names) {
          assert.ok(name !== '' && !name.includes('\n') && !name.includes('\t') && !name.split('.').includes(''));
        }
        for (const e of parsePasswdFile(text).entries) assert.ok(!e.user.includes(':') && e.user !== '');
        passwordOf(text); // never throws
      },
    ),
    { numRuns: 2000 },
  );
});

test('bounded: a long uidlist parses in linear time', () => {
  const lines = ['3 V1 N200001'];
  for (let i = 1; i <= 200_000; i++) lines.push(`${i} W100 :1700000000.M${i}P1.host,S=90,W=100`);
  const t0 = performance.now();
  const u = parseUidlist(lines.join('\n'));
  assert.equal(u.uids.size, 200_000);
  assert.ok(performance.now() - t0 < 2000, 'under 2 s for 200,000 lines');
  assert.deepEqual(parseUidlist(`3 V1 N1\n1 :${'x'.repeat(5000)}\n`).problems, ['line 2: line too long']);
});
