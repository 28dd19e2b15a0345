// TLS certificates for every listener. Either the operator's PEM files ([tls] cert/key), or the
// certificate ACME obtained ({state}/acme/certificate.pem, tls/acme.ts; the two exclude each
// other, config/schema.ts), or, while there is neither, a self-signed pair generated on first
// start in {state}/tls/ and reused after. `reload()` re-reads the files (SIGHUP); listeners subscribe with onChange and swap their
// secure context, so established connections keep theirs and new ones get the new certificate.
// A reload that fails (missing file, key not matching cert) keeps the old pair and reports why.

import { createPrivateKey, createPublicKey, generateKeyPair, randomBytes, X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { ArclineError, errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';

export interface TlsPair {
  readonly key: string;
  readonly cert: string;
}

export interface TlsSource {
  /** Configured files, or null for a generated self-signed pair. */
  readonly files: { readonly cert: string; readonly key: string } | null;
  /** With ACME on: the file holding its key and chain (writeCombined); used when it exists and
   *  is valid, otherwise the self-signed pair serves until the first issuance. */
  readonly acmeFile?: string | null;
  /** With ACME on a cluster: the shared store (tls/acme-store-pg.ts), read instead of the file;
   *  the same fallback to the self-signed pair while it holds none. */
  readonly acmeStore?: { certificate(): Promise<TlsPair | null> } | null;
  readonly stateDir: string;
  readonly hostname: string;
}

export class TlsManager {
  #pair: TlsPair;
  readonly #source: TlsSource;
  readonly #listeners = new Set<(p: TlsPair) => void>();

  private constructor(source: TlsSource, pair: TlsPair) {
    this.#source = source;
    this.#pair = pair;
  }

  static async open(source: TlsSource, log: Logger): Promise<TlsManager> {
    const pair = await loadPair(source, log);
    return new TlsManager(source, pair);
  }

  get current(): TlsPair {
    return this.#pair;
  }

  onChange(listener: (p: TlsPair) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Re-reads the certificate; on error the old pair stays in use and the error is thrown. */
  async reload(log: Logger): Promise<void> {
    const pair = await loadPair(this.#source, log);
    this.#pair = pair;
    for (const l of this.#listeners) l(pair);
  }
}

async function loadPair(source: TlsSource, log: Logger): Promise<TlsPair> {
  if (source.files) return readPair(source.files.cert, source.files.key);
  if (source.acmeStore) {
    try {
      const pair = await source.acmeStore.certificate();
      if (pair) return pair;
    } catch (e) {
      log.warn({ err: errorMessage(e) }, 'shared ACME certificate unusable; serving the self-signed one');
    }
  }
  if (source.acmeFile) {
    try {
      return await readCombined(source.acmeFile);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        log.warn(
          { file: source.acmeFile, err: errorMessage(e) },
          'ACME certificate unusable; serving the self-signed one',
        );
      }
    }
  }
  const dir = join(source.stateDir, 'tls');
  const certFile = join(dir, 'selfsigned-cert.pem');
  const keyFile = join(dir, 'selfsigned-key.pem');
  try {
    return await readPair(certFile, keyFile);
  } catch (e) {
    if (!(e instanceof ArclineError && /ENOENT/.test(e.message))) throw e;
  }
  const pair = await generateSelfSigned(source.hostname);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Key first, each written to a temp name and renamed, so a crash never leaves half a pair.
  // Both 0600 like everything in the state directory: only the server reads them.
  await writeFile(`${keyFile}.tmp`, pair.key, { mode: 0o600 });
  await rename(`${keyFile}.tmp`, keyFile);
  await writeFile(`${certFile}.tmp`, pair.cert, { mode: 0o600 });
  await rename(`${certFile}.tmp`, certFile);
  await chmod(keyFile, 0o600);
  log.warn(
    { cert: certFile, hostname: source.hostname },
    source.acmeFile || source.acmeStore
      ? 'generated a self-signed TLS certificate; it serves until ACME issues one'
      : 'generated a self-signed TLS certificate; configure [tls] cert and key (or [acme]) for production',
  );
  return pair;
}

/** The ACME file: the private key's PEM block, then the certificate chain (one file, so that
 *  one atomic rename replaces both). */
export function combinePair(pair: TlsPair): string {
  return `${pair.key.trim()}\n${pair.cert.trim()}\n`;
}

/** Reads a file written from combinePair; throws ENOENT (code) when it is missing. */
export async function readCombined(file: string): Promise<TlsPair> {
  return readCombinedText(await readFile(file, 'utf8'), file);
}

/** The pair of a text made by combinePair (`what` names it in errors); throws when the key is
 *  missing or not the certificate's. */
export function readCombinedText(text: string, what: string): TlsPair {
  const end = /-----END [A-Z ]*PRIVATE KEY-----/.exec(text);
  if (!end) throw new Error(`${what}: no private key`);
  const pair = {
    key: `${text.slice(0, end.index + end[0].length).trim()}\n`,
    cert: `${text.slice(end.index + end[0].length).trim()}\n`,
  };
  checkPair(pair, what, what);
  return pair;
}

/** Throws unless the key is the certificate's (its first certificate's public key). */
export function checkPair(pair: TlsPair, certFile: string, keyFile: string): void {
  const x = new X509Certificate(pair.cert);
  const pub = createPublicKey(createPrivateKey(pair.key)).export({ type: 'spki', format: 'der' });
  if (!x.publicKey.export({ type: 'spki', format: 'der' }).equals(pub)) {
    throw new Error(`the key in ${keyFile} does not match the certificate in ${certFile}`);
  }
}

async function readPair(certFile: string, keyFile: string): Promise<TlsPair> {
  let cert: string;
  let key: string;
  try {
    [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  } catch (e) {
    throw new ArclineError('CONFIG', `TLS: cannot read certificate or key: ${errorMessage(e)}`, { cause: e });
  }
  try {
    checkPair({ cert, key }, certFile, keyFile);
  } catch (e) {
    throw new ArclineError('CONFIG', `TLS: ${errorMessage(e)}`, { cause: e });
  }
  return { cert, key };
}

/** RSA-2048 / SHA-256 self-signed certificate for `hostname`, valid for 825 days. The key pair
 *  comes from node:crypto (native, fast); node-forge only assembles and signs the certificate. */
export async function generateSelfSigned(hostname: string): Promise<TlsPair> {
  const { privateKey, publicKey } = await promisify(generateKeyPair)('rsa', { modulusLength: 2048 });
  const key = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  // A positive 127-bit serial (RFC 5280 §4.1.2.2: positive, at most 20 octets).
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 60_000);
  cert.validity.notAfter = new Date(now + 825 * 86_400_000);
  const name = [{ name: 'commonName', value: hostname }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 2, value: hostname }] },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(key), forge.md.sha256.create());
  return { key, cert: forge.pki.certificateToPem(cert) };
}
