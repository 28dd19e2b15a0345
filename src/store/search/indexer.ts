// The search indexer: keeps the search index (search/db.ts) following each account's journal
// (Mailboxes.accountChangesSince, docs/architecture.md §7) in the background, never in the
// delivery path. An account is looked at `debounceMs` after a change (changes meanwhile join
// it): the emails appended since its cursor are read (the first copy that opens), their text
// extracted by mime/search-text.ts searchFields and written with
// the new cursor in one transaction per batch; an email whose last copy went is removed. After
// each batch it pauses for LIMITS.search.pauseFactor times the batch's time (the text is parsed
// on the main thread; the SQLite work is in the search worker threads). An
// account without a cursor (a new search database, the file deleted) or whose cursor the
// journal no longer reaches (pruned, the mail index rebuilt) gets a full pass: every email of
// the account not indexed yet, then the rows of emails that are gone dropped, then the cursor
// set to the journal position read before the pass (what changed during it is replayed).
// A batch written is never lost work: after a restart the pass skips what is indexed.

import type { AccountId } from '../../core/ids.ts';
import { LIMITS } from '../../core/limits.ts';
import type { Logger } from '../../core/log.ts';
import { searchFields } from '../../mime/search-text.ts';
import { openLocated } from '../located.ts';
import type { LocatedEmail, Mailboxes } from '../mailboxes.ts';
import type { SearchClient } from './client.ts';
import type { SearchDocument } from './db.ts';

export interface IndexerDeps {
  readonly boxes: Mailboxes;
  readonly client: SearchClient;
  /** Every account with mailboxes (looked at once at start). */
  readonly accounts: () => Promise<string[]>;
  readonly log?: Logger;
}

/** Messages read at once while indexing (their reads overlap; parsing is on this thread). */
const PARALLEL = 4;

export class SearchIndexer {
  readonly #d: IndexerDeps;
  readonly #dirty = new Set<AccountId>();
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #closed = false;
  #started = false;
  /** Messages indexed since start (benchmarks, logs). */
  indexed = 0;

  constructor(deps: IndexerDeps) {
    this.#d = deps;
  }

  /** Looks at every account once (catch-up after a restart, or a full pass). */
  async start(): Promise<void> {
    this.#started = true;
    for (const a of await this.#d.accounts()) this.#dirty.add(a as AccountId);
    this.#kick(0);
  }

  /** The account's journal may have advanced, or it had deliveries not indexed yet. */
  changed(account: AccountId): void {
    if (this.#closed || !this.#started) return;
    this.#dirty.add(account);
    this.#kick(LIMITS.search.debounceMs);
  }

  /** Resolves once every account known dirty is indexed (tests, benchmarks). */
  async idle(): Promise<void> {
    while (!this.#closed && (this.#running || this.#dirty.size > 0)) {
      if (!this.#running) this.#kick(0);
      await this.#running;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  #kick(delay: number): void {
    if (this.#running || this.#closed) return;
    if (this.#timer && delay > 0) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#running = this.#run().finally(() => {
        this.#running = null;
        if (this.#dirty.size > 0) this.#kick(LIMITS.search.debounceMs);
      });
    }, delay);
    this.#timer.unref();
  }

  async #run(): Promise<void> {
    while (!this.#closed && this.#dirty.size > 0) {
      const account = this.#dirty.values().next().value as AccountId;
      this.#dirty.delete(account);
      try {
        await this.#catchUp(account);
      } catch (e) {
        if (this.#closed) return;
        // Tried again at the account's next change (or the next start).
        this.#d.log?.warn({ account, err: String(e) }, 'search: indexing failed');
      }
    }
  }

  async #catchUp(account: AccountId): Promise<void> {
    const { boxes, client } = this.#d;
    await boxes.indexDeliveries(account);
    let cursor = await client.cursor(account);
    if (cursor === null) return this.#fullPass(account);
    for (;;) {
      if (this.#closed) return;
      const page = LIMITS.search.journalPage;
      const rows = await boxes.accountChangesSince(account, cursor, page);
      if (rows === null) return this.#fullPass(account);
      const last = rows.at(-1);
      if (!last) return;
      const appended = new Set<string>();
      const expunged = new Set<string>();
      for (const r of rows) {
        if (r.emailId === null) continue;
        if (r.kind === 'append') appended.add(r.emailId);
        else if (r.kind === 'expunge') expunged.add(r.emailId);
      }
      const have = new Set(await client.indexed(account, [...appended]));
      const fresh = [...appended].filter((id) => !have.has(id));
      // An expunged email stays while a copy of it does (locate finds it).
      const still = new Set((await boxes.locate(account, [...expunged])).map((l) => l.emailId));
      const removed = [...expunged].filter((id) => !still.has(id) && !appended.has(id));
      await this.#index(account, fresh, removed, last.aseq);
      cursor = last.aseq;
      if (rows.length < page) return;
    }
  }

  async #fullPass(account: AccountId): Promise<void> {
    const { boxes, client } = this.#d;
    const state = await boxes.accountState(account);
    const all = await boxes.accountMessages(account, {
      sort: 'receivedAt',
      descending: true,
      position: 0,
      limit: Number.MAX_SAFE_INTEGER,
    });
    const missing: string[] = [];
    for (let i = 0; i < all.ids.length; i += 1000) {
      const chunk = all.ids.slice(i, i + 1000);
      const have = new Set(await client.indexed(account, chunk));
      for (const id of chunk) if (!have.has(id)) missing.push(id);
    }
    this.#d.log?.info({ account, emails: all.ids.length, missing: missing.length }, 'search: indexing the account');
    await this.#index(account, missing, [], null);
    if (this.#closed) return;
    await client.retain(account, all.ids);
    await client.write(account, [], [], state);
    // What changed during the pass: the account's next round replays it.
    this.#dirty.add(account);
  }

  /** Indexes the emails `ids` (those still there) in batches, then removes `removed` and sets
   *  the cursor with the last batch. */
  async #index(account: AccountId, ids: readonly string[], removed: readonly string[], cursor: number | null) {
    const { client } = this.#d;
    let i = 0;
    do {
      if (this.#closed) return;
      const started = performance.now();
      const docs: SearchDocument[] = [];
      let chars = 0;
      while (i < ids.length && docs.length < LIMITS.search.batchMessages && chars < LIMITS.search.maxBatchChars) {
        const chunk = ids.slice(i, i + PARALLEL);
        i += chunk.length;
        const located = await this.#d.boxes.locate(account, chunk);
        for (const d of await Promise.all(located.map((l) => this.#document(account, l)))) {
          if (!d) continue;
          docs.push(d);
          chars += d.body.length;
        }
      }
      const done = i >= ids.length;
      await client.write(account, docs, done ? removed : [], done ? cursor : null);
      this.indexed += docs.length;
      // The duty cycle: parsing runs on this thread; delivery and the protocols come first.
      if (docs.length > 0) await this.#pause((performance.now() - started) * LIMITS.search.pauseFactor);
    } while (i < ids.length);
  }

  #pause(ms: number): Promise<void> {
    if (this.#closed || ms < 1) return Promise.resolve();
    return new Promise((resolve) => setTimeout(resolve, Math.min(ms, 5000)).unref());
  }

  /** What is indexed of one email; null when no copy opens (gone meanwhile) or it cannot be
   *  read (logged; text conditions then do not find it). */
  async #document(account: AccountId, l: LocatedEmail): Promise<SearchDocument | null> {
    const m = await openLocated(this.#d.boxes, account, l).catch(() => null);
    if (!m) return null;
    try {
      return { emailId: l.emailId, receivedAt: l.internalDate.getTime(), ...(await searchFields(m.body, m.body.size)) };
    } catch (e) {
      this.#d.log?.warn({ account, email: l.emailId, err: String(e) }, 'search: message not indexed');
      return null;
    } finally {
      await m.done();
    }
  }
}
