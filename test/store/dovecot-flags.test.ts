// Messages delivered with flags (issue #16) as Dovecot reads them: the info letters in cur/ file
// names and the dovecot-keywords table must mean to Debian's Dovecot what they mean to us, and a
// keyword Dovecot added to the table must keep its letter when we add ours after it.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chown, lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { ImapFlow } from 'imapflow';
import type { AccountId } from '../../src/core/ids.ts';
import { silentLogger } from '../../src/core/log.ts';
import { sha512Crypt } from '../../src/directory/sha512-crypt.ts';
import { createMaildirStore } from '../../src/store/maildir/index.ts';
import { startDovecot } from '../harness/dovecot.ts';
import { spoolOf } from '../harness/store.ts';

const USER = 'user@example.test' as AccountId;
const PASSWORD = 'dovecot-pass-2';

/** Dovecot refuses mail access as root: the tree goes to nobody (as test/harness/dovecot.ts). */
async function giveToNobody(path: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  await chown(path, 65534, 65534);
  if ((await lstat(path)).isDirectory()) for (const n of await readdir(path)) await giveToNobody(join(path, n));
}

test('Dovecot reads the flags and keywords of messages we delivered with flags', async (t) => {
  const hash = sha512Crypt(PASSWORD, `$6$${randomBytes(12).toString('base64').replace(/[+/=]/g, '.')}`) as string;
  const dovecot = await startDovecot(`${USER}:{SHA512-CRYPT}${hash}::::::\n`);
  const work = await mkdtemp(join(tmpdir(), 'arcline-dovecot-flags-'));
  const store = createMaildirStore({
    root: dirname(dirname(dovecot.maildir(USER))),
    spoolDir: join(work, 'spool'),
    indexPath: join(work, 'mailindex.db'),
    log: silentLogger(),
  });
  const client = new ImapFlow({
    host: '127.0.0.1',
    port: dovecot.port,
    secure: false,
    auth: { user: USER, pass: PASSWORD },
    logger: false,
  });
  t.after(async () => {
    await client.logout().catch(() => {});
    await store.close();
    await dovecot.stop();
    await rm(work, { recursive: true, force: true });
  });
  const deliver = async (subject: string, mailbox: string, flags?: string[]) => {
    const msg = await spoolOf(store, `Subject: ${subject}\r\n`, '\r\nbody\r\n');
    try {
      await store.deliver([{ account: USER, mailbox, prefix: Buffer.alloc(0), ...(flags ? { flags } : {}) }], msg);
    } finally {
      await msg.dispose();
    }
    await giveToNobody(dirname(dovecot.maildir(USER)));
  };
  const flagsIn = async (mailbox: string) => {
    await client.mailboxOpen(mailbox);
    const out: Record<string, string[]> = {};
    for await (const m of client.fetch('1:*', { flags: true, envelope: true })) {
      out[m.envelope?.subject ?? ''] = [...(m.flags ?? [])].filter((f) => f !== '\\Recent').sort();
    }
    return out;
  };

  await store.createAccount(USER);
  await deliver('plain', 'INBOX');
  await deliver('seen', 'INBOX', ['\\Seen', 'Work', '$Label1']);
  await deliver('answered', 'INBOX', ['\\Answered', '\\Draft', '$Forwarded', '$Label1']);
  await deliver('filed', 'Lists.Dev', ['\\Flagged', 'Work']);
  await client.connect();
  // $Forwarded is stored as the letter P (flags.ts: mutt's "passed"), which Dovecot 2.3 does
  // not show as any IMAP flag: a difference of the store's mapping, not of delivery.
  assert.deepEqual(await flagsIn('INBOX'), {
    plain: [],
    seen: ['$Label1', 'Work', '\\Seen'],
    answered: ['$Label1', '\\Answered', '\\Draft'],
  });
  assert.deepEqual(await flagsIn('Lists.Dev'), { filed: ['Work', '\\Flagged'] });
  const st = await client.status('INBOX', { unseen: true });
  assert.ok(st);
  assert.equal(st.unseen, 2);

  // Dovecot adds a keyword to the table; ours comes after it and each keeps its letter.
  await client.mailboxOpen('INBOX');
  await client.messageFlagsAdd('1', ['FromDovecot']);
  await client.mailboxClose();
  await deliver('later', 'INBOX', ['Next', 'FromDovecot']);
  assert.deepEqual(await flagsIn('INBOX'), {
    plain: ['FromDovecot'],
    seen: ['$Label1', 'Work', '\\Seen'],
    answered: ['$Label1', '\\Answered', '\\Draft'],
    later: ['FromDovecot', 'Next'],
  });
});
