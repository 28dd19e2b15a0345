// Opening an email's bytes by where it is (Mailboxes.locate): the first copy that opens, through
// the mailbox interfaces only. JMAP (Email/get, the scan of Email/query) and the search indexer
// (search/indexer.ts) read messages this way.

import type { AccountId } from '../core/ids.ts';
import type { LocatedEmail, Mailboxes, MessageBody } from './mailboxes.ts';

export async function openLocated(
  mailboxes: Mailboxes,
  account: AccountId,
  located: LocatedEmail,
): Promise<{ body: MessageBody; done: () => Promise<void> } | null> {
  for (const copy of located.copies) {
    const mbox = await mailboxes.open(account, copy.mailbox).catch(() => null);
    if (!mbox) continue;
    let body: MessageBody | null = null;
    try {
      if (!mbox.meta(copy.uid)) await mbox.refresh();
      body = await mbox.openMessage(copy.uid);
    } finally {
      if (!body) mailboxes.release(account, mbox);
    }
    if (!body) continue;
    const opened = body;
    return {
      body: opened,
      done: async () => {
        await opened.close();
        mailboxes.release(account, mbox);
      },
    };
  }
  return null;
}
