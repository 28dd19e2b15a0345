// Binding a listener: one place for the "listen or fail with the socket error" dance that every
// service (SMTP, IMAP, metrics) needs, so a port in use surfaces as EADDRINUSE to start-up.
//
// A server that starts as root and then becomes [server] user binds its ports first: `prebind`
// binds each configured address while the process may still use ports below 1024, and the
// service that later calls `listenOn` with the same address takes over that socket (net.Server
// listen(handle)) instead of binding again. Until then a connection to it is closed at once.

import { type AddressInfo, createServer, type Server } from 'node:net';
import { parseListen } from '../config/schema.ts';

/** Bound sockets waiting for their service, by config address (several for "host:0"). */
const prebound = new Map<string, Server[]>();

export interface ListenOptions {
  /** SO_REUSEPORT (Node >= 22.12; Linux, FreeBSD): several threads or processes listen on the
   *  same port and the kernel spreads the connections. A prebound socket keeps what prebind set. */
  readonly reusePort?: boolean;
}

/** Listens on a config listen address ("host:port"); resolves with the bound address. */
export function listenOn(server: Server, address: string, opts: ListenOptions = {}): Promise<AddressInfo> {
  return bind(server, address, prebound.get(address)?.shift(), opts.reusePort === true);
}

/** Binds `address` now for a service that will listen on it later (see the header). */
export async function prebind(address: string, opts: ListenOptions = {}): Promise<AddressInfo> {
  const holder = createServer({ pauseOnConnect: true }, (socket) => socket.destroy());
  const bound = await bind(holder, address, undefined, opts.reusePort === true);
  prebound.set(address, [...(prebound.get(address) ?? []), holder]);
  return bound;
}

async function bind(
  server: Server,
  address: string,
  handle: Server | undefined,
  reusePort: boolean,
): Promise<AddressInfo> {
  const where = parseListen(address);
  if (!where) throw new Error(`bad listen address ${address}`);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve();
    };
    if (handle) server.listen(handle, done);
    else if (reusePort) server.listen({ port: where.port, host: where.host, reusePort: true }, done);
    else server.listen(where.port, where.host, done);
  });
  return server.address() as AddressInfo;
}

/** Closes the sockets no service took (start-up failed half-way). */
export async function closePrebound(): Promise<void> {
  const left = [...prebound.values()].flat();
  prebound.clear();
  await Promise.all(left.map((s) => new Promise((resolve) => s.close(resolve))));
}
