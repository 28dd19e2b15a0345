// Debian's `pebble` (Let's Encrypt's ACME test CA) for the ACME tests: its own JSON config in a
// temp dir, every listener on an ephemeral loopback port, validations sent to the given HTTP and
// HTTPS ports on the addresses our test DNS server (test/harness/dns.ts) gives. Pebble's own
// HTTPS certificate is a self-signed pair made here; a server started with NODE_EXTRA_CA_CERTS
// pointing at `caFile` trusts it. The CA's root (regenerated at every launch) comes from the
// management interface.

import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:https';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';

export interface Pebble {
  /** https://127.0.0.1:PORT/dir */
  readonly directoryUrl: string;
  /** PEM of pebble's own HTTPS certificate (for NODE_EXTRA_CA_CERTS). */
  readonly caFile: string;
  /** Pebble's root of the issued certificates (GET /roots/0 on the management port). */
  root(): Promise<string>;
  close(): Promise<void>;
}

/** A free loopback port (bound, then released; loopback-only, so the window is tiny). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** True when something accepts TCP connections on 127.0.0.1:`port`. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function startPebble(opts: {
  httpPort: number;
  tlsPort: number;
  /** "127.0.0.1:PORT" of the test DNS server. */
  dnsServer: string;
  /** Lifetime of issued certificates (pebble's certificateValidityPeriod). */
  validitySeconds?: number;
  /** The ACME port and the HTTPS pair to use, made beforehand (pebbleListener), for a server
   *  started before its CA; by default both are new. */
  listener?: PebbleListener;
}): Promise<Pebble> {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-pebble-'));
  const { port, certFile, keyFile, cert } = opts.listener ?? (await pebbleListener(dir));
  const mgmt = await freePort();
  await writeFile(
    join(dir, 'pebble.json'),
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${port}`,
        managementListenAddress: `127.0.0.1:${mgmt}`,
        certificate: certFile,
        privateKey: keyFile,
        httpPort: opts.httpPort,
        tlsPort: opts.tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        ...(opts.validitySeconds ? { certificateValidityPeriod: opts.validitySeconds } : {}),
      },
    }),
  );
  const child = spawn('pebble', ['-config', join(dir, 'pebble.json'), '-dnsserver', opts.dnsServer], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // No artificial validation delays; no nonces rejected at random (tests must be deterministic).
    env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' },
  });
  await listening(child, [port, mgmt]);
  const fetchText = (path: string) => httpsText(`https://127.0.0.1:${mgmt}${path}`, cert);
  return {
    directoryUrl: `https://127.0.0.1:${port}/dir`,
    caFile: certFile,
    root: () => fetchText('/roots/0'),
    async close() {
      child.kill('SIGTERM');
      if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Pebble logs "Listening on: ..." for both listeners just before it binds them: wait for both
 *  lines, then until each port accepts a connection. */
async function listening(child: ChildProcess, ports: readonly number[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      if (ports.every((p) => out.includes(`istening on: 127.0.0.1:${p}`))) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`pebble exited with ${code}: ${out}`)));
    child.once('error', reject);
  });
  for (const port of ports) await connects(port);
}

async function connects(port: number): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`pebble does not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function httpsText(url: string, ca: string, opts: { servername?: string; host?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const headers = opts.host ? { host: opts.host } : {};
    get(url, { ca, headers, ...(opts.servername ? { servername: opts.servername } : {}) }, (res) => {
      let body = '';
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: ${res.statusCode}`))));
    }).on('error', reject);
  });
}

export interface PebbleListener {
  readonly port: number;
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  /** https://127.0.0.1:PORT/dir, answered once pebble runs. */
  readonly directoryUrl: string;
}

/** A free port and a certificate for pebble's ACME listener, written into `dir`. */
export async function pebbleListener(dir: string): Promise<PebbleListener> {
  const { cert, key } = selfSigned();
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  await writeFile(certFile, cert);
  await writeFile(keyFile, key, { mode: 0o600 });
  const port = await freePort();
  return { port, certFile, keyFile, cert, directoryUrl: `https://127.0.0.1:${port}/dir` };
}

/** A self-signed certificate for localhost and 127.0.0.1 (pebble's HTTPS listeners). */
export function selfSigned(): { cert: string; key: string } {
  const pair = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const c = forge.pki.createCertificate();
  c.publicKey = forge.pki.publicKeyFromPem(pair.publicKey);
  c.serialNumber = `01${randomBytes(8).toString('hex')}`;
  c.validity.notBefore = new Date(Date.now() - 60_000);
  c.validity.notAfter = new Date(Date.now() + 86_400_000);
  const name = [{ name: 'commonName', value: 'pebble test CA listener' }];
  c.setSubject(name);
  c.setIssuer(name);
  c.setExtensions([
    { name: 'basicConstraints', cA: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        { type: 2, value: 'localhost' },
        { type: 7, ip: '127.0.0.1' },
      ],
    },
  ]);
  c.sign(forge.pki.privateKeyFromPem(pair.privateKey), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(c), key: pair.privateKey };
}
