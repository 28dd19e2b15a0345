// Push of the Mail data types (RFC 8620 §7.1): while an account has listeners on the PushHub
// (an EventSource, a verified PushSubscription), the store's watchAccount tells of every
// change of its journal (IMAP sessions, JMAP methods, deliveries of the SMTP threads); a few
// ms later (LIMITS.jmap.pushDebounceMs, so a burst is one event) the new state is published
// for Mailbox, Email and Thread (one journal position for all three), unless it is the state
// already published.

import type { AccountId } from '../../core/ids.ts';
import { LIMITS } from '../../core/limits.ts';
import type { MailDeps } from './mailbox.ts';

export const MAIL_TYPES = ['Mailbox', 'Email', 'Thread'] as const;

export function startMailPush({ store, hub }: MailDeps): void {
  hub.setSource((account: AccountId) => {
    let timer: NodeJS.Timeout | null = null;
    let last: number | null = null;
    let stopped = false;
    // The state when the watch starts: a listener is told only of later changes.
    store.accountState(account).then(
      (s) => {
        last ??= s;
      },
      () => {},
    );
    const publish = async () => {
      timer = null;
      const state = await store.accountState(account);
      if (stopped || state === last) return;
      last = state;
      const s = String(state);
      hub.publish(account, Object.fromEntries(MAIL_TYPES.map((t) => [t, s])));
    };
    const stop = store.watchAccount(account, () => {
      if (timer || stopped) return;
      timer = setTimeout(() => publish().catch(() => {}), LIMITS.jmap.pushDebounceMs);
    });
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      stop();
    };
  });
}
