import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mailboxNameProblem, normalizeDomain, parseAddress, splitDetail } from '../../src/core/address.ts';

test('normalizeDomain lower-cases, converts IDN to punycode and rejects non-hostnames', () => {
  assert.equal(normalizeDomain('Example.COM'), 'example.com');
  assert.equal(normalizeDomain('example.com.'), 'example.com');
  assert.equal(normalizeDomain('bücher.example'), 'xn--bcher-kva.example');
  assert.equal(normalizeDomain('BÜCHER.example'), 'xn--bcher-kva.example');
  for (const bad of [
    '',
    'com',
    '-a.com',
    'a-.com',
    'a..com',
    'a b.com',
    'a/b.com',
    '1.2.3.4',
    '[1.2.3.4]',
    'a.com\0',
    `${'a'.repeat(64)}.com`,
  ]) {
    assert.equal(normalizeDomain(bad), null, bad);
  }
});

test('parseAddress normalises case and NFC, unquotes, refuses literals and control characters', () => {
  assert.deepEqual(parseAddress('John.Doe@Example.com'), { local: 'john.doe', domain: 'example.com' });
  assert.deepEqual(parseAddress('"john doe"@example.com'), { local: 'john doe', domain: 'example.com' });
  assert.deepEqual(parseAddress('Ünïcode@bücher.example'), { local: 'ünïcode', domain: 'xn--bcher-kva.example' });
  // NFD input is normalised to NFC, so both spellings name one mailbox.
  assert.equal(parseAddress('u\u0308ber@example.com')?.local, '\u00fcber');
  for (const bad of [
    '',
    'nodomain',
    '@example.com',
    'a@',
    'a@[127.0.0.1]',
    'a\r\nb@example.com',
    `${'a'.repeat(65)}@example.com`,
    '"unterminated@example.com',
  ]) {
    assert.equal(parseAddress(bad), null, JSON.stringify(bad));
  }
});

test('mailboxNameProblem keeps every path trick out of mailbox names', () => {
  for (const ok of ['alice', 'a.b', "o'brien", 'x_y-z', 'müller', '123'])
    assert.equal(mailboxNameProblem(ok), null, ok);
  for (const bad of [
    '',
    '.',
    '..',
    '.hidden',
    'a..b',
    'trailing.',
    'a/b',
    '../etc',
    'a\0b',
    'a+b',
    'a b',
    'a\\b',
    'a:b',
    'a"b',
    'a@b',
    'x'.repeat(65),
  ]) {
    assert.notEqual(mailboxNameProblem(bad), null, JSON.stringify(bad));
  }
});

test('splitDetail splits at the first plus (RFC 5233)', () => {
  assert.deepEqual(splitDetail('user+tag'), { base: 'user', detail: 'tag' });
  assert.deepEqual(splitDetail('user+a+b'), { base: 'user', detail: 'a+b' });
  assert.deepEqual(splitDetail('user'), { base: 'user', detail: null });
  assert.deepEqual(splitDetail('+tag'), { base: '+tag', detail: null });
});
