// One bounded HTTPS request to a host we resolved ourselves: the MTA-STS policy fetch
// (queue/mta-sts.ts, RFC 8461 §3.3) and the TLS report POST (reports/tlsrpt-send.ts, RFC 8460
// §5.4). The certificate is checked for `servername` against the system's CAs (plus any given),
// TLS 1.2 or later, no connection reuse, no redirect followed; the whole call (not only an idle
// socket) is bounded in time, and the answer's body in size. `accept` sees the answer's head and
// may refuse it before its body is read; a `signal` cuts the call off (a stop).

import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'node:https';
import { getCACertificates } from 'node:tls';

export interface HttpsCall {
  readonly address: string;
  readonly port: number;
  readonly path: string;
  readonly method: 'GET' | 'POST';
  /** The host name for SNI and the certificate check; null when `address` is what was asked for
   *  (SNI carries host names only, RFC 6066 §3). */
  readonly servername: string | null;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Buffer;
  /** The trusted CAs (trustedCas); empty: the system's. */
  readonly ca: readonly string[];
  readonly timeoutMs: number;
  readonly maxBytes: number;
  /** The errors' texts: past the time, past `maxBytes` of body, cut off by `signal`. */
  readonly timedOut: string;
  readonly tooLarge: string;
  readonly cutOff?: string;
  readonly accept?: (status: number, headers: IncomingHttpHeaders) => Error | null;
  readonly signal?: AbortSignal;
}

/** The system's CAs and `extra` (PEM); [] without extra ones (node's default then applies:
 *  giving `ca` replaces the defaults, so they are listed). */
export function trustedCas(extra: readonly string[]): string[] {
  return extra.length > 0 ? [...getCACertificates('default'), ...extra] : [];
}

/** The first IPv4 address of `host`, else its first IPv6 one; throws when it has none. */
export async function firstAddress(
  resolver: { resolve4(host: string): Promise<string[]>; resolve6(host: string): Promise<string[]> },
  host: string,
): Promise<string> {
  const addresses = await resolver.resolve4(host).catch(() => resolver.resolve6(host));
  const address = addresses[0];
  if (!address) throw new Error(`${host} has no address`);
  return address;
}

export function httpsCall(c: HttpsCall): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: c.address,
        port: c.port,
        path: c.path,
        method: c.method,
        ...(c.servername !== null ? { servername: c.servername } : {}),
        headers: { ...c.headers },
        agent: false,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.2',
        ...(c.ca.length > 0 ? { ca: [...c.ca] } : {}),
        timeout: c.timeoutMs,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        const refused = c.accept?.(status, res.headers) ?? null;
        if (refused) return fail(refused);
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > c.maxBytes) return fail(new Error(c.tooLarge));
          chunks.push(chunk);
        });
        res.on('end', () => {
          done();
          resolve({ status, body: Buffer.concat(chunks) });
        });
        res.on('error', fail);
      },
    );
    // The socket timeout covers idleness only; this bounds the whole call.
    const timer = setTimeout(() => fail(new Error(c.timedOut)), c.timeoutMs);
    const cut = () => fail(new Error(c.cutOff ?? 'cut off'));
    function done(): void {
      clearTimeout(timer);
      c.signal?.removeEventListener('abort', cut);
    }
    function fail(e: Error): void {
      done();
      req.destroy();
      reject(e);
    }
    if (c.signal?.aborted) return cut();
    c.signal?.addEventListener('abort', cut);
    req.on('timeout', () => fail(new Error(c.timedOut)));
    req.on('error', fail);
    req.end(c.body);
  });
}
