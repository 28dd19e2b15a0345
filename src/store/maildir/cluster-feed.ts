// Other nodes' changes reaching this node (issue #18, docs/cluster.md "Mailboxes across
// nodes"). On a shared index every commit publishes (account, journal position) by NOTIFY
// (db/notify.ts); a node holds a subscription for each account it has a loaded mailbox or an
// account watcher (JMAP push) of, and on a notification its open mailboxes catch up with the
// journal (maildir/catch-up.ts) and its account watchers are told, as for a local commit.
// Nothing is kept for other accounts: their notifications are dropped by the feed.

import type { AccountId } from '../../core/ids.ts';

/** Where a node hears of commits to a shared index (db/notify.ts Notifier has this shape): a
 *  call per account after commits of any node (coalesced), and a resync after notifications may
 *  have been lost (the listening session was down). */
export interface ChangeFeed {
  watchAccount(account: AccountId, listener: (modseq: number) => void): () => void;
  onResync(hook: () => void): () => void;
}

/** Counted subscriptions to a ChangeFeed, one feed subscription per account. */
export class FeedSubscriptions {
  readonly #feed: ChangeFeed;
  readonly #changed: (account: AccountId) => void;
  readonly #held = new Map<AccountId, { count: number; stop: () => void }>();
  readonly #stopResync: () => void;

  constructor(feed: ChangeFeed, changed: (account: AccountId) => void) {
    this.#feed = feed;
    this.#changed = changed;
    // After a gap every held account may have changed: each catches up once.
    this.#stopResync = feed.onResync(() => {
      for (const account of this.#held.keys()) changed(account);
    });
  }

  /** Subscribes to the account's changes until the returned function is called (once). */
  hold(account: AccountId): () => void {
    let h = this.#held.get(account);
    if (!h) {
      h = { count: 0, stop: this.#feed.watchAccount(account, () => this.#changed(account)) };
      this.#held.set(account, h);
    }
    const held = h;
    held.count++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--held.count > 0) return;
      held.stop();
      if (this.#held.get(account) === held) this.#held.delete(account);
    };
  }

  close(): void {
    this.#stopResync();
    for (const h of this.#held.values()) h.stop();
    this.#held.clear();
  }
}

/** A file a delivery made in a mailbox: in new/, or in cur/ when delivered with flags. */
export interface DeliveredFile {
  readonly sub: 'new' | 'cur';
  readonly name: string;
}

/** Shared index: a delivery is indexed at once by the node that made it (no other node can see
 *  the file by inotify), so every node's sessions hear of it by the notification of that commit.
 *  Deliveries to one mailbox that arrive while it is being indexed wait and go together (one
 *  lock, one transaction); null stands for "list new/" (a delivery whose names are not known). */
export class DeliveryBatches {
  readonly #run: (account: AccountId, name: string, files: DeliveredFile[] | null) => Promise<void>;
  readonly #waiting = new Map<string, { account: AccountId; name: string; files: DeliveredFile[] | null }>();
  /** Key -> the indexing under way (resolves when no batch of the key is left). */
  readonly #running = new Map<string, Promise<void>>();

  constructor(run: (account: AccountId, name: string, files: DeliveredFile[] | null) => Promise<void>) {
    this.#run = run;
  }

  add(account: AccountId, name: string, file: DeliveredFile | null): void {
    const key = `${account}\0${name}`;
    const had = this.#waiting.get(key);
    const files = (had && had.files === null) || file === null ? null : [...(had?.files ?? []), file];
    this.#waiting.set(key, { account, name, files });
    if (this.#running.has(key)) return;
    this.#running.set(key, this.#next(key));
  }

  /** Resolves once this node's deliveries to the mailbox made so far are indexed (or failed):
   *  a session of this node then sees what this node delivered (read your own writes). */
  settled(account: AccountId, name: string): Promise<void> {
    return this.#running.get(`${account}\0${name}`) ?? Promise.resolve();
  }

  /** settled() for every mailbox of the account. */
  async settledAccount(account: AccountId): Promise<void> {
    const prefix = `${account}\0`;
    await Promise.all([...this.#running].filter(([k]) => k.startsWith(prefix)).map(([, p]) => p));
  }

  async #next(key: string): Promise<void> {
    for (let batch = this.#waiting.get(key); batch; batch = this.#waiting.get(key)) {
      this.#waiting.delete(key);
      await this.#run(batch.account, batch.name, batch.files).catch(() => {});
    }
    this.#running.delete(key);
  }
}
