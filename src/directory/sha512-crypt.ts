// SHA-512-crypt (`$6$`, Dovecot `{SHA512-CRYPT}`), after Ulrich Drepper's specification "Unix
// crypt using SHA-256 and SHA-512" (akkadia.org/drepper/SHA-crypt.txt). Pure and synchronous: it
// runs in the hashing worker (crypt-worker.ts), never on the event loop of the server.

import { createHash } from 'node:crypto';

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ROUNDS_DEFAULT = 5000;
const ROUNDS_MIN = 1000;
const ROUNDS_MAX = 999_999_999;

/** Computes `$6$[rounds=N$]salt$hash` for `plain` with the parameters of `setting`; null when
 *  the setting is malformed. */
export function sha512Crypt(plain: string, setting: string): string | null {
  const m = /^\$6\$(?:rounds=(\d{1,10})\$)?([^$]*)/.exec(setting);
  if (!m) return null;
  const custom = m[1] !== undefined;
  const rounds = custom ? Math.min(ROUNDS_MAX, Math.max(ROUNDS_MIN, Number(m[1]))) : ROUNDS_DEFAULT;
  const salt = Buffer.from((m[2] ?? '').slice(0, 16));
  const p = Buffer.from(plain);
  const sha = () => createHash('sha512');

  const b = sha().update(p).update(salt).update(p).digest();
  const a = sha().update(p).update(salt);
  let i: number;
  for (i = p.length; i > 64; i -= 64) a.update(b);
  a.update(b.subarray(0, i));
  for (i = p.length; i > 0; i >>= 1) a.update(i & 1 ? b : p);
  let c = a.digest();

  const dp = sha();
  for (i = 0; i < p.length; i++) dp.update(p);
  const pSeq = stretch(dp.digest(), p.length);
  const ds = sha();
  for (i = 0; i < 16 + (c[0] ?? 0); i++) ds.update(salt);
  const sSeq = stretch(ds.digest(), salt.length);

  for (let r = 0; r < rounds; r++) {
    const h = sha();
    h.update(r & 1 ? pSeq : c);
    if (r % 3) h.update(sSeq);
    if (r % 7) h.update(pSeq);
    h.update(r & 1 ? c : pSeq);
    c = h.digest();
  }

  let out = '';
  const b64 = (b2: number, b1: number, b0: number, n: number) => {
    let w = (b2 << 16) | (b1 << 8) | b0;
    for (let k = 0; k < n; k++) {
      out += ITOA64[w & 0x3f];
      w >>= 6;
    }
  };
  for (let k = 0; k < 21; k++) {
    const t = [c[k] ?? 0, c[k + 21] ?? 0, c[k + 42] ?? 0];
    const rot = k % 3; // the spec's byte order: (k, k+21, k+42) rotated by k mod 3
    b64(t[rot % 3] as number, t[(rot + 1) % 3] as number, t[(rot + 2) % 3] as number, 4);
  }
  b64(0, 0, c[63] ?? 0, 2);
  return `$6$${custom ? `rounds=${rounds}$` : ''}${salt.toString()}$${out}`;
}

/** `digest` repeated to `length` bytes. */
function stretch(digest: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i += 64) digest.copy(out, i, 0, Math.min(64, length - i));
  return out;
}
