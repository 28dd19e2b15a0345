// A certificate authority of a test's own (openssl, in a temporary directory): certificates for
// loopback servers that a client trusts only when given this CA, as a real MX or policy host
// would be trusted through the system's CAs. Nothing here reaches the network.

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TlsPair } from '../../src/tls/certs.ts';

const run = promisify(execFile);

export interface TestCa {
  /** The CA certificate (PEM), to trust. */
  readonly cert: string;
  /** A key and certificate for these DNS names, signed by the CA. */
  issue(names: readonly string[]): Promise<TlsPair>;
  close(): Promise<void>;
}

/** `openssl req` with a new P-256 key: a self-signed certificate with `-x509` in `extra`, else a
 *  certificate request. */
export async function opensslReq(
  subject: string,
  keyFile: string,
  outFile: string,
  extra: string[] = [],
): Promise<void> {
  const curve = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', ...curve, '-subj', subject, '-keyout', keyFile, '-out', outFile, ...extra]);
}

export async function startTestCa(): Promise<TestCa> {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-ca-'));
  const caKey = join(dir, 'ca.key');
  const caCert = join(dir, 'ca.pem');
  await opensslReq('/CN=arcline test CA', caKey, caCert, [
    '-x509',
    '-days',
    '2',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  let n = 0;
  return {
    cert: await readFile(caCert, 'utf8'),
    async issue(names) {
      const i = n++;
      const key = join(dir, `${i}.key`);
      const csr = join(dir, `${i}.csr`);
      const crt = join(dir, `${i}.pem`);
      const ext = join(dir, `${i}.ext`);
      await opensslReq(`/CN=${names[0]}`, key, csr);
      await writeFile(ext, `subjectAltName=${names.map((d) => `DNS:${d}`).join(',')}\nextendedKeyUsage=serverAuth\n`);
      await run('openssl', [
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        caCert,
        '-CAkey',
        caKey,
        '-CAcreateserial',
        '-days',
        '2',
        '-extfile',
        ext,
        '-out',
        crt,
      ]);
      return { key: await readFile(key, 'utf8'), cert: await readFile(crt, 'utf8') };
    },
    close: () => rm(dir, { recursive: true, force: true }),
  };
}
