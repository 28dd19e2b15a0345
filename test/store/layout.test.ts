import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import {
  accountDir,
  checkNewMailboxName,
  LayoutError,
  mailboxDir,
  NameLimitError,
} from '../../src/store/maildir/layout.ts';
import { compareNames, sizeFromName, uniqueBase, withSize } from '../../src/store/maildir/naming.ts';

test('account and mailbox paths: every escape attempt is refused', () => {
  assert.equal(accountDir('/m', 'alice@example.test' as AccountId), '/m/example.test/alice');
  for (const bad of [
    '../x@example.test',
    'a/b@example.test',
    '..@example.test',
    '.@example.test',
    '.x@example.test',
    'a\0b@example.test',
    'alice@../x',
    'alice@EXAMPLE.test',
    'alice@a/b',
    'noat',
    '@example.test',
  ]) {
    assert.throws(() => accountDir('/m', bad as AccountId), Error, bad);
  }
  const acct = '/m/example.test/alice';
  assert.equal(mailboxDir(acct, 'INBOX'), acct);
  assert.equal(mailboxDir(acct, 'inbox'), acct);
  assert.equal(mailboxDir(acct, 'Sent'), `${acct}/.Sent`);
  assert.equal(mailboxDir(acct, 'Archive.2024'), `${acct}/.Archive.2024`);
  for (const bad of [
    '',
    '..',
    '../x',
    'a/../../b',
    '/etc',
    'a/b',
    'a\0b',
    '.hidden',
    'a..b',
    'trailing.',
    'tab\there',
    'a\\b',
  ]) {
    assert.throws(() => mailboxDir(acct, bad), Error, JSON.stringify(bad));
  }
});

test('Maildir names are unique and carry the size', () => {
  const names = new Set(Array.from({ length: 10_000 }, () => uniqueBase()));
  assert.equal(names.size, 10_000);
  const n = withSize(uniqueBase(), 1234);
  assert.match(n, /^\d+\.M\d+P\d+Q\d+\.[^/:]+,S=1234,W=1234$/);
  assert.equal(sizeFromName(n), 1234);
  assert.equal(sizeFromName('1.M2P3.host'), null);
});

test('Maildir names order by delivery time, numerically', () => {
  const sorted = [
    '1700000000.M100000P1Q2.h',
    '1700000000.M99000P1Q1.h',
    '1699999999.M5P9Q9.h',
    '1700000000.M99000P1Q10.h',
    'other',
  ].sort(compareNames);
  assert.deepEqual(sorted, [
    '1699999999.M5P9Q9.h',
    '1700000000.M99000P1Q1.h',
    '1700000000.M99000P1Q10.h',
    '1700000000.M100000P1Q2.h',
    'other',
  ]);
  const a = uniqueBase(1_700_000_000_123.5);
  assert.match(a, /^1700000000\.M123500P\d+Q\d+\./);
  const names = Array.from({ length: 50 }, () => uniqueBase());
  assert.deepEqual([...names].sort(compareNames), names, 'successive names sort in creation order');
});

test('mailbox names: at most 254 octets on disk and 32 levels for new names, as NameLimitError', () => {
  const acct = '/m/example.test/alice';
  assert.equal(mailboxDir(acct, 'a'.repeat(254)), `${acct}/.${'a'.repeat(254)}`);
  assert.throws(() => mailboxDir(acct, 'a'.repeat(255)), NameLimitError);
  assert.throws(() => mailboxDir(acct, 'a'.repeat(10_000)), NameLimitError);
  assert.throws(
    () => mailboxDir(acct, 'a..b'),
    (e) => e instanceof LayoutError && !(e instanceof NameLimitError),
  );
  checkNewMailboxName(Array.from({ length: 32 }, () => 'd').join('.'));
  assert.throws(() => checkNewMailboxName(Array.from({ length: 33 }, () => 'd').join('.')), NameLimitError);
});
