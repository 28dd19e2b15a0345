// The account-level notifications of MaildirAccounts (Mailboxes.watchAccount): listeners per
// account, told after each commit that may have advanced the account's journal, and the
// mailboxes that received a delivery no session has indexed yet (Mailboxes.indexDeliveries).

import type { AccountId } from '../../core/ids.ts';
import type { Logger } from '../../core/log.ts';

export class AccountWatch {
  readonly #listeners = new Map<AccountId, Set<() => void>>();
  /** Account -> canonical names of mailboxes with deliveries not indexed yet (at most one
   *  entry per folder of the account). */
  readonly #delivered = new Map<AccountId, Set<string>>();
  readonly #log: Logger | undefined;
  /** Told of every account's changes (the search indexer); not of deliveries not indexed yet,
   *  which would make it index the mailbox (they come when a session or JMAP opens it). */
  onAny: ((account: AccountId) => void) | null = null;

  constructor(log?: Logger) {
    this.#log = log;
  }

  watch(account: AccountId, listener: () => void): () => void {
    let set = this.#listeners.get(account);
    if (!set) {
      set = new Set();
      this.#listeners.set(account, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.#listeners.get(account) === set) this.#listeners.delete(account);
    };
  }

  watched(account: AccountId): boolean {
    return this.#listeners.has(account);
  }

  /** Tells the account's listeners (a listener that throws is logged, the others still told). */
  changed(account: AccountId): void {
    this.onAny?.(account);
    for (const l of this.#listeners.get(account) ?? []) {
      try {
        l();
      } catch (e) {
        this.#log?.warn({ err: String(e) }, 'store: account watcher failed');
      }
    }
  }

  delivered(account: AccountId, mailbox: string): void {
    let names = this.#delivered.get(account);
    if (!names) {
      names = new Set();
      this.#delivered.set(account, names);
    }
    names.add(mailbox);
  }

  /** The mailboxes with deliveries not indexed yet, forgotten here. */
  takeDelivered(account: AccountId): string[] {
    const names = this.#delivered.get(account);
    this.#delivered.delete(account);
    return names ? [...names] : [];
  }
}
