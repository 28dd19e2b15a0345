// Login clients for the auth tests: one IMAP LOGIN or submission AUTH PLAIN per fresh
// connection, from a chosen loopback address, timed.

import assert from 'node:assert/strict';
import { RawImap } from '../harness/imap-client.ts';
import type { TestServer } from '../harness/server.ts';
import { RawSmtp } from '../harness/smtp-client.ts';

export const PASSWORD = 'secret-password';

export interface Attempt {
  /** The tagged IMAP reply or the SMTP reply line. */
  readonly reply: string;
  readonly ok: boolean;
  readonly ms: number;
}

/** IMAP quoted string (RFC 9051 §4.3): backslash and double quote escaped. */
export function quoted(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export async function imapLogin(t: TestServer, user: string, password: string, from = '127.0.0.1'): Promise<Attempt> {
  const { client } = await RawImap.connect(t.imapPort, from);
  client.timeoutMs = 60_000;
  try {
    const started = performance.now();
    const lines = await client.cmd(`LOGIN ${quoted(user)} ${quoted(password)}`);
    const reply = lines.at(-1) ?? '';
    return { reply, ok: / OK /.test(reply), ms: performance.now() - started };
  } finally {
    client.close();
  }
}

export async function submissionLogin(
  t: TestServer,
  user: string,
  password: string,
  from = '127.0.0.1',
): Promise<Attempt> {
  const c = await RawSmtp.connect(t.submissionPort, '127.0.0.1', from);
  try {
    assert.equal((await c.read()).code, 220);
    await c.cmd('EHLO client.test');
    await c.startTls();
    await c.cmd('EHLO client.test');
    const started = performance.now();
    c.write(`AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString('base64')}\r\n`);
    const r = await c.read(60_000);
    return { reply: r.text, ok: r.code === 235, ms: performance.now() - started };
  } finally {
    c.close();
  }
}

export type Login = typeof imapLogin;
export const PROTOCOLS: readonly [string, Login][] = [
  ['imap', imapLogin],
  ['submission', submissionLogin],
];
