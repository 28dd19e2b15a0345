// The SRS secrets in {state}/srs.secret (docs/srs.md): one secret a line, the first signs new
// addresses, the following ones (older secrets) are still accepted when reversing, as Mail::SRS's
// secret list. Blank lines and lines starting with '#' are ignored. A secret is used as written
// (its characters are the HMAC key, not decoded), so the same line works in Mail::SRS, postsrsd
// or libsrs2. Created on first use: 32 random bytes in hex, mode 0600.

import { randomBytes } from 'node:crypto';
import { link, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ArclineError } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import { PRIVATE_FILE_MODE, writePrivateFileAtomic } from '../core/private-files.ts';

export const SRS_SECRET_FILE = 'srs.secret';
/** Shorter secrets are refused: 16 characters of hex are 64 bits. */
export const MIN_SECRET_LENGTH = 16;

/** A missing, short or oversized secret file is a configuration error of the state directory. */
export class SrsSecretError extends ArclineError {
  constructor(message: string) {
    super('CONFIG', message);
    this.name = 'SrsSecretError';
  }
}

function newSecret(): string {
  return randomBytes(32).toString('hex');
}

/** The secrets of a file's text, newest first. */
export function parseSecrets(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.length < MIN_SECRET_LENGTH) {
      throw new SrsSecretError(`an SRS secret is shorter than ${MIN_SECRET_LENGTH} characters`);
    }
    out.push(line);
    if (out.length > LIMITS.srs.maxSecrets) {
      throw new SrsSecretError(`more than ${LIMITS.srs.maxSecrets} SRS secrets`);
    }
  }
  if (out.length === 0) throw new SrsSecretError('no SRS secret in the file');
  return out;
}

async function readSecrets(path: string): Promise<string[]> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(LIMITS.srs.maxSecretFileBytes + 1);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    if (bytesRead > LIMITS.srs.maxSecretFileBytes) throw new SrsSecretError(`${path} is too large`);
    return parseSecrets(buf.subarray(0, bytesRead).toString('utf8'));
  } finally {
    await fh.close();
  }
}

/** The secrets of {stateDir}/srs.secret, newest first; the file is created (0600, one new
 *  random secret) when missing. Two processes creating it at once agree on one secret: it is
 *  written to a temp file and linked into place, which fails if the other was first. */
export async function loadSrsSecrets(stateDir: string): Promise<string[]> {
  const path = join(stateDir, SRS_SECRET_FILE);
  try {
    return await readSecrets(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', PRIVATE_FILE_MODE);
  try {
    await fh.writeFile(`${newSecret()}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await link(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    await unlink(tmp);
  }
  return readSecrets(path);
}

/** Puts a new random secret first; the old ones stay accepted when reversing, the oldest beyond
 *  LIMITS.srs.maxSecrets are dropped (drop a secret once MaxAge days have passed since it
 *  signed). Returns the secrets now in the file. */
export async function rotateSrsSecret(stateDir: string): Promise<string[]> {
  const path = join(stateDir, SRS_SECRET_FILE);
  let old: string[] = [];
  try {
    old = parseSecrets(await readFile(path, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const secrets = [newSecret(), ...old].slice(0, LIMITS.srs.maxSecrets);
  await writePrivateFileAtomic(path, `${secrets.join('\n')}\n`);
  return secrets;
}
