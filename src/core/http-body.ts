// Reading a bounded HTTP request body from node:http (web/server.ts for the router's POST
// paths, jmap/http.ts for API requests).

import type { IncomingMessage } from 'node:http';

/** The request's body, or 'too large' past `max` (by Content-Length, or once more arrives):
 *  reading stops there and the connection is closed after the answer. A body that does not
 *  arrive in time is ended by node:http's requestTimeout ([http] timeout): 'aborted'. */
export function readBody(req: IncomingMessage, max: number): Promise<Buffer | 'too large' | 'aborted'> {
  return new Promise((resolve) => {
    if (Number(req.headers['content-length'] ?? 0) > max) {
      resolve('too large');
      return;
    }
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer) => {
      length += chunk.length;
      if (length > max) {
        req.off('data', onData);
        req.pause();
        resolve('too large');
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks, length)));
    req.once('error', () => resolve('aborted'));
    req.once('close', () => resolve('aborted'));
  });
}
