// The outside world of a sending test: remote.test's MX (a FakeMx on loopback) published by a
// real DNS server on loopback, the config lines that point the server at both, and a helper
// that sends one message through submission and returns it as the remote MX received it.

import assert from 'node:assert/strict';
import { startTestDns, type TestDnsServer } from './dns.ts';
import { type FakeMx, startFakeMx } from './mx.ts';
import { submitter } from './submit.ts';

export interface Remote {
  readonly mx: FakeMx;
  readonly dns: TestDnsServer;
  /** `[dns]` and `[delivery]` for startTestServer's `extra`. */
  readonly config: string;
  /** Sends alice@example.test -> carol@remote.test through `submissionPort`; the mail received. */
  send(submissionPort: number): Promise<Buffer>;
  close(): Promise<void>;
}

export async function startRemote(): Promise<Remote> {
  const mx = await startFakeMx();
  const dns = await startTestDns([
    { type: 'MX', name: 'remote.test', preference: 10, exchange: 'mx.remote.test' },
    { type: 'A', name: 'mx.remote.test', address: '127.0.0.1' },
  ]);
  return {
    mx,
    dns,
    config: `[dns]\nservers = ["${dns.address}"]\n[delivery]\nport = ${mx.port}\n`,
    async send(submissionPort) {
      const before = mx.mails.length;
      await submitter(submissionPort).sendMail({
        from: 'alice@example.test',
        to: 'carol@remote.test',
        subject: 'sent out',
        text: 'x',
      });
      const [mail] = (await mx.waitFor(before + 1)).slice(before);
      assert.ok(mail);
      return mail.data;
    },
    async close() {
      await dns.close();
      await mx.close();
    },
  };
}
