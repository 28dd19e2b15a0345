import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashPassword, sha512Crypt, verifyPasswordHash } from '../../src/directory/password.ts';

// Test vectors from Drepper's "Unix crypt using SHA-256 and SHA-512" specification; the first and
// sixth were also cross-checked against glibc crypt(3) on this machine.
const SHA512_VECTORS: [string, string, string][] = [
  [
    '$6$saltstring',
    'Hello world!',
    '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1',
  ],
  [
    '$6$rounds=10000$saltstringsaltstring',
    'Hello world!',
    '$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.',
  ],
  [
    '$6$rounds=5000$toolongsaltstring',
    'This is just a test',
    '$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0',
  ],
  [
    '$6$rounds=1400$anotherlongsaltstring',
    'a very much longer text to encrypt.  This one even stretches over morethan one line.',
    '$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1',
  ],
  [
    '$6$rounds=77777$short',
    'we have a short salt string but not a short password',
    '$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0',
  ],
  [
    '$6$rounds=123456$asaltof16chars..',
    'a short string',
    '$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1',
  ],
  [
    '$6$rounds=10$roundstoolow',
    'the minimum number is still observed',
    '$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.',
  ],
];

test('SHA-512-crypt matches the specification test vectors', () => {
  for (const [setting, plain, expected] of SHA512_VECTORS) assert.equal(sha512Crypt(plain, setting), expected, setting);
});

test('imported SHA-512-crypt hashes verify, bare and with the Dovecot prefix', async () => {
  const [, plain, hash] = SHA512_VECTORS[0]!;
  assert.equal(await verifyPasswordHash(hash, plain), true);
  assert.equal(await verifyPasswordHash(`{SHA512-CRYPT}${hash}`, plain), true);
  assert.equal(await verifyPasswordHash(`{sha512-crypt}${hash}`, plain), true);
  assert.equal(await verifyPasswordHash(hash, 'Hello world'), false);
  assert.equal(await verifyPasswordHash(`{BLF-CRYPT}${hash}`, plain), false, 'scheme and hash must agree');
});

test('bcrypt: new hashes are $2b$ and verify; $2y$ (PHP/Dovecot) and $2a$ verify; {BLF-CRYPT}', async () => {
  const h = await hashPassword('correct horse', 4);
  assert.match(h, /^\$2b\$04\$/);
  assert.equal(await verifyPasswordHash(h, 'correct horse'), true);
  assert.equal(await verifyPasswordHash(h, 'correct horsE'), false);
  // Made by libxcrypt's crypt(3) on this machine: crypt('secret', '$2y$05$abcdefghijklmnopqrstuu').
  const y = '$2y$05$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a';
  assert.equal(await verifyPasswordHash(y, 'secret'), true);
  assert.equal(await verifyPasswordHash(`{BLF-CRYPT}${y}`, 'secret'), true);
  assert.equal(await verifyPasswordHash(y.replace('$2y$', '$2a$'), 'secret'), true);
  assert.equal(await verifyPasswordHash(y, 'Secret'), false);
});

test('malformed or unknown hashes never match and never throw', async () => {
  for (const bad of [
    '',
    'plain',
    '$1$md5$abc',
    '{PLAIN}secret',
    '{SHA512-CRYPT}',
    '$6$',
    '$2b$04$short',
    `$2b$99$${'a'.repeat(53)}`,
  ]) {
    assert.equal(await verifyPasswordHash(bad, 'secret'), false, bad);
  }
});
