// Certificates from an ACME CA (RFC 8555) with acme-client: for the host name, the configured
// extra names, and mta-sts.<domain> / autoconfig.<domain> of every local domain.
//
// - Account: {state}/acme/account.json, the key (ECDSA P-256), the account URL and the directory
//   it belongs to, written once the CA created the account (RFC 8555 §7.3). Another directory_url
//   gets a new account; an account the CA no longer knows is dropped and made anew next time.
// - Certificate: {state}/acme/certificate.pem, the private key then the chain in one file, written
//   atomically (tmp + fsync + rename + fsync dir), 0600 in a 0700 directory. TlsManager
//   (tls/certs.ts) reads it; after an issuance `tls.reload()` hands it to every listener at once.
// - Challenges: tls-alpn-01 (RFC 8737) answered by the HTTPS listener through alpnChallenge(),
//   http-01 (RFC 8555 §8.3) by the HTTP listener through httpChallenge(). acme-client's own
//   pre-check of a challenge is skipped: it would resolve our names through the system resolver
//   and reach us from the inside, which says nothing about what the CA sees (hairpin NAT).
// - Schedule (acme-schedule.ts): a check at start, every [acme] check_interval (jittered), on
//   SIGHUP (trigger()); a check compares the names needed now (a new domain) and the expiry with
//   the certificate on disk. A failure is counted (arcline_acme_failures_total), logged, and
//   retried after a jittered, doubling delay; the certificate in use stays.

import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import tls from 'node:tls';
import acme from 'acme-client';
import { errorMessage } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { acmeCertificateExpiry, acmeFailures, acmeIssued } from '../core/metrics.ts';
import { PRIVATE_DIR_MODE, writePrivateFileAtomic } from '../core/private-files.ts';
import {
  type CertFacts,
  certificateNames,
  checkDelay,
  nextWake,
  renewalDecision,
  retryDelay,
} from './acme-schedule.ts';
import { combinePair, readCombined, type TlsManager } from './certs.ts';

export type ChallengeType = 'tls-alpn-01' | 'http-01';

export interface AcmeSettings {
  readonly directoryUrl: string;
  readonly email: string;
  readonly extraNames: readonly string[];
  readonly renewBeforeMs: number;
  readonly challenges: readonly ChallengeType[];
  readonly checkIntervalMs: number;
  readonly retryInitialMs: number;
}

export interface AcmeDeps {
  readonly settings: AcmeSettings;
  readonly stateDir: string;
  readonly hostname: string;
  /** The local domains, asked at every check. */
  readonly domains: () => Promise<readonly string[]>;
  readonly tls: Pick<TlsManager, 'reload'>;
  readonly log: Logger;
  readonly random?: () => number;
}

/** {state}/acme/certificate.pem: TlsManager reads it from there (TlsSource.acmeFile). */
export function acmeCertificateFile(stateDir: string): string {
  return join(stateDir, 'acme', 'certificate.pem');
}

/** What a tls-alpn-01 handshake needs (web/server.ts). */
export interface AcmeChallenges {
  /** The key authorization for an http-01 token, or null (RFC 8555 §8.3). */
  httpChallenge(token: string): string | null;
  /** The secure context with the acmeIdentifier certificate for `name`, or null (RFC 8737 §3). */
  alpnChallenge(name: string): tls.SecureContext | null;
}

export class AcmeManager implements AcmeChallenges {
  readonly #deps: AcmeDeps;
  readonly #dir: string;
  readonly #random: () => number;
  readonly #http = new Map<string, string>();
  readonly #alpn = new Map<string, tls.SecureContext>();
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #again = false;
  #failures = 0;
  #stopped = false;

  constructor(deps: AcmeDeps) {
    this.#deps = deps;
    this.#dir = join(deps.stateDir, 'acme');
    this.#random = deps.random ?? Math.random;
    // A CA that accepts the connection and then says nothing must not hold a check forever
    // (axios defaults, the configuration acme-client documents through `acme.axios`). Its own
    // retries of a failed request (429, 5xx, Retry-After honoured) stay as the library sets them.
    acme.axios.defaults.timeout = LIMITS.acme.httpTimeoutMs;
  }

  httpChallenge(token: string): string | null {
    return this.#http.get(token) ?? null;
  }

  alpnChallenge(name: string): tls.SecureContext | null {
    return this.#alpn.get(name.toLowerCase()) ?? null;
  }

  /** Runs the first check now, then keeps the schedule. */
  start(): void {
    this.#wake(0);
  }

  /** A check as soon as possible (SIGHUP: the domains may have changed). */
  trigger(): void {
    if (this.#running) this.#again = true;
    else this.#wake(0);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #wake(delayMs: number): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#running = this.#check().finally(() => {
        this.#running = null;
        if (this.#again) {
          this.#again = false;
          this.#wake(0);
        }
      });
    }, delayMs);
    this.#timer.unref();
  }

  async #check(): Promise<void> {
    const { settings, log } = this.#deps;
    let names: string[] = [];
    try {
      names = certificateNames(this.#deps.hostname, settings.extraNames, await this.#deps.domains());
      const facts = await this.#facts();
      acmeCertificateExpiry.set(facts ? Math.floor(facts.notAfter / 1000) : 0);
      const decision = renewalDecision(Date.now(), facts, names, settings.renewBeforeMs);
      if (!decision.renew) {
        this.#failures = 0;
        this.#wake(nextWake(Date.now(), decision.at, checkDelay(settings.checkIntervalMs, this.#random())));
        return;
      }
      log.info({ names, reason: decision.reason }, 'ACME: requesting a certificate');
      const issued = await withTimeout(this.#issue(names), LIMITS.acme.requestTimeoutMs);
      if (this.#stopped) return;
      await this.#deps.tls.reload(log);
      this.#failures = 0;
      acmeIssued.inc();
      acmeCertificateExpiry.set(Math.floor(issued.notAfter / 1000));
      log.info(
        { names, not_after: new Date(issued.notAfter).toISOString(), serial: issued.serial },
        'ACME certificate issued',
      );
      this.#wake(0); // schedules the renewal of the new certificate
    } catch (e) {
      if (this.#stopped) return;
      this.#failures++;
      acmeFailures.inc();
      const delay = retryDelay(this.#failures, settings.retryInitialMs, settings.checkIntervalMs, this.#random());
      log.error(
        { err: errorMessage(e), names, failures: this.#failures, retry_in_ms: delay },
        'ACME certificate request failed; keeping the certificate in use',
      );
      this.#wake(delay);
    }
  }

  /** The ACME certificate on disk, or null (none yet, or unreadable: then a new one is due). */
  async #facts(): Promise<CertFacts | null> {
    try {
      const pair = await readCombined(acmeCertificateFile(this.#deps.stateDir));
      return certFacts(pair.cert);
    } catch {
      return null;
    }
  }

  /** The stored account of this directory, or a new key (the account is made by auto()). */
  async #account(): Promise<AccountFile> {
    const url = this.#deps.settings.directoryUrl;
    try {
      const a = JSON.parse(await readFile(join(this.#dir, 'account.json'), 'utf8')) as AccountFile;
      if (a.directory_url === url && typeof a.key === 'string' && typeof a.url === 'string') return a;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.#deps.log.warn({ err: errorMessage(e) }, 'ACME: unreadable account.json; a new account will be made');
      }
    }
    return { directory_url: url, url: '', key: (await acme.crypto.createPrivateEcdsaKey()).toString() };
  }

  async #saveAccount(a: AccountFile): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    await writePrivateFileAtomic(join(this.#dir, 'account.json'), `${JSON.stringify(a, null, 2)}\n`);
  }

  /** client.auto(), keeping the account it registers, and dropping a stored account the CA
   *  refuses (RFC 8555 §7.3: accountDoesNotExist, unauthorized), so the next try makes one. */
  async #auto(client: acme.Client, account: AccountFile, opts: acme.ClientAutoOptions): Promise<string> {
    try {
      return (await client.auto(opts)).toString();
    } catch (e) {
      if (account.url && /account/i.test(errorMessage(e))) {
        await rm(join(this.#dir, 'account.json'), { force: true });
        this.#deps.log.warn({ err: errorMessage(e) }, 'ACME: the CA refused the stored account; a new one comes next');
      }
      throw e;
    } finally {
      let url = '';
      try {
        url = client.getAccountUrl();
      } catch {
        // no account was registered
      }
      if (url && url !== account.url) await this.#saveAccount({ ...account, url });
    }
  }

  /** One order (RFC 8555 §7.4): account, authorizations through our challenges, finalize. */
  async #issue(names: readonly string[]): Promise<CertFacts & { serial: string }> {
    const { settings } = this.#deps;
    // acme-client reports a network error as a TypeError of its own (its retry interceptor reads
    // the missing response); one plain request first gives the operator the real reason.
    await probe(settings.directoryUrl);
    const account = await this.#account();
    const client = new acme.Client({
      directoryUrl: settings.directoryUrl,
      accountKey: account.key,
      ...(account.url ? { accountUrl: account.url } : {}),
      backoffMin: LIMITS.acme.pollMinMs,
      backoffMax: LIMITS.acme.pollMaxMs,
      backoffAttempts: LIMITS.acme.pollAttempts,
    });
    const certKey = await acme.crypto.createPrivateEcdsaKey();
    const cn = this.#deps.hostname.length <= 64 ? { commonName: this.#deps.hostname.toLowerCase() } : {};
    const [, csr] = await acme.crypto.createCsr({ ...cn, altNames: [...names] }, certKey);
    const alpnKey = await acme.crypto.createPrivateEcdsaKey();
    const chain = await this.#auto(client, account, {
      csr,
      ...(settings.email ? { email: settings.email } : {}),
      // Configuring a directory_url is the operator's acceptance of that CA's terms (docs/acme.md).
      termsOfServiceAgreed: true,
      skipChallengeVerification: true,
      challengePriority: [...settings.challenges],
      challengeCreateFn: async (authz, challenge, keyAuthorization) => {
        const name = authz.identifier.value.toLowerCase();
        const type: string = challenge.type; // acme-client's types predate tls-alpn-01
        if (type === 'http-01' && settings.challenges.includes('http-01')) {
          this.#http.set(challenge.token, keyAuthorization);
        } else if (type === 'tls-alpn-01' && settings.challenges.includes('tls-alpn-01')) {
          const [key, cert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization, alpnKey);
          this.#alpn.set(name, tls.createSecureContext({ key, cert }));
        } else {
          throw new Error(`the CA offers no challenge of the configured types for ${name}`);
        }
      },
      challengeRemoveFn: async (authz, challenge) => {
        if (challenge.type === 'http-01') this.#http.delete(challenge.token);
        else this.#alpn.delete(authz.identifier.value.toLowerCase());
      },
    });
    const cert = chain;
    const facts = certFacts(cert);
    await mkdir(this.#dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    await writePrivateFileAtomic(
      acmeCertificateFile(this.#deps.stateDir),
      combinePair({ key: certKey.toString(), cert }),
    );
    return { ...facts, serial: new X509Certificate(cert).serialNumber };
  }
}

interface AccountFile {
  readonly directory_url: string;
  /** Empty until the CA created the account. */
  readonly url: string;
  readonly key: string;
}

/** GET of the directory (RFC 8555 §7.1.1) with the HTTP timeout: throws the network error. */
function probe(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? httpsGet : httpGet)(url, { timeout: LIMITS.acme.httpTimeoutMs }, (res) => {
      res.resume();
      if ((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300) resolve();
      else reject(new Error(`ACME directory ${url} answered HTTP ${res.statusCode}`));
    });
    req.on('timeout', () => req.destroy(new Error(`ACME directory ${url}: no answer`)));
    req.on('error', (e) => reject(new Error(`cannot reach the ACME directory ${url}: ${errorMessage(e)}`)));
  });
}

/** Validity and DNS names of the first certificate of a PEM chain. */
export function certFacts(pem: string): CertFacts {
  const x = new X509Certificate(pem);
  const names = (x.subjectAltName ?? '')
    .split(', ')
    .filter((n) => n.startsWith('DNS:'))
    .map((n) => n.slice(4).toLowerCase());
  return { notBefore: Date.parse(x.validFrom), notAfter: Date.parse(x.validTo), names };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from the ACME CA within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}
