// The Maildir MailStore (delivery side). Durability contract: see src/store/types.ts.
// For each target: write tmp/<unique> (O_EXCL) -> fsync -> close; then rename every copy into
// new/ and fsync each new/ directory once (group commit, dirsync.ts). A reader (IMAP, Dovecot,
// mutt) only ever sees complete files: a file appears in new/ by an atomic rename after its
// data is on disk. On any failure every copy made so far is removed and TEMPORARY is thrown.
// A copy delivered with flags (Sieve imap4flags, fileinto :flags) goes into cur/ with its info
// ":2,<letters>" instead (the Maildir spec: cur/ holds messages whose info is set; Dovecot's
// LDA does the same), keywords through the mailbox's dovecot-keywords table (flags.ts); the
// mailbox indexes it like any new file, with those flags.

import { mkdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ArclineError, errorMessage } from '../../core/errors.ts';
import type { AccountId } from '../../core/ids.ts';
import { LIMITS } from '../../core/limits.ts';
import type { Logger } from '../../core/log.ts';
import type { ImportedMailbox, ImportOptions } from '../import.ts';
import type { MailIndexBackend } from '../index/backend.ts';
import { IndexClient } from '../index/client.ts';
import type { MessageStore } from '../mailboxes.ts';
import { deliveryFlags } from '../names.ts';
import { type SearchOptions, SearchService } from '../search/service.ts';
import { Spool } from '../spool.ts';
import type { DeliveredCopy, DeliveryTarget, SpooledMessage, SpoolWriter } from '../types.ts';
import { MaildirAccounts } from './account.ts';
import type { ChangeFeed } from './cluster-feed.ts';
import { DirSyncer } from './dirsync.ts';
import { writeDurably } from './durable.ts';
import { addKeywords, flagsToLetters } from './flags.ts';
import { type ImportResult, importMailbox } from './import.ts';
import { accountDir, DEFAULT_FOLDERS, folderDir, isInbox, LayoutError, mailboxDir } from './layout.ts';
import { uniqueBase, withSize } from './naming.ts';
import { probeWritable } from './probe.ts';
import { QuotaUsage } from './quota.ts';

export interface MaildirStoreOptions {
  readonly root: string;
  readonly spoolDir: string;
  /** The mail index database ({state}/mailindex.db), opened (IndexClient) unless `index`. */
  readonly indexPath: string;
  /** The mail index to use instead (index/backend.ts: PostgresMailIndex on a cluster, made
   *  with this store's root); the store closes it with itself. */
  readonly index?: MailIndexBackend;
  /** The full-text search index (store/search/): none without it (text conditions are then
   *  answered by reading the messages). */
  readonly search?: SearchOptions;
  readonly log: Logger;
  /** With a shared index (a cluster): where this node hears of other nodes' commits
   *  (db/notify.ts Notifier; maildir/cluster-feed.ts). */
  readonly feed?: ChangeFeed;
}

export class MaildirStore implements MessageStore {
  readonly #root: string;
  readonly #log: Logger;
  readonly #spool: Spool;
  readonly #syncer = new DirSyncer();
  /** Mailbox directories known to exist with tmp/ new/ cur/ (saves a stat per delivery). */
  readonly #known = new Set<string>();
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #indexPath: string;
  readonly #given: MailIndexBackend | undefined;
  #index: MailIndexBackend | null = null;
  #accounts: MaildirAccounts | null = null;
  readonly #searchOpts: SearchOptions | undefined;
  readonly #feed: ChangeFeed | undefined;
  #search: SearchService | null = null;
  /** Storage used per account (quotas). */
  readonly quota: QuotaUsage;

  constructor(opts: MaildirStoreOptions) {
    this.#root = opts.root;
    this.quota = new QuotaUsage(opts.root);
    this.#log = opts.log;
    this.#indexPath = opts.indexPath;
    this.#given = opts.index;
    this.#searchOpts = opts.search;
    this.#feed = opts.feed;
    this.#spool = new Spool(opts.spoolDir, LIMITS.store.spoolMemoryBytes);
  }

  /** The IMAP side: mailboxes, index, flags. Opened on first use (the CLI never needs it). */
  get accounts(): MaildirAccounts {
    if (!this.#accounts) {
      this.#index = this.#given ?? new IndexClient(this.#indexPath, this.#root);
      this.#accounts = new MaildirAccounts(this.#root, this.#index, this.#syncer, this.#log, this.#feed);
      if (this.#searchOpts) {
        const index = this.#index;
        this.#search = new SearchService(this.#searchOpts, this.#accounts, () => index.accounts(), this.#log);
        this.#accounts.attachSearch(this.#search);
      }
    }
    return this.#accounts;
  }

  /** Brings in a mailbox from another server with its UIDVALIDITY, UIDs and flags
   *  (store/import.ts; `arcline import dovecot`). */
  importMailbox(account: AccountId, mailbox: ImportedMailbox, opts: ImportOptions = {}): Promise<ImportResult> {
    void this.accounts; // opens the index
    const index = this.#index as MailIndexBackend;
    return importMailbox({ root: this.#root, index, syncer: this.#syncer }, account, mailbox, opts);
  }

  /** Opens the mail index now (see MailIndexBackend.open) and starts the search indexer (it
   *  catches up with every account in the background); the server calls it at start. */
  async openIndex(): Promise<void> {
    void this.accounts;
    await this.#index?.open();
    this.#search?.indexer.start().catch((e: unknown) => this.#log.warn({ err: String(e) }, 'search: start failed'));
  }

  /** Resolves once the search indexer has caught up with every change it knows of (tests and
   *  benchmarks; the server never waits for it). */
  async searchIdle(): Promise<void> {
    await this.#search?.indexer.idle();
  }

  usage(account: AccountId): Promise<number> {
    return this.quota.usage(account);
  }

  /** A copy delivered into new/ by another thread of this server (the inbound SMTP threads,
   *  docs/architecture.md §8), already durable: the open mailbox looks at new/ (IDLE sessions
   *  see it at once) and the account's usage figure counts it. */
  delivered(account: AccountId, mailbox: string, size: number, path?: string): void {
    const sub = path && basename(dirname(path)) === 'cur' ? 'cur' : 'new';
    this.#accounts?.notifyDelivered(account, mailbox, sub, path && basename(path));
    this.quota.adjust(account, size);
  }

  /** Removes spool files left by an earlier server process. Call once at server start. */
  cleanSpool(): Promise<void> {
    return this.#spool.clean();
  }

  createSpool(): SpoolWriter {
    return this.#spool.create();
  }

  async createAccount(id: AccountId): Promise<void> {
    const acct = this.#accountDir(id);
    await mkdir(dirname(acct), { recursive: true, mode: 0o700 });
    await makeMaildir(acct);
    for (const f of DEFAULT_FOLDERS) await makeMaildir(mailboxDir(acct, f), true);
    // Make the new directories themselves durable: fsync each parent that gained an entry.
    await this.#syncer.sync(acct);
    await this.#syncer.sync(dirname(acct));
    await this.#syncer.sync(dirname(dirname(acct)));
    this.#known.add(acct);
  }

  async purgeAccount(id: AccountId): Promise<void> {
    const acct = this.#accountDir(id);
    await rm(acct, { recursive: true, force: true });
    for (const d of this.#known) if (d === acct || d.startsWith(`${acct}/`)) this.#known.delete(d);
    await this.accounts.forgetAccount(id);
    await this.#search?.forget(id);
  }

  deliver(targets: readonly DeliveryTarget[], msg: SpooledMessage): Promise<readonly DeliveredCopy[]> {
    const p = this.#deliver(targets, msg);
    this.#inFlight.add(p);
    const forget = () => this.#inFlight.delete(p);
    p.then(forget, forget);
    return p;
  }

  async #deliver(targets: readonly DeliveryTarget[], msg: SpooledMessage): Promise<readonly DeliveredCopy[]> {
    const made: string[] = []; // every path that may exist, for clean-up on failure
    // Every folder is found (or made) before anything is written: a target with create: false
    // and no such folder fails the whole delivery with NOT_FOUND and leaves nothing behind.
    let dirs: string[] = [];
    try {
      dirs = await Promise.all(targets.map((t) => this.#mailbox(t.account, t.mailbox ?? 'INBOX', t.create ?? true)));
      // allSettled: on a failure, clean up only once every write has stopped.
      const settled = await Promise.allSettled(
        targets.map(async (t, i) => {
          const dir = dirs[i] as string;
          const letters = await infoLetters(dir, t.flags);
          const base = uniqueBase();
          const tmp = join(dir, 'tmp', base);
          made.push(tmp);
          const size = await writeDurably(tmp, t.prefix, msg);
          const sized = withSize(base, size);
          const sub = letters === null ? 'new' : 'cur';
          return { dir, sub, tmp, final: join(dir, sub, letters === null ? sized : `${sized}:2,${letters}`), size };
        }),
      );
      const written = settled.map((r) => {
        if (r.status === 'rejected') throw r.reason;
        return r.value;
      });
      for (const w of written) {
        await rename(w.tmp, w.final);
        made.push(w.final);
      }
      await Promise.all([...new Set(written.map((w) => join(w.dir, w.sub)))].map((d) => this.#syncer.sync(d)));
      for (const [i, t] of targets.entries()) {
        const w = written[i];
        this.#accounts?.notifyDelivered(
          t.account,
          t.mailbox ?? 'INBOX',
          w?.sub === 'cur' ? 'cur' : 'new',
          w && basename(w.final),
        );
      }
      for (const [i, w] of written.entries()) this.quota.adjust(targets[i]?.account as AccountId, w.size);
      return written.map((w, i) => ({
        account: targets[i]?.account as AccountId,
        mailbox: targets[i]?.mailbox ?? 'INBOX',
        path: w.final,
        size: w.size,
      }));
    } catch (e) {
      await Promise.all(made.map((p) => unlink(p).catch(() => {})));
      for (const d of dirs) this.#known.delete(d); // a folder deleted meanwhile is looked up again
      if (e instanceof ArclineError) throw e;
      throw new ArclineError('TEMPORARY', `delivery failed: ${errorMessage(e)}`, { cause: e });
    }
  }

  /** Whether the account has this mailbox, named as IMAP names it (INBOX in any case, "." the
   *  hierarchy separator, the Unicode name stored in modified UTF-7): Sieve's fileinto without
   *  :create (RFC 5490 §3.2) and mailboxexists (RFC 5490 §3.1) ask before delivering. One stat;
   *  false for a missing account and for a name that cannot be a mailbox (never touches a path
   *  outside the account). */
  async mailboxExists(account: AccountId, name: string): Promise<boolean> {
    let dir: string;
    try {
      dir = folderDir(accountDir(this.#root, account), name);
    } catch (e) {
      if (e instanceof LayoutError) return false;
      throw e;
    }
    try {
      return (await stat(join(dir, 'cur'))).isDirectory();
    } catch {
      return false;
    }
  }

  /** The directory of a mailbox, creating a missing folder when `create` (never a missing
   *  account); NOT_FOUND for a missing folder otherwise, INVALID for a name that cannot be one. */
  async #mailbox(id: AccountId, mailbox: string, create: boolean): Promise<string> {
    const acct = this.#accountDir(id);
    let dir: string;
    try {
      dir = folderDir(acct, mailbox);
    } catch (e) {
      if (e instanceof LayoutError) throw new ArclineError('INVALID', e.message);
      throw e;
    }
    // Without create, always looked at: a folder deleted since must be NOT_FOUND, not a failed write.
    if (create && this.#known.has(dir)) return dir;
    try {
      await stat(join(acct, 'new'));
    } catch {
      throw new ArclineError('NOT_FOUND', `no Maildir for account ${id}`);
    }
    if (!isInbox(mailbox)) {
      if (create) await makeMaildir(dir, true);
      else if (!(await this.mailboxExists(id, mailbox))) throw new ArclineError('NOT_FOUND', 'no such mailbox');
    }
    this.#known.add(dir);
    return dir;
  }

  #accountDir(id: AccountId): string {
    try {
      return accountDir(this.#root, id);
    } catch (e) {
      if (e instanceof LayoutError) throw new ArclineError('INVALID', e.message);
      throw e;
    }
  }

  /** Readiness (web/health.ts): a query of the mail index answers. */
  async pingIndex(): Promise<void> {
    void this.accounts; // opens the index
    await this.#index?.ping();
  }

  /** Readiness: a file can be created, synced and removed under the root (probe.ts). */
  probeWritable(): Promise<void> {
    return probeWritable(this.#root);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
    await this.#search?.close();
    await this.#accounts?.close();
    await this.#index?.close();
    this.#log.debug('mail store closed');
  }
}

export function createMaildirStore(opts: MaildirStoreOptions): MaildirStore {
  return new MaildirStore(opts);
}

/** The info letters of a copy delivered with `flags` (null: none, the copy goes into new/):
 *  system letters, and keyword letters from the mailbox's table, adding the missing keywords
 *  (flags.ts addKeywords); a keyword that finds no room among the 26 letters is dropped. */
async function infoLetters(dir: string, flags: readonly string[] | undefined): Promise<string | null> {
  const valid = deliveryFlags(flags ?? []);
  if (valid.length === 0) return null;
  const table = await addKeywords(dir, valid);
  const kept = valid.filter((f) => f.startsWith('\\') || flagsToLetters([f], [...table]) !== null);
  const letters = flagsToLetters(kept, [...table]);
  return letters ? letters : null;
}

/** tmp/ new/ cur/ (and the Maildir++ `maildirfolder` marker for a folder). Idempotent. */
async function makeMaildir(dir: string, folder = false): Promise<void> {
  for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(dir, sub), { recursive: true, mode: 0o700 });
  if (folder) await writeFile(join(dir, 'maildirfolder'), '', { mode: 0o600, flag: 'a' });
}
