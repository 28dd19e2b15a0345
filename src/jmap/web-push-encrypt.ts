// Message encryption for Web Push (RFC 8291) with the aes128gcm content coding (RFC 8188): a
// PushSubscription with `keys` (RFC 8620 §7.2: p256dh and auth, base64url) gets its
// StateChanges and verification encrypted for the user agent, so the push service carries
// nothing it can read. One record (the payloads are small), a fresh ECDH key and salt per
// message. Pure but for the randomness.

import { createCipheriv, createECDH, hkdfSync, randomBytes } from 'node:crypto';

export interface PushKeys {
  /** The user agent's P-256 public key, uncompressed (65 bytes). */
  readonly p256dh: Buffer;
  /** The authentication secret (16 bytes). */
  readonly auth: Buffer;
}

/** The keys of a PushSubscription, or null when they are not a P-256 point and a 16-byte
 *  secret in base64url. */
export function parsePushKeys(v: unknown): PushKeys | null {
  if (typeof v !== 'object' || v === null) return null;
  const { p256dh, auth } = v as Record<string, unknown>;
  if (typeof p256dh !== 'string' || typeof auth !== 'string') return null;
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(p256dh) || !/^[A-Za-z0-9_-]+={0,2}$/.test(auth)) return null;
  const key = Buffer.from(p256dh, 'base64url');
  const secret = Buffer.from(auth, 'base64url');
  if (key.length !== 65 || key[0] !== 4 || secret.length !== 16) return null;
  try {
    // A point not on the curve fails here, not at the first push.
    const probe = createECDH('prime256v1');
    probe.generateKeys();
    probe.computeSecret(key);
  } catch {
    return null;
  }
  return { p256dh: key, auth: secret };
}

const RECORD_SIZE = 4096;

/** The aes128gcm body of `plaintext` for `keys` (RFC 8291 §3.4, RFC 8188 §2). `test` fixes the
 *  sender's key and salt (the RFC's example). */
export function encryptPush(plaintext: Buffer, keys: PushKeys, test?: { privateKey: Buffer; salt: Buffer }): Buffer {
  const ecdh = createECDH('prime256v1');
  if (test) ecdh.setPrivateKey(test.privateKey);
  else ecdh.generateKeys();
  const asPublic = ecdh.getPublicKey();
  const salt = test?.salt ?? randomBytes(16);
  const ecdhSecret = ecdh.computeSecret(keys.p256dh);
  // §3.3: IKM = HKDF(auth_secret, ecdh_secret, "WebPush: info" || 0x00 || ua_public || as_public, 32)
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), keys.p256dh, asPublic]);
  const ikm = Buffer.from(hkdfSync('sha256', ecdhSecret, keys.auth, keyInfo, 32));
  // RFC 8188 §2.2, §2.3: the content-encryption key and the nonce.
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
  if (plaintext.length + 1 + 16 > RECORD_SIZE) throw new Error('push payload too large for one record');
  const cipher = createCipheriv('aes-128-gcm', cek, nonce);
  // One record, the last: the padding delimiter 0x02, no padding.
  const body = Buffer.concat([
    cipher.update(plaintext),
    cipher.update(Buffer.from([2])),
    cipher.final(),
    cipher.getAuthTag(),
  ]);
  const header = Buffer.alloc(21);
  salt.copy(header, 0);
  header.writeUInt32BE(RECORD_SIZE, 16);
  header.writeUInt8(asPublic.length, 20);
  return Buffer.concat([header, asPublic, body]);
}
