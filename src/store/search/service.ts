// The full-text search of a store (Mailboxes.searchEmails): the search index (client.ts, in
// worker threads), its background indexer (indexer.ts), and the answer to a query: the
// matching emails the index holds and the emails appended since its cursor, read in one
// snapshot of the index, so that the caller, scanning that tail, misses nothing.

import type { AccountId } from '../../core/ids.ts';
import { LIMITS } from '../../core/limits.ts';
import type { Logger } from '../../core/log.ts';
import type { Mailboxes, TextCondition, TextSearchResult } from '../mailboxes.ts';
import { SearchClient } from './client.ts';
import { SearchIndexer } from './indexer.ts';
import { matchExpression } from './match.ts';

export interface SearchOptions {
  /** The search database ({state}/mailsearch.db); it may be deleted at any time. */
  readonly path: string;
}

export class SearchService {
  readonly #client: SearchClient;
  readonly #boxes: Mailboxes;
  readonly indexer: SearchIndexer;

  constructor(opts: SearchOptions, boxes: Mailboxes, accounts: () => Promise<string[]>, log?: Logger) {
    this.#client = new SearchClient(opts.path);
    this.#boxes = boxes;
    this.indexer = new SearchIndexer({ boxes, client: this.#client, accounts, log });
  }

  async search(account: AccountId, conditions: readonly TextCondition[]): Promise<TextSearchResult | null> {
    const expr = matchExpression(conditions);
    if (expr === null) return null;
    await this.#boxes.indexDeliveries(account);
    const { ids, dates, cursor } = await this.#client.search(account, expr.match);
    if (cursor === null) return null;
    const max = LIMITS.search.journalPage;
    const rows = await this.#boxes.accountChangesSince(account, cursor, max + 1);
    if (rows === null || rows.length > max) return null;
    const unindexed = new Set<string>();
    const expunged = new Set<string>();
    for (const r of rows) {
      if (r.emailId === null) continue;
      if (r.kind === 'append') unindexed.add(r.emailId);
      else if (r.kind === 'expunge') expunged.add(r.emailId);
    }
    // Expunged since the cursor: gone unless a copy is left (locate finds it).
    const left = new Set((await this.#boxes.locate(account, [...expunged])).map((l) => l.emailId));
    const gone = [...expunged].filter((id) => !left.has(id));
    return { ids, receivedAt: dates, unindexed: [...unindexed], gone };
  }

  /** The account is gone (its user deleted): its rows and position too. */
  forget(account: AccountId): Promise<void> {
    return this.#client.forget(account);
  }

  /** Emails indexed, all accounts. */
  count(): Promise<number> {
    return this.#client.count();
  }

  async close(): Promise<void> {
    await this.indexer.close();
    await this.#client.close();
  }
}
