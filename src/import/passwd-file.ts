// `arcline import passwd-file` (issue #13): Dovecot passwd-file users become arcline users with
// their password hashes kept, so they log in with the password they had.
//   {SHA512-CRYPT} $6$, {BLF-CRYPT} $2a$/$2b$/$2y$, {ARGON2ID}, {ARGON2I}: kept as they are (the
//     schemes directory/password.ts verifies; the same check as `user add --hash-stdin`)
//   {CRYPT} or no prefix (Dovecot's default scheme for passwd-file is CRYPT, libc crypt(3)):
//     kept when the hash is one of those ($6$, $2?$, $argon2), refused for DES and MD5-crypt
//   {PLAIN} / {CLEARTEXT}: the password is hashed with arcline's scheme ([auth] password_scheme)
//     rather than refused: the user keeps the password, the file stops being the only copy of it
//     in clear, and nothing weaker than arcline's own hash is stored
//   anything else ({SSHA}, {MD5-CRYPT}, {SHA256-CRYPT}, {CRAM-MD5} ...): refused, with the reason
// Extra fields (userdb_quota_rule ...) are not imported and are reported.

import type { AdminOps } from '../admin/operations.ts';
import { errorMessage } from '../core/errors.ts';
import { parseStoredHash } from '../directory/password.ts';
import { type PasswdEntry, parsePasswdFile } from './dovecot-files.ts';

export interface PasswdImportReport {
  readonly added: { address: string; how: string }[];
  readonly skipped: { what: string; why: string }[];
  readonly notes: string[];
}

const KEPT = new Set(['SHA512-CRYPT', 'BLF-CRYPT', 'ARGON2ID', 'ARGON2I']);

/** How an entry's password becomes arcline's: a stored hash, a password to hash, or a refusal. */
export function passwordOf(field: string): { hash: string } | { plain: string } | { problem: string } {
  let scheme = 'CRYPT';
  let value = field;
  if (field.startsWith('{')) {
    const end = field.indexOf('}');
    if (end < 2 || end > 32) return { problem: 'malformed {SCHEME} prefix' };
    scheme = field.slice(1, end).toUpperCase();
    value = field.slice(end + 1);
  }
  if (value === '') return { problem: 'no password' };
  if (scheme === 'PLAIN' || scheme === 'CLEARTEXT') return { plain: value };
  let hash: string;
  if (KEPT.has(scheme)) hash = `{${scheme}}${value}`;
  else if (scheme === 'CRYPT') {
    if (!/^\$(6|2[aby]|argon2i?d?)\$/.test(value)) {
      return { problem: '{CRYPT} hash other than SHA-512-crypt, bcrypt or Argon2 (DES, MD5-crypt): not supported' };
    }
    hash = value;
  } else {
    return {
      problem: `{${scheme}} is not a scheme arcline verifies (SHA512-CRYPT, BLF-CRYPT, ARGON2ID, ARGON2I, PLAIN)`,
    };
  }
  const parsed = parseStoredHash(hash);
  return 'problem' in parsed ? { problem: parsed.problem } : { hash };
}

function addressOf(e: PasswdEntry, domain: string | undefined): string | null {
  if (e.user.includes('@')) return e.user;
  return domain ? `${e.user}@${domain}` : null;
}

/** Creates the users of a passwd-file; every line is reported as added or skipped. */
export async function importPasswdFile(
  ops: AdminOps,
  text: string,
  opts: { domain?: string; dryRun?: boolean } = {},
): Promise<PasswdImportReport> {
  const { entries, problems } = parsePasswdFile(text);
  const report: PasswdImportReport = {
    added: [],
    skipped: problems.map((p) => ({ what: p.split(':')[0] as string, why: p.slice(p.indexOf(':') + 2) })),
    notes: [],
  };
  for (const e of entries) {
    const what = `line ${e.line} (${e.user})`;
    const address = addressOf(e, opts.domain);
    if (address === null) {
      report.skipped.push({ what, why: 'no domain in the user name: give --domain' });
      continue;
    }
    const pw = passwordOf(e.password);
    if ('problem' in pw) {
      report.skipped.push({ what, why: pw.problem });
      continue;
    }
    try {
      await ops.checkNewUser(address);
      if (!opts.dryRun) {
        if ('plain' in pw) await ops.addUser(address, { password: pw.plain });
        else await ops.addUserWithHash(address, { passwordHash: pw.hash });
      }
      report.added.push({ address, how: 'plain' in pw ? 'password hashed with arcline’s scheme' : 'hash kept' });
      if (e.extra !== '') report.notes.push(`${address}: extra fields not imported: ${e.extra.slice(0, 200)}`);
    } catch (err) {
      report.skipped.push({ what, why: errorMessage(err) });
    }
  }
  return report;
}
