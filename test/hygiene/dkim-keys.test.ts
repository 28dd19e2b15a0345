// DKIM keys in the state directory and their DNS records (RFC 6376, RFC 8463).

import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { isArclineError } from '../../src/core/errors.ts';
import {
  type DkimKey,
  DkimKeyStore,
  dkimRecordName,
  dkimTxtValue,
  dkimZoneLine,
  normalizeSelector,
} from '../../src/hygiene/dkim-keys.ts';

const pOf = (value: string): Buffer => Buffer.from(/; p=([A-Za-z0-9+/=]+)$/.exec(value)?.[1] ?? '', 'base64');
const code = (c: string) => (e: unknown) => isArclineError(e) && e.code === c;

describe('DKIM key store', () => {
  let dir: string;
  let kdir: string;
  let store: DkimKeyStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arcline-dkim-'));
    kdir = join(dir, 'dkim', 'example.org');
    store = new DkimKeyStore(dir);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('rotation grace on disk: the grace waits in pending/, the retired key under retired/, then only a marker', async () => {
    await store.generate('example.org', { selector: 'old', algorithm: 'ed25519' });
    await store.generate('example.org', { selector: 'new', algorithm: 'ed25519', pending: true, graceMs: 1000 });
    assert.deepEqual((await readdir(join(kdir, 'pending'))).sort(), ['new.ed25519.pem', 'new.grace']);
    await store.activate('example.org', 'new', new Date(5000));
    assert.deepEqual(await readdir(join(kdir, 'pending')), []);
    assert.deepEqual(await readdir(join(kdir, 'retired', '6000')), ['old.ed25519.pem']);
    assert.equal(((await stat(join(kdir, 'retired', '6000', 'old.ed25519.pem'))).mode & 0o777).toString(8), '600');
    await store.expireRetired('example.org', new Date(6000));
    assert.deepEqual(await readdir(join(kdir, 'retired')), [], 'the private key is deleted');
    assert.deepEqual(await readdir(join(kdir, 'gone')), ['old.ed25519']);
    // A pending key removed before its activation takes its grace with it.
    await store.generate('example.org', { selector: 'p2', algorithm: 'ed25519', pending: true, graceMs: 5 });
    await store.remove('example.org', 'p2');
    assert.deepEqual(await readdir(join(kdir, 'pending')), []);
  });

  test('RSA-2048 and Ed25519 keys: private files under their names, listed, never overwritten', async () => {
    const r = await store.generate('example.org', { selector: 'r1', algorithm: 'rsa' });
    const e = await store.generate('example.org', { selector: 'e1', algorithm: 'ed25519' });
    const rk = createPrivateKey(r.privateKeyPem);
    assert.equal(rk.asymmetricKeyType, 'rsa');
    assert.equal(rk.asymmetricKeyDetails?.modulusLength, 2048);
    assert.equal(rk.asymmetricKeyDetails?.publicExponent, 65537n);
    assert.equal(createPrivateKey(e.privateKeyPem).asymmetricKeyType, 'ed25519');
    assert.match(r.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/); // PKCS#8

    assert.deepEqual((await readdir(kdir)).sort(), ['e1.ed25519.pem', 'r1.rsa.pem']); // no temp file left
    assert.equal((await stat(join(dir, 'dkim'))).mode & 0o777, 0o700);
    assert.equal((await stat(kdir)).mode & 0o777, 0o700);
    for (const f of ['e1.ed25519.pem', 'r1.rsa.pem']) assert.equal((await stat(join(kdir, f))).mode & 0o777, 0o600);
    assert.equal(r.created.getTime(), (await stat(join(kdir, 'r1.rsa.pem'))).mtime.getTime());

    const keys = await store.keys('example.org');
    assert.deepEqual(
      keys.map((k) => [k.domain, k.selector, k.algorithm]),
      [
        ['example.org', 'e1', 'ed25519'],
        ['example.org', 'r1', 'rsa'],
      ],
    );
    assert.equal(keys[1]?.privateKeyPem, r.privateKeyPem);
    assert.equal(keys[1]?.created.getTime(), r.created.getTime());

    // A selector names one key, whatever the algorithm; the existing file is untouched.
    for (const algorithm of ['rsa', 'ed25519'] as const) {
      await assert.rejects(store.generate('example.org', { selector: 'R1', algorithm }), code('EXISTS'));
    }
    assert.equal((await store.keys('example.org'))[1]?.privateKeyPem, r.privateKeyPem);
    assert.deepEqual((await readdir(kdir)).sort(), ['e1.ed25519.pem', 'r1.rsa.pem']);
  });

  test('sorted by selector, then rsa before ed25519; sub-selectors allowed', async () => {
    await store.generate('example.org', { selector: 'b', algorithm: 'ed25519' });
    await store.generate('example.org', { selector: 'a.x', algorithm: 'ed25519' });
    await store.generate('example.org', { selector: 'a', algorithm: 'ed25519' });
    // Both algorithms under one selector cannot be made by generate(), but a hand-placed file can.
    const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' });
    await writeFile(join(kdir, 'b.rsa.pem'), pem, { mode: 0o600 });
    assert.deepEqual(
      (await new DkimKeyStore(dir).keys('example.org')).map((k) => `${k.selector}/${k.algorithm}`),
      ['a/ed25519', 'a.x/ed25519', 'b/rsa', 'b/ed25519'],
    );
    await store.remove('example.org', 'b'); // the selector goes, with every file of it
    assert.deepEqual((await readdir(kdir)).sort(), ['a.ed25519.pem', 'a.x.ed25519.pem']);
  });

  test('concurrent generate of one selector: never two keys, a success is on disk', async () => {
    const results = await Promise.allSettled(
      (['rsa', 'ed25519', 'ed25519', 'rsa'] as const).map((algorithm) =>
        new DkimKeyStore(dir).generate('example.org', { selector: 's', algorithm }),
      ),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    assert.ok(ok.length <= 1);
    for (const r of results) if (r.status === 'rejected') assert.ok(code('EXISTS')(r.reason), String(r.reason));
    const files = await readdir(kdir);
    assert.equal(files.length, ok.length, files.join());
    if (ok[0]) assert.deepEqual(files, [`s.${ok[0].value.algorithm}.pem`]);
  });

  test('RSA TXT value: the SPKI DER of the public key (RFC 6376 §3.6.1)', async () => {
    const r = await store.generate('example.org', { selector: 'r1', algorithm: 'rsa' });
    const value = dkimTxtValue(r);
    assert.match(value, /^v=DKIM1; k=rsa; p=[A-Za-z0-9+/]+=*$/);
    const pub = createPublicKey({ key: pOf(value), format: 'der', type: 'spki' });
    assert.ok(pub.equals(createPublicKey(createPrivateKey(r.privateKeyPem))));
  });

  test('Ed25519 TXT value: the raw 32-byte key, which verifies a signature (RFC 8463 §4.2)', async () => {
    const e = await store.generate('example.org', { selector: 'e1', algorithm: 'ed25519' });
    const value = dkimTxtValue(e);
    assert.match(value, /^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
    const raw = pOf(value);
    assert.equal(raw.length, 32);
    const spki = createPublicKey(createPrivateKey(e.privateKeyPem)).export({ type: 'spki', format: 'der' });
    assert.deepEqual(raw, spki.subarray(spki.length - 32));
    // Rebuilt from the raw bytes alone, as a verifier does.
    const rebuilt = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') },
      format: 'jwk',
    });
    const data = Buffer.from('DKIM-Signature: v=1; a=ed25519-sha256');
    const sig = sign(null, data, createPrivateKey(e.privateKeyPem));
    assert.ok(verify(null, data, rebuilt, sig));
    assert.ok(!verify(null, Buffer.from('other'), rebuilt, sig));
  });

  test('zone lines: name, and the value in quoted strings of at most 255 characters (RFC 1035)', async () => {
    const r = await store.generate('example.org', { selector: 'r1', algorithm: 'rsa' });
    const e = await store.generate('example.org', { selector: 'e1', algorithm: 'ed25519' });
    assert.equal(dkimRecordName(r), 'r1._domainkey.example.org');
    for (const [key, count] of [
      [r, 2],
      [e, 1],
    ] as const) {
      const line = dkimZoneLine(key);
      const m = /^(\S+) 3600 IN TXT \( ((?:"[^"]*" )+)\)$/.exec(line);
      assert.ok(m, line);
      assert.equal(m[1], `${dkimRecordName(key)}.`);
      const parts = [...(m[2] ?? '').matchAll(/"([^"]*)" /g)].map((x) => x[1] ?? '');
      assert.equal(parts.length, count);
      assert.ok(parts.every((s) => s.length > 0 && s.length <= 255));
      assert.ok(parts.slice(0, -1).every((s) => s.length === 255));
      assert.equal(parts.join(''), dkimTxtValue(key));
    }
  });

  test('bad selectors, domains and algorithms are refused before the disk is touched', async () => {
    const badSelectors = [
      '../x',
      'a/b',
      '-a',
      'a-',
      'A_B',
      '',
      'x'.repeat(64),
      'a..b',
      '.a',
      'a.',
      ' a',
      'a b',
      '\u212a',
    ];
    for (const s of badSelectors) {
      assert.throws(() => normalizeSelector(s), code('INVALID'), JSON.stringify(s));
      await assert.rejects(store.generate('example.org', { selector: s, algorithm: 'ed25519' }), code('INVALID'), s);
      await assert.rejects(store.remove('example.org', s), code('INVALID'), s);
    }
    const badDomains = [
      '../x',
      'a/b',
      '-a',
      'A_B',
      '',
      'x'.repeat(64),
      '..',
      'a..b',
      'Example.org',
      `${'a.'.repeat(127)}ab`,
    ];
    for (const d of badDomains) {
      await assert.rejects(store.generate(d, { selector: 's', algorithm: 'ed25519' }), code('INVALID'), d);
      await assert.rejects(store.keys(d), code('INVALID'), d);
      await assert.rejects(store.remove(d, 's'), code('INVALID'), d);
    }
    const algorithm = 'dsa' as 'rsa';
    await assert.rejects(store.generate('example.org', { selector: 's', algorithm }), code('INVALID'));
    // The record name {selector}._domainkey.{domain} must fit in 253 characters.
    const label = 's'.repeat(63);
    const long = `${label}.${label}.${label}.${'s'.repeat(40)}`; // 232: a valid selector, but 255 with the rest
    await assert.rejects(store.generate('example.org', { selector: long, algorithm: 'ed25519' }), code('INVALID'));
    assert.deepEqual(await readdir(dir), []);

    // The file name {selector}.ed25519.pem must fit in 255 bytes.
    assert.throws(() => normalizeSelector(`${label}.${label}.${label}.${label}`), code('INVALID'));
    assert.equal(normalizeSelector(long), long);
    assert.equal(normalizeSelector('Sel-1.Sub'), 'sel-1.sub');
    assert.equal(normalizeSelector('x'.repeat(63)), 'x'.repeat(63));
    assert.equal(normalizeSelector('2026'), '2026');
  });

  test('another store instance (the CLI) adds a key after the cache was filled: seen; remove', async () => {
    await store.generate('example.org', { selector: 'a', algorithm: 'ed25519' });
    assert.deepEqual(
      (await store.keys('example.org')).map((k) => k.selector),
      ['a'],
    );
    await new DkimKeyStore(dir).generate('example.org', { selector: 'b', algorithm: 'rsa' });
    assert.deepEqual(
      (await store.keys('example.org')).map((k) => k.selector),
      ['a', 'b'],
    );
    await new DkimKeyStore(dir).remove('example.org', 'a');
    assert.deepEqual(
      (await store.keys('example.org')).map((k) => k.selector),
      ['b'],
    );
    await store.remove('example.org', 'B');
    assert.deepEqual(await store.keys('example.org'), []);
    await assert.rejects(store.remove('example.org', 'a'), code('NOT_FOUND'));
    await assert.rejects(store.remove('none.org', 'a'), code('NOT_FOUND'));
    assert.deepEqual(await store.keys('none.org'), []);
    await assert.rejects(stat(join(dir, 'dkim', 'none.org')), { code: 'ENOENT' });
  });

  test('keys() is cached while the directory is unchanged, and re-read when its mtime moves', async () => {
    await store.generate('example.org', { selector: 'a', algorithm: 'ed25519' });
    const old = new Date(Date.now() - 60_000);
    await utimes(kdir, old, old); // a settled directory: its mtime can be trusted
    const first = await store.keys('example.org');
    const second = await store.keys('example.org');
    assert.equal(second, first); // the same array: no re-read
    assert.equal(second.length, 1);
    await new DkimKeyStore(dir).generate('example.org', { selector: 'b', algorithm: 'ed25519' });
    const third = await store.keys('example.org');
    assert.notEqual(third, first);
    assert.deepEqual(
      third.map((k) => k.selector),
      ['a', 'b'],
    );
  });

  test('reading skips garbage and foreign files without deleting them', async () => {
    await store.generate('example.org', { selector: 'a', algorithm: 'ed25519' });
    const ed = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const small = generateKeyPairSync('rsa', { modulusLength: 512 }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    }) as string;
    const junk: Record<string, string> = {
      'c.rsa.pem': 'not a key', // the name matches, the PEM does not parse
      'd.rsa.pem': '',
      'e.rsa.pem': ed, // an Ed25519 key under an RSA name
      'f.rsa.pem': small, // below RFC 8301's 1024 bits
      'notes.txt': 'hello',
      'g.dsa.pem': ed,
      'G.ed25519.pem': ed, // not a normalised selector
      '-h.ed25519.pem': ed,
      'i..j.ed25519.pem': ed,
      '.tmp-0123456789abcdef': ed,
    };
    for (const [name, text] of Object.entries(junk)) await writeFile(join(kdir, name), text, { mode: 0o600 });
    await mkdir(join(kdir, 'k.ed25519.pem')); // a directory under a key's name
    // A PKCS#1 file placed by hand is used, and handed out as PKCS#8.
    await writeFile(join(kdir, 'p.rsa.pem'), rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }), { mode: 0o600 });

    const keys = await store.keys('example.org');
    assert.deepEqual(
      keys.map((k) => `${k.selector}/${k.algorithm}`),
      ['a/ed25519', 'p/rsa'],
    );
    const p = keys[1] as DkimKey;
    assert.match(p.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.ok(createPrivateKey(p.privateKeyPem).equals(rsa.privateKey));
    assert.ok(createPublicKey({ key: pOf(dkimTxtValue(p)), format: 'der', type: 'spki' }).equals(rsa.publicKey));
    for (const name of [...Object.keys(junk), 'k.ed25519.pem']) await stat(join(kdir, name)); // all still there
    // A garbage file still holds its selector: generate() never replaces it.
    await assert.rejects(store.generate('example.org', { selector: 'c', algorithm: 'rsa' }), code('EXISTS'));
  });
});
