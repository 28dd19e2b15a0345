// The search index as the server uses it (search/db.ts in worker threads, search/worker.ts):
// writes (the indexer's batches) go to one thread, queries to another, so a batch being
// written never holds up a query. A query issued after a write resolved sees it.

import { ArclineError } from '../../core/errors.ts';
import { Lane, workerUrl } from '../worker-lane.ts';
import type { SearchDocument, SearchIndex } from './db.ts';

export class SearchClient {
  readonly #writer: Lane;
  readonly #reader: Lane;
  #closed = false;

  constructor(path: string) {
    const url = workerUrl('worker', import.meta.url);
    this.#writer = new Lane(url, path, 'search index');
    this.#reader = new Lane(url, path, 'search index');
  }

  #call<K extends 'cursor' | 'indexed' | 'write' | 'retain' | 'search' | 'count' | 'forget'>(
    lane: Lane,
    op: K,
    ...args: Parameters<SearchIndex[K]>
  ): Promise<ReturnType<SearchIndex[K]>> {
    if (this.#closed) return Promise.reject(new ArclineError('TEMPORARY', 'search index is closed'));
    return lane.call(op, args);
  }

  async #read<K extends 'cursor' | 'indexed' | 'search' | 'count'>(
    op: K,
    ...args: Parameters<SearchIndex[K]>
  ): Promise<ReturnType<SearchIndex[K]>> {
    // The writer opens first: it creates and migrates the database the reader then opens.
    await this.#writer.ready();
    return this.#call(this.#reader, op, ...args);
  }

  cursor(account: string): Promise<number | null> {
    return this.#read('cursor', account);
  }
  indexed(account: string, ids: readonly string[]): Promise<string[]> {
    return this.#read('indexed', account, ids);
  }
  search(account: string, match: string | null): Promise<{ ids: string[]; dates: number[]; cursor: number | null }> {
    return this.#read('search', account, match);
  }
  count(): Promise<number> {
    return this.#read('count');
  }
  write(account: string, docs: readonly SearchDocument[], removed: readonly string[], cursor: number | null) {
    return this.#call(this.#writer, 'write', account, docs, removed, cursor);
  }
  forget(account: string): Promise<void> {
    return this.#call(this.#writer, 'forget', account);
  }
  retain(account: string, keep: readonly string[]): Promise<number> {
    return this.#call(this.#writer, 'retain', account, keep);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([this.#writer.close(), this.#reader.close()]);
  }
}
