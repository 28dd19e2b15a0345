// The AcmeStore contract (tls/acme-store.ts): files under {state}/acme/ (one node) and
// PostgreSQL (tls/acme-store-pg.ts, a cluster) keep the account, the certificate and the pending
// challenge answers the same way.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AcmeStore } from '../../src/tls/acme-store.ts';
import { generateSelfSigned, type TlsPair } from '../../src/tls/certs.ts';

const DIR = 'https://ca.test/dir';

let pairs: Promise<[TlsPair, TlsPair]> | null = null;
/** Two certificates with their keys, made once per file (RSA key generation is slow). */
export function twoPairs(): Promise<[TlsPair, TlsPair]> {
  pairs ??= Promise.all([generateSelfSigned('a.test'), generateSelfSigned('b.test')]);
  return pairs;
}

/** `open()`: a store on empty state, and `other()`, a second handle on the same state (for
 *  files the same object: the challenges of one node live in its memory). */
export function runAcmeStoreContract(
  name: string,
  open: () => Promise<{ store: AcmeStore; other: () => Promise<AcmeStore> }>,
) {
  describe(`${name}: AcmeStore contract`, () => {
    test('the account of each directory: none, saved, its URL updated, dropped', async () => {
      const { store, other } = await open();
      assert.equal(await store.account(DIR), null);
      await store.saveAccount({ directoryUrl: DIR, url: '', key: 'KEY-1' });
      assert.deepEqual(await (await other()).account(DIR), { directoryUrl: DIR, url: '', key: 'KEY-1' });
      await store.saveAccount({ directoryUrl: DIR, url: 'https://ca.test/acct/1', key: 'KEY-1' });
      assert.equal((await store.account(DIR))?.url, 'https://ca.test/acct/1');
      assert.equal(await store.account('https://other.test/dir'), null, 'another CA: another account');
      await store.dropAccount('https://other.test/dir');
      assert.equal((await store.account(DIR))?.key, 'KEY-1', 'dropping another directory keeps this one');
      await store.dropAccount(DIR);
      assert.equal(await store.account(DIR), null);
    });

    test('the certificate: none, saved, replaced; a key that is not its own is refused', async () => {
      const { store, other } = await open();
      const [a, b] = await twoPairs();
      assert.equal(await store.certificate(), null);
      await store.saveCertificate(a);
      assert.equal((await (await other()).certificate())?.cert.trim(), a.cert.trim());
      await store.saveCertificate(b);
      const got = await (await other()).certificate();
      assert.equal(got?.cert.trim(), b.cert.trim());
      assert.equal(got?.key.trim(), b.key.trim());
      await assert.rejects(store.saveCertificate({ key: a.key, cert: b.cert }), /does not match/);
      assert.equal((await store.certificate())?.cert.trim(), b.cert.trim(), 'the old one stays');
    });

    test('pending challenges: put, replaced, listed until they expire, removed', async () => {
      const { store, other } = await open();
      const now = Date.now();
      await store.putChallenge({ kind: 'http-01', key: 'tok-1', value: 'tok-1.thumb', expires: now + 60_000 });
      await store.putChallenge({ kind: 'tls-alpn-01', key: 'mx.example.test', value: 'PEM', expires: now + 60_000 });
      await store.putChallenge({ kind: 'http-01', key: 'old', value: 'old.thumb', expires: now - 1 });
      const seen = await (await other()).challenges(now);
      assert.deepEqual(
        seen.map((c) => [c.kind, c.key, c.value]).sort(),
        [
          ['http-01', 'tok-1', 'tok-1.thumb'],
          ['tls-alpn-01', 'mx.example.test', 'PEM'],
        ],
        'the expired one is not served',
      );
      await store.putChallenge({ kind: 'http-01', key: 'tok-1', value: 'tok-1.other', expires: now + 60_000 });
      const again = await store.challenges(now);
      assert.equal(again.find((c) => c.key === 'tok-1')?.value, 'tok-1.other');
      assert.deepEqual(
        (await store.challenges(now + 120_000)).map((c) => c.key),
        [],
        'past their expiry, none',
      );
      await store.removeChallenge('http-01', 'tok-1');
      await store.removeChallenge('tls-alpn-01', 'mx.example.test');
      assert.deepEqual(await (await other()).challenges(now), []);
    });
  });
}
