// Helpers of the EmailSubmission tests (submission.test.ts, submission-queue.test.ts): JMAP
// calls over real HTTP, and drafts APPENDed over IMAP (imapflow) with their Email ids.

import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AccountId } from '../../src/core/ids.ts';
import { emailId as emailIdOf } from '../../src/store/ids.ts';
import { imapflowClient } from '../harness/imap-client.ts';
import type { TestServer } from '../harness/server.ts';

export const CORE = 'urn:ietf:params:jmap:core';
export const SUBMISSION = 'urn:ietf:params:jmap:submission';
export const auth = (user: string) => `Basic ${Buffer.from(`${user}:secret-password`).toString('base64')}`;

/** The JMAP API at `base` as `user`: the method responses. */
// biome-ignore lint/suspicious/noExplicitAny: JSON answers of many shapes, asserted field by field
export async function jmapCall(base: string, user: string, using: string[], methodCalls: unknown[]): Promise<any[]> {
  const r = await fetch(`${base}/jmap/api`, {
    method: 'POST',
    headers: { authorization: auth(user), 'content-type': 'application/json' },
    body: JSON.stringify({ using: [CORE, ...using], methodCalls }),
  });
  assert.equal(r.status, 200);
  return ((await r.json()) as { methodResponses: unknown[] }).methodResponses as never;
}

/** A draft APPENDed over IMAP into the account's Drafts; its Email id and the ids of Drafts and
 *  Sent. */
export async function appendDraft(
  s: TestServer,
  account: AccountId,
  raw: string,
): Promise<{ emailId: string; drafts: string; sent: string }> {
  const c = await imapflowClient(s.imapPort, account);
  let uid: number;
  try {
    const r = await c.append('Drafts', raw, ['\\Draft']);
    assert.ok(r && typeof r.uid === 'number');
    uid = r.uid;
  } finally {
    await c.logout();
  }
  // The Email id of the file APPENDed (store/ids.ts: from its base name; the file found by its
  // subject), without a second store writing the index.
  const dir = s.mailboxDir(account, 'Drafts');
  const names = [...(await readdir(join(dir, 'cur'))), ...(await readdir(join(dir, 'new')))];
  let base: string | null = null;
  for (const n of names) {
    const where = join(dir, (await readdir(join(dir, 'cur'))).includes(n) ? 'cur' : 'new', n);
    if ((await readFile(where)).toString().includes(raw.slice(raw.indexOf('Subject:'), raw.indexOf('\r\nDate:'))))
      base = n.split(':2,')[0] ?? null;
  }
  assert.ok(base, `uid ${uid}`);
  const emailId = emailIdOf(base);
  const list = await s.admin.store.accounts.list(account, { ids: true });
  const id = (name: string) => list.find((b) => b.name === name)?.id as string;
  return { emailId, drafts: id('Drafts'), sent: id('Sent') };
}
