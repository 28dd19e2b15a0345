// DKIM signing keys per domain in the state directory, and their DNS records.
//   {state}/dkim/{domain}/{selector}.{rsa|ed25519}.pem   (PKCS#8 PEM; dirs 0700, files 0600)
// Invariants:
// - domain and selector reach the disk, so both are validated before any file is touched;
// - a key file is never half-written: temp file in the same directory, fsync, rename, fsync dir;
// - a selector is never overwritten (rotation = a new selector, RFC 6376 §3.1 / M3AAWG practice);
// - keys() is cheap on the hot path (every submitted message): an in-memory copy per domain,
//   re-read when the domain directory's mtime changes (the CLI adds keys while the server runs).
// Records: RSA "v=DKIM1; k=rsa; p=<SPKI DER, base64>" (RFC 6376 §3.6.1); Ed25519
// "v=DKIM1; k=ed25519; p=<raw 32-byte key, base64>" (RFC 8463 §4.2).

import { createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ArclineError } from '../core/errors.ts';

export type DkimAlgorithm = 'rsa' | 'ed25519';

export interface DkimKey {
  readonly domain: string;
  readonly selector: string;
  readonly algorithm: DkimAlgorithm;
  /** PKCS#8 PEM. */
  readonly privateKeyPem: string;
  readonly created: Date;
}

const FILE = /^([a-z0-9][a-z0-9.-]*)\.(rsa|ed25519)\.pem$/;

export class DkimKeyStore {
  readonly #root: string;
  readonly #cache = new Map<string, { mtimeMs: number; keys: readonly DkimKey[] }>();

  constructor(stateDir: string) {
    this.#root = join(stateDir, 'dkim');
  }

  async generate(domain: string, opts: { selector: string; algorithm: DkimAlgorithm }): Promise<DkimKey> {
    const d = checkDomain(domain);
    const selector = normalizeSelector(opts.selector);
    const dir = join(this.#root, d);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const existing = (await readdir(dir)).find((f) => FILE.exec(f)?.[1] === selector);
    if (existing) throw new ArclineError('EXISTS', `${d} already has a DKIM key with selector ${selector}`);
    const pem = await newKeyPem(opts.algorithm);
    const path = join(dir, `${selector}.${opts.algorithm}.pem`);
    const tmp = join(dir, `.${selector}.${process.pid}.tmp`);
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(pem);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
    this.#cache.delete(d);
    return { domain: d, selector, algorithm: opts.algorithm, privateKeyPem: pem, created: new Date() };
  }

  async keys(domain: string): Promise<readonly DkimKey[]> {
    const d = checkDomain(domain);
    const dir = join(this.#root, d);
    const st = await stat(dir).catch(() => null);
    if (!st) return [];
    const hit = this.#cache.get(d);
    if (hit && hit.mtimeMs === st.mtimeMs) return hit.keys;
    const keys: DkimKey[] = [];
    for (const f of (await readdir(dir)).sort()) {
      const m = FILE.exec(f);
      if (!m) continue;
      const path = join(dir, f);
      try {
        const pem = await readFile(path, 'utf8');
        createPrivateKey(pem); // a file that does not parse is skipped, not deleted
        keys.push({
          domain: d,
          selector: m[1] ?? '',
          algorithm: m[2] as DkimAlgorithm,
          privateKeyPem: pem,
          created: (await stat(path)).mtime,
        });
      } catch {
        // unreadable or not a key: ignored
      }
    }
    keys.sort((a, b) => a.selector.localeCompare(b.selector) || (a.algorithm === 'rsa' ? -1 : 1));
    this.#cache.set(d, { mtimeMs: st.mtimeMs, keys });
    return keys;
  }

  async remove(domain: string, selector: string): Promise<void> {
    const d = checkDomain(domain);
    const s = normalizeSelector(selector);
    const dir = join(this.#root, d);
    const files = await readdir(dir).catch(() => [] as string[]);
    const file = files.find((f) => FILE.exec(f)?.[1] === s);
    if (!file) throw new ArclineError('NOT_FOUND', `${d} has no DKIM key with selector ${s}`);
    await rm(join(dir, file));
    this.#cache.delete(d);
  }
}

function newKeyPem(algorithm: DkimAlgorithm): Promise<string> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, _pub: string, priv: string) => (err ? reject(err) : resolve(priv));
    const enc = {
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    } as const;
    if (algorithm === 'rsa') generateKeyPair('rsa', { modulusLength: 2048, publicExponent: 65537, ...enc }, done);
    else generateKeyPair('ed25519', enc, done);
  });
}

function publicKeyOf(key: DkimKey): KeyObject {
  return createPublicKey(createPrivateKey(key.privateKeyPem));
}

export function dkimTxtValue(key: DkimKey): string {
  const der = publicKeyOf(key).export({ type: 'spki', format: 'der' });
  // Ed25519 SPKI DER is a fixed 12-byte prefix + the 32-byte key (RFC 8410).
  const p = key.algorithm === 'ed25519' ? der.subarray(der.length - 32) : der;
  return `v=DKIM1; k=${key.algorithm}; p=${p.toString('base64')}`;
}

export function dkimRecordName(key: Pick<DkimKey, 'domain' | 'selector'>): string {
  return `${key.selector}._domainkey.${key.domain}`;
}

/** A zone-file line; the value split into character-strings of at most 255 octets (RFC 1035 §3.3). */
export function dkimZoneLine(key: DkimKey): string {
  const value = dkimTxtValue(key);
  const parts: string[] = [];
  for (let i = 0; i < value.length; i += 255) parts.push(`"${value.slice(i, i + 255)}"`);
  return `${dkimRecordName(key)}. 3600 IN TXT ( ${parts.join(' ')} )`;
}

/** RFC 6376 §3.1: a selector is dot-separated labels; ours are [a-z0-9-], 1-63 each. */
export function normalizeSelector(s: string): string {
  const v = s.trim().toLowerCase();
  const label = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
  if (v === '' || v.length > 253 || !v.split('.').every((l) => label.test(l))) {
    throw new ArclineError('INVALID', `invalid DKIM selector: ${JSON.stringify(s)}`);
  }
  return v;
}

function checkDomain(domain: string): string {
  const d = domain.trim().toLowerCase();
  const label = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
  if (d === '' || d.length > 253 || !d.split('.').every((l) => label.test(l))) {
    throw new ArclineError('INVALID', `invalid domain for a DKIM key: ${JSON.stringify(domain)}`);
  }
  return d;
}
