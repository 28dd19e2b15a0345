// DKIM keys in the state directory and their DNS records.

import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { isArclineError } from '../../src/core/errors.ts';
import { DkimKeyStore, dkimTxtValue, dkimZoneLine, normalizeSelector } from '../../src/hygiene/dkim-keys.ts';

describe('DKIM key store', () => {
  let dir: string;
  let store: DkimKeyStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arcline-dkim-'));
    store = new DkimKeyStore(dir);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('RSA-2048 and Ed25519 keys: private files, listed, never overwritten', async () => {
    const r = await store.generate('example.org', { selector: 'r1', algorithm: 'rsa' });
    const e = await store.generate('example.org', { selector: 'e1', algorithm: 'ed25519' });
    assert.equal(createPrivateKey(r.privateKeyPem).asymmetricKeyDetails?.modulusLength, 2048);
    assert.equal(createPrivateKey(e.privateKeyPem).asymmetricKeyType, 'ed25519');
    const kdir = join(dir, 'dkim', 'example.org');
    assert.deepEqual((await readdir(kdir)).sort(), ['e1.ed25519.pem', 'r1.rsa.pem']);
    assert.equal((await stat(kdir)).mode & 0o777, 0o700);
    assert.equal((await stat(join(kdir, 'r1.rsa.pem'))).mode & 0o777, 0o600);
    assert.deepEqual(
      (await store.keys('example.org')).map((k) => `${k.selector}/${k.algorithm}`),
      ['e1/ed25519', 'r1/rsa'],
    );
    await assert.rejects(store.generate('example.org', { selector: 'r1', algorithm: 'ed25519' }), (err) =>
      isArclineError(err, 'EXISTS'),
    );
  });

  test('TXT values: RSA SPKI; Ed25519 raw 32 bytes that verify a signature (RFC 8463)', async () => {
    const r = await store.generate('example.org', { selector: 'r1', algorithm: 'rsa' });
    const p = /p=([A-Za-z0-9+/=]+)$/.exec(dkimTxtValue(r))?.[1] ?? '';
    const pub = createPublicKey({ key: Buffer.from(p, 'base64'), format: 'der', type: 'spki' });
    assert.ok(pub.equals(createPublicKey(createPrivateKey(r.privateKeyPem))));
    const e = await store.generate('example.org', { selector: 'e1', algorithm: 'ed25519' });
    const raw = Buffer.from(/p=([A-Za-z0-9+/=]+)$/.exec(dkimTxtValue(e))?.[1] ?? '', 'base64');
    assert.equal(raw.length, 32);
    const prefix = Buffer.from('302a300506032b6570032100', 'hex'); // Ed25519 SPKI header (RFC 8410)
    const rebuilt = createPublicKey({ key: Buffer.concat([prefix, raw]), format: 'der', type: 'spki' });
    const sig = sign(null, Buffer.from('data'), createPrivateKey(e.privateKeyPem));
    assert.ok(verify(null, Buffer.from('data'), rebuilt, sig));
    assert.match(dkimTxtValue(e), /^v=DKIM1; k=ed25519; p=/);
  });

  test('zone lines split values into quoted 255-octet strings', async () => {
    const r = await store.generate('example.org', { selector: 'r1', algorithm: 'rsa' });
    const line = dkimZoneLine(r);
    const parts = [...line.matchAll(/"([^"]*)"/g)].map((m) => m[1] ?? '');
    assert.ok(line.startsWith('r1._domainkey.example.org. 3600 IN TXT ( "'));
    assert.equal(parts.length, 2);
    assert.ok(parts.every((s) => s.length <= 255));
    assert.equal(parts.join(''), dkimTxtValue(r));
  });

  test('bad selectors and domains are refused before the disk is touched', async () => {
    for (const s of ['../x', 'a/b', '-a', 'A_B', '', 'x'.repeat(64)]) {
      assert.throws(
        () => normalizeSelector(s),
        (e) => isArclineError(e, 'INVALID'),
        s,
      );
      await assert.rejects(store.generate('example.org', { selector: s, algorithm: 'ed25519' }));
    }
    for (const d of ['../etc', 'a/b.org', '', 'exa mple.org']) {
      await assert.rejects(store.generate(d, { selector: 's', algorithm: 'ed25519' }), (e) =>
        isArclineError(e, 'INVALID'),
      );
    }
    assert.deepEqual(await readdir(dir), []);
    assert.equal(normalizeSelector('Sel-1.Sub'), 'sel-1.sub');
  });

  test('another store instance (the CLI) adds a key: seen without a restart; garbage is skipped; remove', async () => {
    await store.generate('example.org', { selector: 'a', algorithm: 'ed25519' });
    assert.equal((await store.keys('example.org')).length, 1);
    await new DkimKeyStore(dir).generate('example.org', { selector: 'b', algorithm: 'ed25519' });
    await writeFile(join(dir, 'dkim', 'example.org', 'c.rsa.pem'), 'not a key');
    assert.deepEqual(
      (await store.keys('example.org')).map((k) => k.selector),
      ['a', 'b'],
    );
    await store.remove('example.org', 'a');
    assert.deepEqual(
      (await store.keys('example.org')).map((k) => k.selector),
      ['b'],
    );
    await assert.rejects(store.remove('example.org', 'a'), (e) => isArclineError(e, 'NOT_FOUND'));
    assert.deepEqual(await store.keys('none.org'), []);
  });
});
