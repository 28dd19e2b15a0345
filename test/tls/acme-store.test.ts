// The AcmeStore contract on files and on PostgreSQL, and what a cluster adds: a challenge put by
// the renewing node is answered by another node at once (its read starts after the request came,
// no waiting for a notification), a client flooding the challenge path costs one read at a time,
// a renewed certificate reaches the other node's TlsManager through NOTIFY (and through the
// periodic check when notifications are not heard), the keys are readable by arcline's role only.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { silentLogger } from '../../src/core/log.ts';
import { Notifier } from '../../src/db/notify.ts';
import { ChallengeResponder, coalesced, followAcmeCertificate } from '../../src/tls/acme-serve.ts';
import { type AcmeStore, FileAcmeStore } from '../../src/tls/acme-store.ts';
import { PostgresAcmeStore } from '../../src/tls/acme-store-pg.ts';
import { combinePair, TlsManager, type TlsPair } from '../../src/tls/certs.ts';
import { asOtherRole, freshDatabaseForFile } from '../harness/postgres.ts';
import { waitUntil } from '../harness/submit.ts';
import { runAcmeStoreContract, twoPairs } from './acme-store-contract.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function stateDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'arcline-acmestore-'));
  dirs.push(d);
  return d;
}

runAcmeStoreContract('files', async () => {
  const store = new FileAcmeStore(await stateDir());
  return { store, other: async () => store };
});

runAcmeStoreContract('postgres', async () => {
  const t = await freshDatabaseForFile();
  return {
    store: await PostgresAcmeStore.open(await t.open()),
    other: async () => PostgresAcmeStore.open(await t.open()),
  };
});

test('files: one store, today’s layout: {state}/acme/certificate.pem read by TlsManager', async () => {
  const dir = await stateDir();
  const store = new FileAcmeStore(dir);
  const [a] = await twoPairs();
  await store.saveCertificate(a);
  const tls = await TlsManager.open(
    { files: null, acmeFile: join(dir, 'acme', 'certificate.pem'), stateDir: dir, hostname: 'a.test' },
    silentLogger(),
  );
  assert.equal(tls.current.cert.trim(), a.cert.trim());
});

test('coalesced: one run at a time, callers during a run share the next one', async () => {
  let runs = 0;
  let release: () => void = () => {};
  const fn = coalesced(async () => {
    runs++;
    await new Promise<void>((r) => {
      release = r;
    });
  });
  const first = fn();
  const later = Array.from({ length: 50 }, () => fn());
  assert.equal(runs, 1);
  release();
  await first;
  await waitUntil('the queued run', async () => runs === 2);
  release();
  await Promise.all(later);
  assert.equal(runs, 2, '51 callers, 2 reads');
});

test('postgres: node B answers the challenges node A put, at once; a flood costs one read at a time', async () => {
  const t = await freshDatabaseForFile();
  const a = await PostgresAcmeStore.open(await t.open());
  const b = await PostgresAcmeStore.open(await t.open());
  let reads = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const counted: Pick<AcmeStore, 'challenges'> = {
    async challenges(now) {
      reads++;
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      try {
        return await b.challenges(now);
      } finally {
        inFlight--;
      }
    },
  };
  const responder = new ChallengeResponder(counted);
  assert.equal(await responder.httpChallenge('tok-a'), null);
  const [pair] = await twoPairs();
  await a.putChallenge({ kind: 'http-01', key: 'tok-a', value: 'tok-a.thumb', expires: Date.now() + 60_000 });
  await a.putChallenge({
    kind: 'tls-alpn-01',
    key: 'mx.example.test',
    value: combinePair(pair),
    expires: Date.now() + 60_000,
  });
  // No wait: the answer was committed before the request, so B's read finds it.
  assert.equal(await responder.httpChallenge('tok-a'), 'tok-a.thumb');
  assert.ok(await responder.alpnChallenge('MX.example.test'), 'tls-alpn-01 context for the name, any case');
  assert.equal(await responder.alpnChallenge('other.example.test'), null);
  reads = 0;
  const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => responder.httpChallenge(`x${i}`)));
  assert.ok(answers.every((x) => x === null));
  assert.equal(maxInFlight, 1, 'one read at a time');
  assert.ok(reads <= 2, `200 requests at once: ${reads} reads`);
  await a.removeChallenge('http-01', 'tok-a');
  assert.equal(await responder.httpChallenge('tok-a'), null, 'removed: not answered');
});

test('postgres: a certificate saved by node A is served by node B after the notification', async () => {
  const t = await freshDatabaseForFile();
  const a = await PostgresAcmeStore.open(await t.open());
  const b = await PostgresAcmeStore.open(await t.open());
  const dir = await stateDir();
  const log = silentLogger();
  const tlsB = await TlsManager.open({ files: null, acmeStore: b, stateDir: dir, hostname: 'b.test' }, log);
  const selfSigned = tlsB.current.cert;
  const notifier = await Notifier.start({
    session: { url: t.url, connectTimeoutMs: 5000, applicationName: 'arcline-test' },
  });
  // A long fallback period: only the notification can bring the certificate within the test.
  const follower = await followAcmeCertificate({ tls: tlsB, store: b, notifier, log, intervalMs: 3_600_000 });
  try {
    const [p1, p2] = await twoPairs();
    const times: number[] = [];
    for (const p of [p1, p2]) {
      const served = new Promise<void>((resolve) => {
        const off = tlsB.onChange((now: TlsPair) => {
          if (now.cert.trim() !== p.cert.trim()) return;
          off();
          resolve();
        });
      });
      const start = performance.now();
      await a.saveCertificate(p);
      await served;
      times.push(performance.now() - start);
    }
    assert.notEqual(tlsB.current.cert, selfSigned);
    console.log(`# certificate saved on A -> served by B: ${times.map((x) => x.toFixed(1)).join(', ')} ms`);
  } finally {
    follower.close();
    await notifier.close();
  }
});

test('postgres: without notifications the periodic check brings the certificate', async () => {
  const t = await freshDatabaseForFile();
  const a = await PostgresAcmeStore.open(await t.open());
  const b = await PostgresAcmeStore.open(await t.open());
  const log = silentLogger();
  const tlsB = await TlsManager.open(
    { files: null, acmeStore: b, stateDir: await stateDir(), hostname: 'b.test' },
    log,
  );
  const follower = await followAcmeCertificate({ tls: tlsB, store: b, notifier: null, log, intervalMs: 50 });
  try {
    const [p1] = await twoPairs();
    await a.saveCertificate(p1);
    await waitUntil('the periodic check', async () => tlsB.current.cert.trim() === p1.cert.trim());
  } finally {
    follower.close();
  }
});

test('postgres: the account and certificate keys are not readable by other database roles', async () => {
  const t = await freshDatabaseForFile();
  const db = await t.open();
  await PostgresAcmeStore.open(db);
  await asOtherRole(t, db, 'acme_other', async (c) => {
    for (const table of ['acme_account', 'acme_certificate', 'acme_challenge']) {
      await assert.rejects(c.query(`SELECT * FROM ${table}`), /permission denied/, table);
    }
  });
});
