// A Web Push user agent's side for tests: a P-256 key pair and auth secret, and decryption of
// aes128gcm push messages by http_ece (the web-push project's library, independent of ours).

import { createECDH, randomBytes } from 'node:crypto';

type Ecdh = ReturnType<typeof createECDH>;
interface Ece {
  decrypt(body: Buffer, p: { version: string; privateKey: Ecdh; authSecret: string }): Buffer;
}

export interface PushAgent {
  /** The PushSubscription keys (base64url). */
  readonly keys: { p256dh: string; auth: string };
  decrypt(body: Buffer): Promise<Buffer>;
}

export function pushAgent(): PushAgent {
  const ua = createECDH('prime256v1');
  ua.generateKeys();
  const auth = randomBytes(16).toString('base64url');
  return {
    keys: { p256dh: ua.getPublicKey().toString('base64url'), auth },
    async decrypt(body) {
      // Loaded by a computed name: it ships no types.
      const name = 'http_ece';
      const ece = ((await import(name)) as { default: Ece }).default;
      return ece.decrypt(body, { version: 'aes128gcm', privateKey: ua, authSecret: auth });
    },
  };
}
