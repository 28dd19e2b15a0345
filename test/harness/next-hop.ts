// A forwarder and the next hop it forwards to, both real arcline servers, for tests of what a
// receiver makes of forwarded mail (SRS and SPF: test/srs/forward.test.ts, Sieve redirect:
// test/sieve/delivery.test.ts). A real DNS server on loopback publishes dest.test's MX
// (127.0.0.1), SPF for the forwarding domain (127.0.0.1 may send) and for orig.test (only
// 192.0.2.1 may send); the next hop checks SPF of every client (no trusted networks) and files
// an SPF fail without DMARC in Junk (the spam.md default).

import { startTestDns, type TestDnsServer } from './dns.ts';
import { startTestServer, type TestServer } from './server.ts';

export interface ForwardingPair {
  readonly dns: TestDnsServer;
  readonly forwarder: TestServer;
  /** Receives for dest.test (user carol@dest.test). */
  readonly nextHop: TestServer;
  close(): Promise<void>;
}

export async function startForwardingPair(forwardingDomain: string): Promise<ForwardingPair> {
  const dns = await startTestDns([
    { type: 'MX', name: 'dest.test', preference: 10, exchange: 'mx.dest.test' },
    { type: 'A', name: 'mx.dest.test', address: '127.0.0.1' },
    { type: 'TXT', name: forwardingDomain, text: 'v=spf1 ip4:127.0.0.1 -all' },
    { type: 'TXT', name: 'orig.test', text: 'v=spf1 ip4:192.0.2.1 -all' },
  ]);
  const nextHop = await startTestServer({
    domains: ['dest.test'],
    users: ['carol@dest.test'],
    extra: `[dns]\nservers = ["${dns.address}"]\n[hygiene]\ntrusted_networks = []\ndnsbl = []`,
  });
  const forwarder = await startTestServer({
    domains: [forwardingDomain],
    users: [`alice@${forwardingDomain}`],
    extra: `[delivery]\nport = ${nextHop.port}\nretry_schedule = ["300ms"]\nmx_tls = "none"\n[dns]\nservers = ["${dns.address}"]`,
  });
  return {
    dns,
    forwarder,
    nextHop,
    async close() {
      await forwarder.stop();
      await nextHop.stop();
      await dns.close();
    },
  };
}
