// ArcSealer (hygiene/arc-seal.ts) on both DKIM key stores, files ({state}/dkim/) and PostgreSQL:
// which key seals (the forwarding domain's, RSA first; else the host name's; else its parent
// domain's), nothing without a key or for a chain that already failed; every set it makes
// validates with Debian's python3-dkim.

import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { silentLogger } from '../../src/core/log.ts';
import type { InboundArc } from '../../src/hygiene/arc.ts';
import { ArcSealer } from '../../src/hygiene/arc-seal.ts';
import { type DkimKey, DkimKeyStore, type DkimKeys } from '../../src/hygiene/dkim-keys.ts';
import { PostgresDkimKeys } from '../../src/hygiene/dkim-keys-pg.ts';
import { freshDatabaseForFile } from '../harness/postgres.ts';
import { arcVerify } from '../harness/pydkim.ts';

const MESSAGE = Buffer.from(
  'Authentication-Results: mx.host.test; spf=pass smtp.mailfrom=a@sender.test; arc=none\r\n' +
    'From: A <a@sender.test>\r\nTo: fwd@fwd.test\r\nSubject: seal me\r\n' +
    'Date: Mon, 07 Dec 2026 03:00:00 +0000\r\nMessage-ID: <seal@sender.test>\r\n\r\nHello.\r\n',
);
const NONE: InboundArc = { result: 'none', cv: 'none', authResults: 'mx.host.test; spf=pass; arc=none' };

/** "{selector}._domainkey.{domain}" -> TXT of a key, as python3-dkim looks it up. */
function record(k: DkimKey): Record<string, string> {
  const pub = createPublicKey(k.privateKeyPem).export({ type: 'spki', format: 'der' });
  const p = k.algorithm === 'rsa' ? pub.toString('base64') : pub.subarray(-32).toString('base64');
  return { [`${k.selector}._domainkey.${k.domain}`]: `v=DKIM1; k=${k.algorithm}; p=${p}` };
}

/** The sealed message and the tags of its ARC-Seal. */
async function sealed(sealer: ArcSealer, domain: string, arc: InboundArc = NONE) {
  const set = await sealer.seal(domain, arc, Readable.from([MESSAGE]));
  const out = Buffer.concat([Buffer.from(set), MESSAGE]);
  const seal = /^ARC-Seal: ([\s\S]*?)\r\n(?![ \t])/m.exec(set)?.[1]?.replace(/\r\n[ \t]+/g, ' ') ?? '';
  const tags = new Map(seal.split(';').map((t) => t.trim().split('=') as [string, string]));
  return { set, out, tags };
}

function sealerSuite(name: string, open: () => Promise<DkimKeys>) {
  describe(`ArcSealer on ${name}`, () => {
    test("the forwarding domain's own RSA key (never an Ed25519 one); valid for python3-dkim", async () => {
      const keys = await open();
      await keys.generate('fwd.test', { selector: 'a-ed', algorithm: 'ed25519' });
      const rsa = await keys.generate('fwd.test', { selector: 'b-rsa', algorithm: 'rsa' });
      const { out, tags } = await sealed(new ArcSealer(keys, 'mx.host.test', silentLogger()), 'fwd.test');
      assert.deepEqual(
        [tags.get('i'), tags.get('cv'), tags.get('d'), tags.get('s'), tags.get('a')],
        ['1', 'none', 'fwd.test', 'b-rsa', 'rsa-sha256'],
      );
      const v = arcVerify(out, record(rsa));
      assert.equal(v.cv, 'pass', v.comment);
    });

    test("no RSA key for the domain: the host name's, else its parent domain's; none at all: unsealed", async () => {
      const keys = await open();
      const sealer = new ArcSealer(keys, 'mx.host.test', silentLogger());
      await keys.generate('edonly.test', { selector: 'e', algorithm: 'ed25519' });
      await keys.generate('host.test', { selector: 'e', algorithm: 'ed25519' });
      assert.equal((await sealed(sealer, 'edonly.test')).set, '', 'Ed25519 keys do not seal');
      const parent = await keys.generate('host.test', { selector: 'p', algorithm: 'rsa' });
      const viaParent = await sealed(sealer, 'edonly.test');
      assert.deepEqual([viaParent.tags.get('d'), viaParent.tags.get('s')], ['host.test', 'p']);
      const vp = arcVerify(viaParent.out, record(parent));
      assert.equal(vp.cv, 'pass', vp.comment);
      const host = await keys.generate('mx.host.test', { selector: 'h', algorithm: 'rsa' });
      const viaHost = await sealed(sealer, 'nokey.test');
      assert.deepEqual([viaHost.tags.get('d'), viaHost.tags.get('s')], ['mx.host.test', 'h']);
      const vh = arcVerify(viaHost.out, record(host));
      assert.equal(vh.cv, 'pass', vh.comment);
    });

    test('a chain that already failed (cv null) is never sealed', async () => {
      const keys = await open();
      await keys.generate('fwd.test', { selector: 'r', algorithm: 'rsa' });
      const sealer = new ArcSealer(keys, 'mx.host.test', silentLogger());
      assert.equal((await sealed(sealer, 'fwd.test', { ...NONE, result: 'fail', cv: null })).set, '');
    });
  });
}

sealerSuite('files', async () => new DkimKeyStore(await mkdtemp(join(tmpdir(), 'arcline-arcseal-'))));
sealerSuite('postgres', async () => PostgresDkimKeys.open(await (await freshDatabaseForFile()).open(), { cacheMs: 0 }));
