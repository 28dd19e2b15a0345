// A small HTTP(S) client for the web tests: any method, Host header and body, against the
// server's bound listeners on loopback (self-signed certificate: not verified).

import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export function fetchLocal(
  port: number,
  opts: {
    secure?: boolean;
    method?: string;
    path: string;
    host: string;
    body?: string | Buffer;
    headers?: Record<string, string>;
  },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = (opts.secure ? httpsRequest : httpRequest)(
      {
        host: '127.0.0.1',
        port,
        method: opts.method ?? 'GET',
        path: opts.path,
        headers: { host: opts.host, ...opts.headers },
        ...(opts.secure ? { rejectUnauthorized: false, servername: opts.host } : {}),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}
