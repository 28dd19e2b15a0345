// SASL PLAIN (RFC 4616): the one decoder of the initial response for IMAP AUTHENTICATE (RFC 9051
// §6.2.2) and submission AUTH PLAIN (RFC 4954, smtp/connection.ts).

import { LIMITS } from '../core/limits.ts';

/** RFC 4616 §2: message = [authzid] NUL authcid NUL passwd, base64 on the wire. */
export function decodePlain(b64: string): { user: string; password: string } | null {
  // Base64 of authzid + authcid + password at their largest, with room for the separators.
  const max = Math.ceil(((LIMITS.auth.maxUsernameBytes * 2 + LIMITS.auth.maxPasswordBytes + 2) * 4) / 3) + 4;
  if (b64.length > max || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) return null;
  const parts = Buffer.from(b64, 'base64').toString('utf8').split('\0');
  if (parts.length !== 3) return null;
  const [authz, user, password] = parts as [string, string, string];
  // We do not support acting as another user (authorization identity, RFC 4616 §2).
  if (authz !== '' && authz !== user) return null;
  if (user === '' || password === '') return null;
  return { user, password };
}
