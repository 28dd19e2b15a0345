// Binding a listener: one place for the "listen or fail with the socket error" dance that every
// service (SMTP, IMAP, metrics) needs, so a port in use surfaces as EADDRINUSE to start-up.

import type { AddressInfo, Server } from 'node:net';
import { parseListen } from '../config/schema.ts';

/** Listens on a config listen address ("host:port"); resolves with the bound address. */
export async function listenOn(server: Server, address: string): Promise<AddressInfo> {
  const where = parseListen(address);
  if (!where) throw new Error(`bad listen address ${address}`);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(where.port, where.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server.address() as AddressInfo;
}
