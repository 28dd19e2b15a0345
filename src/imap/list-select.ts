// Which mailboxes LIST and LSUB return, and with which attributes: LIST-EXTENDED selection
// (RFC 5258 §3: SUBSCRIBED, RECURSIVEMATCH with CHILDINFO, \NonExistent for subscribed names
// without a mailbox), RETURN (SUBSCRIBED CHILDREN) (RFC 5258 §4), SPECIAL-USE (RFC 6154 §5.3),
// and LSUB's \Noselect parents (RFC 3501 §6.3.9). Pure: the entries come from the store, the
// patterns are compiled (list-pattern.ts); one pass over the entries plus O(entries x depth).

import type { MailboxListEntry } from '../store/mailboxes.ts';
import { type CompiledPattern, matchPattern } from './list-pattern.ts';

export interface ListSelection {
  readonly select: readonly string[];
  readonly return: readonly string[];
}

export interface ListedMailbox {
  readonly entry: MailboxListEntry;
  readonly attributes: string[];
  /** RFC 5258 §3.5: (CHILDINFO ("SUBSCRIBED")) for a mailbox returned because of a subscribed
   *  descendant the patterns do not match. */
  readonly childInfo: boolean;
}

/** The mailboxes LIST returns, in the entries' order. */
export function selectList(
  entries: readonly MailboxListEntry[],
  patterns: readonly CompiledPattern[],
  opts: ListSelection,
  delimiter: string,
): ListedMailbox[] {
  const matches = (name: string) => patterns.some((p) => matchPattern(p, name));
  const subscribedOnly = opts.select.includes('SUBSCRIBED');
  // RFC 6154 §5.3: LIST (SPECIAL-USE) selects the mailboxes that have a special use.
  const specialOnly = opts.select.includes('SPECIAL-USE');
  const showSubscribed = subscribedOnly || opts.return.includes('SUBSCRIBED');
  // RFC 5258 §3.5: with RECURSIVEMATCH, a matching mailbox is also returned (with CHILDINFO)
  // when a descendant meets the selection criteria but does not match the patterns itself.
  const withSubscribedDescendant = new Set<string>();
  if (subscribedOnly && opts.select.includes('RECURSIVEMATCH')) {
    for (const e of entries) {
      if (!e.subscribed || matches(e.name)) continue;
      for (const parent of ancestors(e.name, delimiter)) withSubscribedDescendant.add(parent);
    }
  }
  const out: ListedMailbox[] = [];
  for (const e of entries) {
    if (!matches(e.name)) continue;
    // RFC 5258 §3.1: a subscribed name without a mailbox is selected by SUBSCRIBED only.
    if (e.nonexistent && !subscribedOnly) continue;
    const childInfo = withSubscribedDescendant.has(e.name);
    if (subscribedOnly && !e.subscribed && !childInfo) continue;
    if (specialOnly && !e.specialUse) continue;
    const attributes = [
      // RFC 5258 §3.4: \NonExistent implies \Noselect, which is then not repeated.
      e.nonexistent ? '\\NonExistent' : e.noselect ? '\\Noselect' : null,
      e.nonexistent ? null : e.hasChildren ? '\\HasChildren' : '\\HasNoChildren',
      e.specialUse,
      showSubscribed && e.subscribed ? '\\Subscribed' : null,
    ].filter((a): a is string => a !== null);
    out.push({ entry: e, attributes, childInfo });
  }
  return out;
}

/** LSUB (RFC 3501 §6.3.9): the subscribed names that match; and when "%" leaves a subscribed
 *  name out but matches one of its superiors that is not subscribed itself, that superior with
 *  \Noselect ("foo" for a subscribed "foo/bar" and the pattern "%"). */
export function selectLsub(
  entries: readonly MailboxListEntry[],
  pattern: CompiledPattern,
  delimiter: string,
): { name: string; noselect: boolean }[] {
  const subscribed = new Set(entries.filter((e) => e.subscribed).map((e) => e.name));
  const superiors = new Set<string>();
  for (const name of subscribed) {
    if (matchPattern(pattern, name)) continue;
    for (const parent of ancestors(name, delimiter)) {
      if (!subscribed.has(parent) && matchPattern(pattern, parent)) superiors.add(parent);
    }
  }
  const out: { name: string; noselect: boolean }[] = [];
  const seen = new Set<string>();
  for (const e of entries) {
    if (e.subscribed && matchPattern(pattern, e.name)) out.push({ name: e.name, noselect: e.noselect });
    else if (superiors.has(e.name)) out.push({ name: e.name, noselect: true });
    seen.add(e.name);
  }
  // A superior that is neither a mailbox nor a subscription (only the subscribed name exists).
  for (const name of [...superiors].sort()) if (!seen.has(name)) out.push({ name, noselect: true });
  return out;
}

/** "a.b.c" -> "a", "a.b". */
function ancestors(name: string, delimiter: string): string[] {
  const out: string[] = [];
  for (let i = name.indexOf(delimiter); i > 0; i = name.indexOf(delimiter, i + 1)) out.push(name.slice(0, i));
  return out;
}
