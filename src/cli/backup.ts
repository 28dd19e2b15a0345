// `arcline backup DIR` and `arcline restore DIR [--force] [--check]` (docs/backup.md, docs/cli.md).
// Both run as the account the server runs as, like every other command (run-as.ts planCli): the
// backup belongs to that account (it can read the data anyway), and so does everything restored.
// restore refuses while a server holds the state directory's lock (core/state-lock.ts) and when
// the targets are not empty; --force moves what is there aside (nothing is deleted) first.

import { existsSync, readdirSync, renameSync } from 'node:fs';
import { resolve } from 'node:path';
import { restoreBackup, verifyBackup } from '../backup/restore.ts';
import { takeBackup } from '../backup/take.ts';
import type { Config } from '../config/schema.ts';
import { ArclineError, errorMessage, isArclineError } from '../core/errors.ts';
import { dropPrivileges } from '../core/privileges.ts';
import { LOCK_FILE, stateLocked } from '../core/state-lock.ts';
import { planCli, prepareStorage } from '../run-as.ts';

function becomeServiceAccount(config: Config): void {
  const plan = planCli(config);
  prepareStorage(config, plan);
  if (plan.become) dropPrivileges(plan.become);
}

export async function backupCommand(config: Config, dirArg: string, version: string): Promise<string[]> {
  const dir = resolve(dirArg);
  becomeServiceAccount(config);
  const m = await takeBackup({
    state: config.storage.state,
    maildir: config.storage.maildir,
    dir,
    hostname: config.hostname,
    version,
  }).catch((e: unknown) => {
    if (isArclineError(e) || !existsSync(dir)) throw e;
    // A disk full, a file it may not read: what was written is no backup (it has no manifest).
    throw new ArclineError('TEMPORARY', `backup failed: ${errorMessage(e)}; ${dir} is incomplete: remove it`);
  });
  const t = m.totals;
  const lines = [
    `backed up ${config.storage.state} and ${config.storage.maildir} to ${dir}`,
    `  ${m.databases.length} database(s) (${m.databases.map((d) => `${d.path.slice(6)} v${d.schema}`).join(', ')}), ` +
      `${t.messages} message(s), ${t.files} file(s), ${megabytes(t.bytes)} in ${t.seconds.toFixed(1)} s`,
  ];
  if (t.expunged > 0 || t.dequeued > 0) {
    lines.push(
      `  while it ran: ${t.expunged} message(s) expunged and ${t.dequeued} queued message(s) sent, not in the backup`,
    );
  }
  return lines;
}

export async function restoreCommand(
  config: Config,
  dirArg: string,
  opts: { force: boolean; check: boolean },
): Promise<string[]> {
  const dir = resolve(dirArg);
  if (opts.check) {
    const m = await verifyBackup(dir);
    return [`${dir}: ${m.files.length} file(s) match the manifest (backup of ${m.hostname}, ${m.created})`];
  }
  const { state, maildir } = config.storage;
  if (stateLocked(state)) {
    throw new ArclineError('CONFIG', `a server is running on ${state}: stop it before restoring`);
  }
  const lines: string[] = [];
  const busy = [state, maildir].filter((d) => !isEmpty(d));
  if (busy.length > 0 && !opts.force) {
    throw new ArclineError(
      'CONFIG',
      `${busy.join(' and ')} not empty: restore goes into empty directories (--force moves what is there aside)`,
    );
  }
  if (busy.length > 0) await verifyBackup(dir); // before anything is moved
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  for (const d of busy) {
    const aside = `${d}.before-restore-${stamp}`;
    try {
      renameSync(d, aside);
    } catch (e) {
      throw new ArclineError(
        'CONFIG',
        `cannot move ${d} aside to ${aside} (${(e as Error).message}): empty it yourself, then restore`,
      );
    }
    lines.push(`moved ${d} aside to ${aside}`);
  }
  becomeServiceAccount(config);
  const m = await restoreBackup(dir, { state, maildir });
  lines.push(
    `restored ${dir} (backup of ${m.hostname}, ${m.created}, arcline ${m.arcline}) into ${state} and ${maildir}`,
    `  ${m.totals.messages} message(s), ${m.files.length} file(s), ${megabytes(m.totals.bytes)}, checksums verified`,
  );
  return lines;
}

function megabytes(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}

/** Missing, or a directory with nothing in it but a lock file left by a server that stopped. */
function isEmpty(dir: string): boolean {
  if (!existsSync(dir)) return true;
  try {
    return readdirSync(dir).every((n) => n === LOCK_FILE);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
    throw e;
  }
}
