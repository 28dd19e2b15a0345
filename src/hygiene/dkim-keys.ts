// DKIM signing keys per domain in the state directory, and the DNS records that publish them.
//   {state}/dkim/{domain}/{selector}.{rsa|ed25519}.pem   (PKCS#8 PEM; dirs 0700, files 0600)
// Invariants:
// - domain and selector become path components, so both are validated (INVALID) before any file
//   is touched; nothing is transformed but the selector's case (the caller normalises domains);
// - a key file is never visible half-written: it is written under a temp name in the same
//   directory, fsynced, then hard-linked to its final name (link fails with EEXIST: O_EXCL
//   semantics, unlike rename, which would replace; rename only where there are no hard links),
//   and the directory is fsynced;
// - a selector is never overwritten and names at most one key (RFC 6376 §3.1: a selector names
//   one key record; rotation = a new selector). Two writers racing for one selector: whoever
//   sees the other's file after linking backs out, so a reported success is never undone;
// - keys() is on the hot path (every submitted message): one in-memory copy per domain, re-read
//   when the domain directory's mtime changes (the CLI adds keys while the server runs). An mtime
//   less than RACY_MS old is not trusted (coarse timestamps: a change in the same tick as our
//   read would leave the same mtime), as git does for its index;
// - reading skips, never deletes, files whose name does not match, whose PEM does not parse, or
//   whose key type does not match the name (an Ed25519 key named .rsa.pem would sign wrongly).
// Records: RSA "v=DKIM1; k=rsa; p=<SPKI DER, base64>" (RFC 6376 §3.6.1); Ed25519
// "v=DKIM1; k=ed25519; p=<raw 32-byte key, base64>" (RFC 8463 §4.2).

import { createPrivateKey, createPublicKey, generateKeyPair, type KeyObject, randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { ArclineError, errorMessage, isArclineError } from '../core/errors.ts';
import { checkGrace, readGrace, retiredKey, withoutInUse } from './dkim-grace.ts';

export type DkimAlgorithm = 'rsa' | 'ed25519';

export interface DkimKey {
  /** Lower-case punycode, as given (the caller normalises). */
  readonly domain: string;
  readonly selector: string;
  readonly algorithm: DkimAlgorithm;
  /** PKCS#8 PEM. */
  readonly privateKeyPem: string;
  /** The key file's mtime. */
  readonly created: Date;
}

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const FILE = /^(.+)\.(rsa|ed25519)\.pem$/;
/** The subdirectory of a domain's keys made for a rotation, not yet signing; next to each,
 *  `{selector}.grace` holds the grace (ms) of the key it will retire. */
const PENDING = 'pending';
/** Keys retired by a rotation, whose DNS record must stay published until their grace ends:
 *  `{domain}/retired/{end of grace, ms since the epoch}/{selector}.{alg}.pem`. */
const RETIRED = 'retired';
/** After the grace: the private key is deleted, an empty `{domain}/gone/{selector}.{alg}` says
 *  its DNS record may go (docs/hygiene.md "Rotating a key"). */
const GONE = 'gone';
/** A gone/ marker's name. */
const MARKER = /^(.+)\.(rsa|ed25519)$/;
const ALGORITHMS: Readonly<Record<DkimAlgorithm, { order: number; keyType: string }>> = {
  rsa: { order: 0, keyType: 'rsa' },
  ed25519: { order: 1, keyType: 'ed25519' },
};
/** NAME_MAX (255) minus the longest suffix, '.ed25519.pem': the file name must fit. */
const MAX_SELECTOR = 243;
/** Longest DNS name in presentation form without the root dot (RFC 1035 §2.3.4). */
const MAX_NAME = 253;
/** RFC 8301 §3.2: RSA signing keys of at least 1024 bits; smaller ones are not loaded. */
const MIN_RSA_BITS = 1024;
/** A key file is a few KiB; anything much larger is not one. */
const MAX_FILE = 64 * 1024;
/** Directory mtimes younger than this may still change without changing the mtime. */
const RACY_MS = 2000;

/** Where a deployment's DKIM keys live: files under {state}/dkim/ (DkimKeyStore, one machine)
 *  or PostgreSQL (dkim-keys-pg.ts, shared by every node so all sign with the same keys). */
/** A key a rotation took out of use: its DNS record stays until `removableAt`; then the key
 *  is deleted (`gone`) and the record may be removed. */
export interface RetiredDkimKey {
  readonly domain: string;
  readonly selector: string;
  readonly algorithm: DkimAlgorithm;
  readonly removableAt: Date;
  readonly gone: boolean;
}

export interface DkimKeys {
  /** Creates a key (RSA-2048 or Ed25519). EXISTS if that selector already has a key for the domain.
   *  A pending key keeps `graceMs` (default DEFAULT_GRACE_MS) for the key it retires at activation. */
  generate(domain: string, opts: NewKeyOptions): Promise<DkimKey>;
  /** All keys of a domain that sign, sorted by selector then algorithm (rsa first); [] when none. */
  keys(domain: string): Promise<readonly DkimKey[]>;
  /** Removes the key of a selector (active or pending); NOT_FOUND if there is none. */
  remove(domain: string, selector: string): Promise<void>;
  /** Keys made for a rotation (`generate` with `pending`): they do not sign until `activate`. */
  pendingKeys(domain: string): Promise<readonly DkimKey[]>;
  /** Ends a rotation: the pending key of `selector` signs, the keys of its algorithm that signed
   *  until now are retired (kept). Returns where they are kept, or null when none was retired. */
  activate(domain: string, selector: string, now?: Date): Promise<string | null>;
  /** Keys retired by rotations (`activate`), waiting for the end of their grace or gone, by
   *  selector; selectors that name a key in use again are left out. */
  retiredKeys(domain: string): Promise<readonly RetiredDkimKey[]>;
  /** Deletes the retired keys whose grace ended by `now` (they become `gone`); returns them. */
  expireRetired(domain: string, now?: Date): Promise<readonly RetiredDkimKey[]>;
  /** Takes every key of a deleted domain out of use (kept aside, never read again by `keys()`);
   *  returns where, or null when it had none. */
  retire(domain: string, now?: Date): Promise<string | null>;
}

export interface NewKeyOptions {
  readonly selector: string;
  readonly algorithm: DkimAlgorithm;
  readonly pending?: boolean;
  readonly graceMs?: number;
}

/** Checks what `generate` is given (INVALID); the selector comes back normalised. */
export function checkNewKey(
  domain: string,
  opts: { selector: string; algorithm: DkimAlgorithm },
): { domain: string; selector: string; algorithm: DkimAlgorithm } {
  const d = checkDomain(domain);
  const selector = normalizeSelector(opts.selector);
  const algorithm = checkAlgorithm(opts.algorithm);
  if (dkimRecordName({ domain: d, selector }).length > MAX_NAME) {
    throw new ArclineError('INVALID', `DKIM record name ${selector}._domainkey.${d} is longer than ${MAX_NAME}`);
  }
  return { domain: d, selector, algorithm };
}

interface CacheEntry {
  readonly mtimeNs: bigint;
  readonly trusted: boolean;
  readonly keys: readonly DkimKey[];
}

export class DkimKeyStore implements DkimKeys {
  readonly #stateDir: string;
  readonly #root: string;
  readonly #cache = new Map<string, CacheEntry>();

  constructor(stateDir: string) {
    this.#stateDir = stateDir;
    this.#root = `${stateDir}/dkim`;
  }

  /** Creates a key (RSA-2048 or Ed25519). EXISTS if that selector already has a key for the domain. */
  async generate(domain: string, opts: NewKeyOptions): Promise<DkimKey> {
    const { domain: d, selector, algorithm } = checkNewKey(domain, opts);
    const graceMs = checkGrace(opts.graceMs);
    const active = `${this.#root}/${d}`;
    const dir = opts.pending ? `${active}/${PENDING}` : active;
    const exists = (): ArclineError =>
      new ArclineError('EXISTS', `${d} already has a DKIM key with selector ${selector}`);
    try {
      await this.#makeDir(dir);
      if (opts.pending) await fsyncDir(active); // the pending/ entry lasts
      const taken = async () =>
        (await filesOf(active, selector)).length + (await filesOf(`${active}/${PENDING}`, selector)).length > 0;
      if (await taken()) throw exists();
      const pem = await newKeyPem(algorithm);
      const name = `${selector}.${algorithm}.pem`;
      const path = `${dir}/${name}`;
      const tmp = `${dir}/.tmp-${randomBytes(8).toString('hex')}`;
      try {
        await writeSynced(tmp, pem);
        await publish(tmp, path).catch((e: NodeJS.ErrnoException) =>
          Promise.reject(e.code === 'EEXIST' ? exists() : e),
        );
      } finally {
        await rm(tmp, { force: true });
      }
      // Another writer may have published the same selector under the other algorithm meanwhile.
      if ((await filesOf(dir, selector)).some((f) => f !== name)) {
        await rm(path, { force: true });
        await fsyncDir(dir);
        throw exists();
      }
      if (opts.pending) await writeSmall(dir, `${selector}.grace`, String(graceMs));
      await fsyncDir(dir);
      this.#cache.delete(d);
      return { domain: d, selector, algorithm, privateKeyPem: pem, created: (await stat(path)).mtime };
    } catch (e) {
      throw asOperatorError(e, `cannot create the DKIM key ${selector} of ${d}`);
    }
  }

  /** All keys of a domain, sorted by selector then algorithm (rsa first); [] when none. */
  async keys(domain: string): Promise<readonly DkimKey[]> {
    const d = checkDomain(domain);
    const dir = `${this.#root}/${d}`;
    try {
      const now = Date.now();
      const st = await stat(dir, { bigint: true }).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return null;
        throw e;
      });
      if (!st) {
        this.#cache.delete(d);
        return [];
      }
      const hit = this.#cache.get(d);
      if (hit?.trusted && hit.mtimeNs === st.mtimeNs) return hit.keys;
      const keys = await readKeys(d, dir);
      this.#cache.set(d, { mtimeNs: st.mtimeNs, trusted: now - Number(st.mtimeMs) > RACY_MS, keys });
      return keys;
    } catch (e) {
      throw asOperatorError(e, `cannot read the DKIM keys of ${d}`);
    }
  }

  /** Removes the key of a selector; NOT_FOUND if there is none. */
  async remove(domain: string, selector: string): Promise<void> {
    const d = checkDomain(domain);
    const s = normalizeSelector(selector);
    const active = `${this.#root}/${d}`;
    try {
      let found = 0;
      for (const dir of [active, `${active}/${PENDING}`]) {
        const files = await filesOf(dir, s);
        for (const f of files) await rm(`${dir}/${f}`, { force: true });
        if (files.length > 0) await rm(`${dir}/${s}.grace`, { force: true });
        if (files.length > 0) await fsyncDir(dir);
        found += files.length;
      }
      if (found === 0) throw new ArclineError('NOT_FOUND', `${d} has no DKIM key with selector ${s}`);
      this.#cache.delete(d);
    } catch (e) {
      throw asOperatorError(e, `cannot remove the DKIM key ${s} of ${d}`);
    }
  }

  /** Keys made for a rotation (`generate` with `pending`): kept in `{domain}/pending/`, they
   *  do not sign until `activate` (their DNS record must be published first). */
  async pendingKeys(domain: string): Promise<readonly DkimKey[]> {
    const d = checkDomain(domain);
    try {
      return await readKeys(d, `${this.#root}/${d}/${PENDING}`);
    } catch (e) {
      throw asOperatorError(e, `cannot read the pending DKIM keys of ${d}`);
    }
  }

  /**
   * Ends a rotation: the pending key of `selector` signs from now on, and the keys of the same
   * algorithm that signed until now go out of use, kept in `{domain}/retired/{end of grace}/`
   * (their DNS records stay published until then, for mail still on its way: RFC 6376 §3.1,
   * a verifier looks the selector up when the mail arrives). Returns that place, or null when
   * no key was retired. NOT_FOUND without such a pending key.
   */
  async activate(domain: string, selector: string, now = new Date()): Promise<string | null> {
    const d = checkDomain(domain);
    const s = normalizeSelector(selector);
    const active = `${this.#root}/${d}`;
    const pending = `${active}/${PENDING}`;
    try {
      const files = await filesOf(pending, s);
      const algorithm = FILE.exec(files[0] ?? '')?.[2];
      if (files.length === 0 || algorithm === undefined) {
        throw new ArclineError('NOT_FOUND', `${d} has no pending DKIM key with selector ${s}`);
      }
      const graceMs = await readGrace(`${pending}/${s}.grace`);
      const old = (await listDir(active)).filter((f) => FILE.exec(f)?.[2] === algorithm);
      let retired: string | null = null;
      if (old.length > 0) {
        retired = `${active}/${RETIRED}/${now.getTime() + graceMs}`;
        await this.#makeDir(retired);
        await fsyncDir(`${active}/${RETIRED}`);
        await fsyncDir(active);
        for (const f of old) await rename(`${active}/${f}`, `${retired}/${f}`);
        await fsyncDir(retired);
      }
      for (const f of files) await rename(`${pending}/${f}`, `${active}/${f}`);
      await rm(`${pending}/${s}.grace`, { force: true });
      await fsyncDir(pending);
      await fsyncDir(active);
      this.#cache.delete(d);
      return retired;
    } catch (e) {
      throw asOperatorError(e, `cannot activate the DKIM key ${s} of ${d}`);
    }
  }

  async retiredKeys(domain: string): Promise<readonly RetiredDkimKey[]> {
    const d = checkDomain(domain);
    const active = `${this.#root}/${d}`;
    try {
      const out: RetiredDkimKey[] = [];
      for (const { at, dir } of await this.#retiredDirs(d)) {
        for (const f of await listDir(dir)) {
          const m = FILE.exec(f);
          if (m) out.push(retiredKey(d, m[1] as string, m[2] as DkimAlgorithm, at, false));
        }
      }
      for (const f of await listDir(`${active}/${GONE}`)) {
        const m = MARKER.exec(f);
        if (m) out.push(retiredKey(d, m[1] as string, m[2] as DkimAlgorithm, new Date(0), true));
      }
      return withoutInUse(out, [...(await this.keys(d)), ...(await this.pendingKeys(d))]);
    } catch (e) {
      throw asOperatorError(e, `cannot read the retired DKIM keys of ${d}`);
    }
  }

  async expireRetired(domain: string, now = new Date()): Promise<readonly RetiredDkimKey[]> {
    const d = checkDomain(domain);
    const gone = `${this.#root}/${d}/${GONE}`;
    try {
      const out: RetiredDkimKey[] = [];
      for (const { at, dir } of await this.#retiredDirs(d)) {
        if (at.getTime() > now.getTime()) continue;
        await this.#makeDir(gone);
        for (const f of await listDir(dir)) {
          const m = FILE.exec(f);
          if (!m) continue;
          // The marker first: a crash in between leaves the key retired, never silently lost.
          await writeSmall(gone, `${m[1]}.${m[2]}`, '');
          await rm(`${dir}/${f}`, { force: true });
          out.push(retiredKey(d, m[1] as string, m[2] as DkimAlgorithm, at, true));
        }
        await rm(dir, { recursive: true, force: true });
        await fsyncDir(`${this.#root}/${d}/${RETIRED}`);
      }
      return out;
    } catch (e) {
      throw asOperatorError(e, `cannot expire the retired DKIM keys of ${d}`);
    }
  }

  /** The `{domain}/retired/{ms}` directories and the end of grace each name. */
  async #retiredDirs(d: string): Promise<{ at: Date; dir: string }[]> {
    const base = `${this.#root}/${d}/${RETIRED}`;
    return (await listDir(base))
      .filter((n) => /^\d{1,15}$/.test(n))
      .map((n) => ({ at: new Date(Number(n)), dir: `${base}/${n}` }));
  }

  /**
   * Takes every key of a deleted domain out of use: the domain's key directory is moved to
   * `dkim/.retired/{domain}.{time}` (kept, so a domain deleted by mistake can have its keys and
   * DNS records back by hand; never read by `keys()`), so a domain added again later gets new
   * keys instead of silently reusing old ones. Returns the new place, or null if it had no keys.
   */
  async retire(domain: string, now = new Date()): Promise<string | null> {
    const d = checkDomain(domain);
    const dir = `${this.#root}/${d}`;
    try {
      if ((await readdir(dir).catch(() => [])).length === 0) {
        await rm(dir, { recursive: true, force: true });
        this.#cache.delete(d);
        return null;
      }
      const retired = `${this.#root}/.retired`;
      await this.#makeDir(retired);
      const to = `${retired}/${d}.${now.toISOString().replace(/[:.]/g, '-')}`;
      await rename(dir, to);
      await fsyncDir(retired);
      await fsyncDir(this.#root);
      this.#cache.delete(d);
      return to;
    } catch (e) {
      throw asOperatorError(e, `cannot retire the DKIM keys of ${d}`);
    }
  }

  /** mkdir -p with mode 0700; fsyncs the parents of what it created so the new entries last. */
  async #makeDir(dir: string): Promise<void> {
    const created = await mkdir(dir, { recursive: true, mode: 0o700 });
    if (created === undefined) return;
    await fsyncDir(this.#stateDir);
    await fsyncDir(this.#root);
  }
}

/** A small file written whole (temp name, fsync, rename) so it is never seen half-written. */
async function writeSmall(dir: string, name: string, text: string): Promise<void> {
  const tmp = `${dir}/.tmp-${randomBytes(8).toString('hex')}`;
  try {
    await writeSynced(tmp, text);
    await rename(tmp, `${dir}/${name}`);
  } finally {
    await rm(tmp, { force: true });
  }
  await fsyncDir(dir);
}

/** A new file (never an existing one: 'wx'), 0600, on disk before this returns. */
async function writeSynced(path: string, text: string): Promise<void> {
  const fh = await open(path, 'wx', 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The TXT record value for the key's public half (RFC 6376 §3.6.1, RFC 8463 §4.2). */
export function dkimTxtValue(key: DkimKey): string {
  const pub = publicKeyOf(key);
  let p: Buffer;
  if (key.algorithm === 'ed25519') {
    // RFC 8463 §4.2: the bare 32-byte key, not SPKI. The JWK "x" is exactly that (RFC 8037 §2).
    const x = pub.export({ format: 'jwk' }).x;
    if (typeof x !== 'string') throw new ArclineError('INVALID', 'the Ed25519 key has no public part');
    p = Buffer.from(x, 'base64url');
  } else {
    p = pub.export({ type: 'spki', format: 'der' });
  }
  return `v=DKIM1; k=${key.algorithm}; p=${p.toString('base64')}`;
}

/** The record name: "{selector}._domainkey.{domain}" (RFC 6376 §3.6.2.1). */
export function dkimRecordName(key: Pick<DkimKey, 'domain' | 'selector'>): string {
  return `${key.selector}._domainkey.${key.domain}`;
}

/**
 * A zone-file line, the value split into character-strings of at most 255 octets (RFC 1035
 * §3.3; a 2048-bit RSA key needs two). The value is base64 and fixed ASCII: no quoting needed.
 */
export function dkimZoneLine(key: DkimKey): string {
  const value = dkimTxtValue(key);
  const parts: string[] = [];
  for (let i = 0; i < value.length; i += 255) parts.push(`"${value.slice(i, i + 255)}"`);
  return `${dkimRecordName(key)}. 3600 IN TXT ( ${parts.join(' ')} )`;
}

/**
 * RFC 6376 §3.1: a selector is one or more dot-separated labels (sub-selectors); ours are
 * [a-z0-9-], 1-63 each, not starting or ending with '-'. Returns it lower-cased; INVALID otherwise.
 */
export function normalizeSelector(s: string): string {
  // ASCII first: toLowerCase() maps some non-ASCII letters to ASCII ones (U+212A KELVIN SIGN -> 'k').
  const v = /^[A-Za-z0-9.-]+$/.test(s) ? s.toLowerCase() : '';
  if (!isSelector(v)) throw new ArclineError('INVALID', `invalid DKIM selector: ${JSON.stringify(s)}`);
  return v;
}

function isSelector(s: string): boolean {
  return s.length > 0 && s.length <= MAX_SELECTOR && s.split('.').every((l) => LABEL.test(l));
}

export function checkDomain(domain: string): string {
  if (typeof domain !== 'string' || domain.length > MAX_NAME || !domain.split('.').every((l) => LABEL.test(l))) {
    throw new ArclineError('INVALID', `invalid domain for a DKIM key: ${JSON.stringify(domain)}`);
  }
  return domain;
}

function checkAlgorithm(a: string): DkimAlgorithm {
  if (a !== 'rsa' && a !== 'ed25519') throw new ArclineError('INVALID', `DKIM key algorithm: rsa or ed25519, not ${a}`);
  return a;
}

/** Names of the key files of one selector in a domain directory ([] when it does not exist). */
async function filesOf(dir: string, selector: string): Promise<string[]> {
  return (await listDir(dir)).filter((f) => FILE.exec(f)?.[1] === selector);
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

async function readKeys(domain: string, dir: string): Promise<readonly DkimKey[]> {
  const keys: DkimKey[] = [];
  for (const f of await listDir(dir)) {
    const m = FILE.exec(f);
    const selector = m?.[1];
    const algorithm = m?.[2] as DkimAlgorithm | undefined;
    if (selector === undefined || algorithm === undefined || !isSelector(selector)) continue;
    const key = await readKey(`${dir}/${f}`, algorithm).catch(() => null); // unreadable: skipped
    if (key) keys.push(Object.freeze({ domain, selector, algorithm, ...key }));
  }
  return sortKeys(keys);
}

/** By selector, then algorithm (rsa first); frozen. */
export function sortKeys(keys: DkimKey[]): readonly DkimKey[] {
  keys.sort(
    (a, b) =>
      (a.selector < b.selector ? -1 : a.selector > b.selector ? 1 : 0) ||
      ALGORITHMS[a.algorithm].order - ALGORITHMS[b.algorithm].order,
  );
  return Object.freeze(keys);
}

/** The key in one file, or null when it is not a usable key of that algorithm. */
async function readKey(
  path: string,
  algorithm: DkimAlgorithm,
): Promise<{ privateKeyPem: string; created: Date } | null> {
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > MAX_FILE) return null;
    const pem = usablePem(await fh.readFile('utf8'), algorithm);
    return pem === null ? null : { privateKeyPem: pem, created: st.mtime };
  } finally {
    await fh.close();
  }
}

/** The key as PKCS#8 PEM when the text is a usable private key of that algorithm (RSA of at
 *  least MIN_RSA_BITS), else null: not a key, an encrypted one, or the wrong type. */
export function usablePem(text: string, algorithm: DkimAlgorithm): string | null {
  let k: KeyObject;
  try {
    k = createPrivateKey(text);
  } catch {
    return null; // not a key (or an encrypted one): skipped, left for the operator
  }
  if (k.asymmetricKeyType !== ALGORITHMS[algorithm].keyType) return null;
  if (algorithm === 'rsa' && (k.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) return null;
  // Re-exported so a PKCS#1 file placed by hand still comes out as PKCS#8.
  return k.export({ type: 'pkcs8', format: 'pem' }) as string;
}

export function newKeyPem(algorithm: DkimAlgorithm): Promise<string> {
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

/** Makes tmp visible as path, failing with EEXIST if path exists (never replaces it). */
async function publish(tmp: string, path: string): Promise<void> {
  try {
    await link(tmp, path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw e;
    // A file system without hard links: check, then rename. Still never half-written; only two
    // writers of the same file in the same instant could replace one another.
    const there = await stat(path).then(
      () => true,
      (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? false : Promise.reject(err)),
    );
    if (there) throw Object.assign(new Error(`${path} exists`), { code: 'EEXIST' });
    await rename(tmp, path);
  }
}

function publicKeyOf(key: DkimKey): KeyObject {
  const priv = createPrivateKey(key.privateKeyPem);
  if (priv.asymmetricKeyType !== ALGORITHMS[key.algorithm].keyType) {
    throw new ArclineError('INVALID', `the DKIM key ${key.selector} of ${key.domain} is not an ${key.algorithm} key`);
  }
  return createPublicKey(priv);
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function asOperatorError(e: unknown, what: string): ArclineError {
  if (isArclineError(e)) return e;
  return new ArclineError('TEMPORARY', `${what}: ${errorMessage(e)}`, { cause: e });
}
