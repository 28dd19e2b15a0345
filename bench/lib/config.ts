// The configuration the IMAP benches run a spawned server with: the test configuration (loopback,
// ephemeral ports, a temp directory) logging at info (spawnServer waits for the "listening" and
// "ready" lines), with extra [imap] keys (all bench clients come from 127.0.0.1, so the
// per-address limits are lifted for the measurement).

import { TEST_CONFIG } from '../../test/harness/server.ts';

export function imapBenchConfig(dir: string, imapKeys: string): string {
  return TEST_CONFIG(dir)
    .replace('level = "debug"', 'level = "info"')
    .replace('tls_listen = ["127.0.0.1:0"]\n[auth]', `tls_listen = ["127.0.0.1:0"]\n${imapKeys}\n[auth]`);
}
