// The implicit Email/set of EmailSubmission/set (RFC 8621 §7.5 onSuccessUpdateEmail,
// onSuccessDestroyEmail), done with store operations directly: keywords as IMAP flags on every
// copy (storeFlags), mailboxIds by copyTo (a copy keeps the Email id) and expunge. Email/set
// itself (another part of issue #17) is not called: this covers the patches clients send
// after a submission ("mailboxIds/{Sent}": true, "mailboxIds/{Drafts}": null,
// "keywords/$draft": null, "keywords/$seen": true; or whole keywords / mailboxIds objects).

import type { AccountId } from '../../core/ids.ts';
import type { Mailboxes } from '../../store/mailboxes.ts';
import { SetFailure } from '../core/errors.ts';

/** RFC 8621 §4.1.1: the keywords that are IMAP system flags. */
const SYSTEM: Record<string, string> = {
  $seen: '\\Seen',
  $flagged: '\\Flagged',
  $answered: '\\Answered',
  $draft: '\\Draft',
};
const flagOf = (keyword: string) => SYSTEM[keyword.toLowerCase()] ?? keyword.toLowerCase();

const PLAIN_KEYWORD = /^[\x21-\x7e]{1,255}$/;

/** Applies `patch` to the email; SetFailure for what it cannot apply. */
export async function updateEmail(
  accounts: Mailboxes,
  account: AccountId,
  emailId: string,
  patch: Record<string, unknown>,
): Promise<void> {
  const [located] = await accounts.locate(account, [emailId]);
  if (!located) throw new SetFailure('notFound', `no email ${emailId}`);
  const boxes = await accounts.list(account, { ids: true });
  const nameOf = (id: string) => boxes.find((b) => b.id === id)?.name ?? null;
  const add = new Set<string>();
  const remove = new Set<string>();
  const addBoxes = new Set<string>();
  const removeBoxes = new Set<string>();
  const currentBoxes = new Set(located.copies.map((c) => c.mailboxId));
  const currentFlags = new Set(located.copies[0]?.flags ?? []);
  for (const [path, value] of Object.entries(patch)) {
    const [prop, key, ...more] = path.split('/');
    if (more.length > 0) throw new SetFailure('invalidPatch', `cannot patch ${path}`);
    if (prop === 'keywords' && key !== undefined) {
      if (!PLAIN_KEYWORD.test(key)) throw new SetFailure('invalidProperties', `bad keyword ${key}`, ['keywords']);
      (value === true ? add : remove).add(flagOf(key));
    } else if (prop === 'mailboxIds' && key !== undefined) {
      if (value === true) addBoxes.add(key);
      else removeBoxes.add(key);
    } else if (prop === 'keywords' && typeof value === 'object' && value !== null) {
      const want = new Set(Object.keys(value).map(flagOf));
      for (const f of want) add.add(f);
      for (const f of currentFlags) if (f !== '\\Deleted' && f !== '\\Recent' && !want.has(f)) remove.add(f);
    } else if (prop === 'mailboxIds' && typeof value === 'object' && value !== null) {
      const want = new Set(Object.keys(value));
      for (const b of want) addBoxes.add(b);
      for (const b of currentBoxes) if (!want.has(b)) removeBoxes.add(b);
    } else throw new SetFailure('invalidProperties', `cannot change ${path} here`, [prop ?? path]);
  }
  for (const b of [...addBoxes, ...removeBoxes])
    if (nameOf(b) === null) throw new SetFailure('invalidProperties', `no mailbox ${b}`, ['mailboxIds']);
  const finalBoxes = new Set([...currentBoxes, ...addBoxes].filter((b) => !removeBoxes.has(b)));
  if (finalBoxes.size === 0) throw new SetFailure('invalidProperties', 'an email must be in a mailbox', ['mailboxIds']);

  // Keywords on every copy, then the new copies (they take the flags), then the removals.
  for (const c of located.copies) {
    await withBox(accounts, account, c.mailbox, async (box) => {
      if (add.size > 0) await box.storeFlags([c.uid], 'add', [...add]);
      if (remove.size > 0) await box.storeFlags([c.uid], 'remove', [...remove]);
    });
  }
  const source = located.copies[0];
  for (const b of addBoxes) {
    if (currentBoxes.has(b) || !source) continue;
    const target = await accounts.open(account, nameOf(b) as string);
    try {
      await withBox(accounts, account, source.mailbox, (box) => box.copyTo([source.uid], target));
    } finally {
      accounts.release(account, target);
    }
  }
  for (const c of located.copies) {
    if (!removeBoxes.has(c.mailboxId)) continue;
    await withBox(accounts, account, c.mailbox, (box) => box.expunge([c.uid]));
  }
}

/** Removes every copy of the email (onSuccessDestroyEmail). */
export async function destroyEmail(accounts: Mailboxes, account: AccountId, emailId: string): Promise<void> {
  const [located] = await accounts.locate(account, [emailId]);
  if (!located) throw new SetFailure('notFound', `no email ${emailId}`);
  for (const c of located.copies) await withBox(accounts, account, c.mailbox, (box) => box.expunge([c.uid]));
}

async function withBox<T>(
  accounts: Mailboxes,
  account: AccountId,
  name: string,
  fn: (box: Awaited<ReturnType<Mailboxes['open']>>) => Promise<T>,
): Promise<T> {
  const box = await accounts.open(account, name);
  try {
    return await fn(box);
  } finally {
    accounts.release(account, box);
  }
}
