// The server, the IMAP client and the JMAP helpers the Email method tests share
// (email.test.ts, email-set.test.ts).

import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import type { ImapFlow } from 'imapflow';
import type { AccountId } from '../../src/core/ids.ts';
import { accountIdOf } from '../../src/jmap/session.ts';
import { imapflowClient } from '../harness/imap-client.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';

export const ALICE = 'alice@example.test';
export const AUTH = `Basic ${Buffer.from(`${ALICE}:secret-password`).toString('base64')}`;
const USING = ['urn:ietf:params:jmap:core', 'urn:ietf:params:jmap:mail'];
export const aliceId = accountIdOf(ALICE as AccountId);

export let s: TestServer;
export let base: string;
export let imap: ImapFlow;

// biome-ignore lint/suspicious/noExplicitAny: JSON answers of many shapes, asserted field by field
export type Json = any;

export async function calls(...methodCalls: [string, Record<string, unknown>][]): Promise<Json[]> {
  const r = await fetch(`${base}/jmap/api`, {
    method: 'POST',
    headers: { authorization: AUTH, 'content-type': 'application/json' },
    body: JSON.stringify({ using: USING, methodCalls: methodCalls.map(([n, a], i) => [n, a, String(i)]) }),
  });
  assert.equal(r.status, 200);
  const body = (await r.json()) as { methodResponses: [string, Json, string][] };
  return body.methodResponses.map(([name, args]) => (name === 'error' ? { error: args } : args));
}

export const call = async (name: string, args: Record<string, unknown>): Promise<Json> =>
  (await calls([name, { accountId: aliceId, ...args }]))[0];

export const MESSAGE = (subject: string, body = 'Hello there, this is the body.') =>
  Buffer.from(
    `From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: ${subject}\r\n` +
      `Date: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.test>\r\n` +
      `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n`,
  );

export const MULTIPART = Buffer.from(
  'From: carol@example.test\r\nTo: alice@example.test\r\nSubject: with attachment\r\n' +
    'Date: Tue, 8 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n' +
    'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n' +
    '--b1\r\nContent-Type: application/octet-stream; name="a.bin"\r\nContent-Disposition: attachment; filename="a.bin"\r\n' +
    'Content-Transfer-Encoding: base64\r\n\r\nAAECAwQF\r\n--b1--\r\n',
);

/** Appends through IMAP; returns the Email id JMAP gives it (the newest Email in the account). */
export async function append(raw: Buffer, mailbox = 'INBOX', flags: string[] = []): Promise<string> {
  const ids = async () => (await call('Email/get', { ids: null, properties: ['id'] })).list.map((e: Json) => e.id);
  const before = new Set(await ids());
  await imap.append(mailbox, raw, flags);
  const id = (await ids()).find((i: string) => !before.has(i));
  assert.ok(id);
  return id;
}

export async function imapClient(): Promise<ImapFlow> {
  return imapflowClient(s.imapPort, ALICE);
}

/** Starts the server (HTTP on, an Archive mailbox) before the file's tests, stops it after. */
export function useEmailServer(): void {
  before(async () => {
    s = await startTestServer({ http: true });
    base = `http://127.0.0.1:${s.server.http[0]?.port}`;
    imap = await imapClient();
    await imap.mailboxCreate('Archive');
  });

  after(async () => {
    await imap?.logout().catch(() => {});
    await s?.stop();
  });
}
