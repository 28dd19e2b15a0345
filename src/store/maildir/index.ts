// The Maildir MailStore (delivery side). Durability contract: see src/store/types.ts.
// For each target: write tmp/<unique> (O_EXCL) -> fsync -> close; then rename every copy into
// new/ and fsync each new/ directory once (group commit, dirsync.ts). A reader (IMAP, Dovecot,
// mutt) only ever sees complete files: a file appears in new/ by an atomic rename after its
// data is on disk. On any failure every copy made so far is removed and TEMPORARY is thrown.

import { mkdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ArclineError, errorMessage } from '../../core/errors.ts';
import type { AccountId } from '../../core/ids.ts';
import { LIMITS } from '../../core/limits.ts';
import type { Logger } from '../../core/log.ts';
import type { ImportedMailbox, ImportOptions } from '../import.ts';
import { IndexClient } from '../index/client.ts';
import type { MessageStore } from '../mailboxes.ts';
import { Spool } from '../spool.ts';
import type { DeliveredCopy, DeliveryTarget, SpooledMessage, SpoolWriter } from '../types.ts';
import { MaildirAccounts } from './account.ts';
import { DirSyncer } from './dirsync.ts';
import { writeDurably } from './durable.ts';
import { type ImportResult, importMailbox } from './import.ts';
import { accountDir, DEFAULT_FOLDERS, isInbox, LayoutError, mailboxDir } from './layout.ts';
import { uniqueBase, withSize } from './naming.ts';
import { probeWritable } from './probe.ts';
import { QuotaUsage } from './quota.ts';

export interface MaildirStoreOptions {
  readonly root: string;
  readonly spoolDir: string;
  /** The mail index database ({state}/mailindex.db). */
  readonly indexPath: string;
  readonly log: Logger;
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
  #index: IndexClient | null = null;
  #accounts: MaildirAccounts | null = null;
  /** Storage used per account (quotas). */
  readonly quota: QuotaUsage;

  constructor(opts: MaildirStoreOptions) {
    this.#root = opts.root;
    this.quota = new QuotaUsage(opts.root);
    this.#log = opts.log;
    this.#indexPath = opts.indexPath;
    this.#spool = new Spool(opts.spoolDir, LIMITS.store.spoolMemoryBytes);
  }

  /** The IMAP side: mailboxes, index, flags. Opened on first use (the CLI never needs it). */
  get accounts(): MaildirAccounts {
    if (!this.#accounts) {
      this.#index = new IndexClient(this.#indexPath);
      this.#accounts = new MaildirAccounts(this.#root, this.#index, this.#syncer, this.#log);
    }
    return this.#accounts;
  }

  /** Brings in a mailbox from another server with its UIDVALIDITY, UIDs and flags
   *  (store/import.ts; `arcline import dovecot`). */
  importMailbox(account: AccountId, mailbox: ImportedMailbox, opts: ImportOptions = {}): Promise<ImportResult> {
    void this.accounts; // opens the index
    const index = this.#index as IndexClient;
    return importMailbox({ root: this.#root, index, syncer: this.#syncer }, account, mailbox, opts);
  }

  /** Opens the mail index now (see IndexClient.open); the server calls it at start. */
  async openIndex(): Promise<void> {
    void this.accounts;
    await this.#index?.open();
  }

  usage(account: AccountId): Promise<number> {
    return this.quota.usage(account);
  }

  /** A copy delivered into new/ by another thread of this server (the inbound SMTP threads,
   *  docs/architecture.md §8), already durable: the open mailbox looks at new/ (IDLE sessions
   *  see it at once) and the account's usage figure counts it. */
  delivered(account: AccountId, mailbox: string, size: number): void {
    this.#accounts?.notifyDelivered(account, mailbox);
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
    try {
      const dirs = await Promise.all(targets.map((t) => this.#mailbox(t.account, t.mailbox ?? 'INBOX')));
      // allSettled: on a failure, clean up only once every write has stopped.
      const settled = await Promise.allSettled(
        targets.map(async (t, i) => {
          const dir = dirs[i] as string;
          const base = uniqueBase();
          const tmp = join(dir, 'tmp', base);
          made.push(tmp);
          const size = await writeDurably(tmp, t.prefix, msg);
          return { dir, tmp, final: join(dir, 'new', withSize(base, size)), size };
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
      await Promise.all([...new Set(written.map((w) => join(w.dir, 'new')))].map((d) => this.#syncer.sync(d)));
      for (const t of targets) this.#accounts?.notifyDelivered(t.account, t.mailbox ?? 'INBOX');
      for (const [i, w] of written.entries()) this.quota.adjust(targets[i]?.account as AccountId, w.size);
      return written.map((w, i) => ({
        account: targets[i]?.account as AccountId,
        mailbox: targets[i]?.mailbox ?? 'INBOX',
        path: w.final,
        size: w.size,
      }));
    } catch (e) {
      await Promise.all(made.map((p) => unlink(p).catch(() => {})));
      if (e instanceof ArclineError) throw e;
      throw new ArclineError('TEMPORARY', `delivery failed: ${errorMessage(e)}`, { cause: e });
    }
  }

  /** The directory of a mailbox, creating a missing folder (never a missing account). */
  async #mailbox(id: AccountId, mailbox: string): Promise<string> {
    const acct = this.#accountDir(id);
    const dir = mailboxDir(acct, mailbox);
    if (this.#known.has(dir)) return dir;
    try {
      await stat(join(acct, 'new'));
    } catch {
      throw new ArclineError('NOT_FOUND', `no Maildir for account ${id}`);
    }
    if (!isInbox(mailbox)) await makeMaildir(dir, true);
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
    await this.#accounts?.close();
    await this.#index?.close();
    this.#log.debug('mail store closed');
  }
}

export function createMaildirStore(opts: MaildirStoreOptions): MaildirStore {
  return new MaildirStore(opts);
}

/** tmp/ new/ cur/ (and the Maildir++ `maildirfolder` marker for a folder). Idempotent. */
async function makeMaildir(dir: string, folder = false): Promise<void> {
  for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(dir, sub), { recursive: true, mode: 0o700 });
  if (folder) await writeFile(join(dir, 'maildirfolder'), '', { mode: 0o600, flag: 'a' });
}
