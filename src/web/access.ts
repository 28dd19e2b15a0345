// One access line per HTTP request on the [http] listeners (issue #14, docs/logging.md): method,
// path without the query, status, bytes sent, duration, client address. Written when the
// response is finished (or the connection closed under it); works for any handler on
// node:http's request and response objects.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { peerAddress } from '../core/ip.ts';
import type { Logger } from '../core/log.ts';

/** The path part of a request target, bounded (the log line never carries a query). */
function pathOf(url: string | undefined): string {
  const u = url ?? '';
  const q = u.indexOf('?');
  return (q < 0 ? u : u.slice(0, q)).slice(0, 512);
}

/** Writes the access line of `req` once its response is done; `log` null: nothing. */
export function logAccess(log: Logger | null, req: IncomingMessage, res: ServerResponse): void {
  if (!log) return;
  const start = performance.now();
  // Read now: the socket may be gone from the request by the time the response closes.
  const protocol = (req.socket as { encrypted?: boolean } | null)?.encrypted ? 'https' : 'http';
  const client = peerAddress(req.socket?.remoteAddress);
  let written = false;
  const done = () => {
    if (written) return;
    written = true;
    const length = Number(res.getHeader('content-length'));
    log.info(
      {
        access: 'http',
        protocol,
        client,
        method: (req.method ?? '').slice(0, 16),
        path: pathOf(req.url),
        status: res.headersSent ? res.statusCode : 0,
        bytes: req.method === 'HEAD' || !Number.isFinite(length) ? 0 : length,
        duration_ms: Math.round(performance.now() - start),
        ...(res.writableFinished ? {} : { aborted: true }),
      },
      'http access',
    );
  };
  res.once('finish', done);
  res.once('close', done);
}
