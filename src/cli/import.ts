// `arcline import dovecot` and `arcline import passwd-file` (issue #13; docs/cli.md,
// docs/migrating-from-dovecot.md). Prints what was imported and what was skipped, and why.
// Exit code 1 when something was skipped that the user asked for (a mailbox or user not imported).

import { readFile } from 'node:fs/promises';
import { ArclineError } from '../core/errors.ts';
import type { AccountId } from '../core/ids.ts';
import { type DovecotLayout, importDovecotTree, readDovecotTree } from '../import/dovecot.ts';
import { PASSWD_MAX_BYTES } from '../import/dovecot-files.ts';
import { importPasswdFile } from '../import/passwd-file.ts';
import type { Context } from '../main.ts';

export interface ImportFlags {
  readonly maildir?: string;
  readonly user?: string;
  readonly domain?: string;
  readonly layout?: string;
  readonly control?: string;
  readonly 'replace-empty'?: boolean;
  readonly 'dry-run'?: boolean;
}

/** Runs an import; returns false when part of it was refused (the caller exits 1). */
export async function runImport(
  ctx: Context,
  what: string | undefined,
  args: readonly string[],
  flags: ImportFlags,
  say: (line: string) => void,
  usage: (message: string) => Error,
): Promise<boolean> {
  const dryRun = flags['dry-run'] === true;
  if (what === 'dovecot') {
    if (args.length > 0) throw usage(`import dovecot: unexpected argument ${args[0]}`);
    if (!flags.maildir || !flags.user) throw usage('import dovecot: --maildir DIR and --user ADDR are required');
    const layout = (flags.layout ?? 'maildir++') as DovecotLayout;
    if (layout !== 'maildir++' && layout !== 'fs') throw usage('--layout: maildir++ or fs');
    const user = await ctx.ops.getUser(flags.user);
    if (!user) throw new ArclineError('NOT_FOUND', `no user ${flags.user} (create it first: arcline user add)`);
    const tree = await readDovecotTree(flags.maildir, layout, flags.control);
    const accounts = ctx.store.accounts;
    const report = await importDovecotTree(
      {
        importMailbox: (a, m, o) => ctx.store.importMailbox(a, m, o),
        setSubscribed: (a, n, on) => accounts.setSubscribed(a, n, on),
      },
      user.accountId as AccountId,
      tree,
      { replaceEmpty: flags['replace-empty'] === true, dryRun },
    );
    const verb = dryRun ? 'would import' : 'imported';
    for (const m of report.imported) {
      const extra = m.freshIdentity
        ? ' (no dovecot-uidlist: new UIDVALIDITY and UIDs)'
        : m.newUids > 0
          ? ` (${m.newUids} not in dovecot-uidlist: new UIDs from its UIDNEXT)`
          : '';
      say(
        `${verb} ${m.name}: ${m.messages.length} message(s), UIDVALIDITY ${m.uidValidity}, UIDNEXT ${m.uidNext}${extra}`,
      );
    }
    say(`subscriptions: ${report.subscribed.length === 0 ? 'none' : report.subscribed.join(', ')}`);
    for (const s of report.skipped) say(`skipped ${s.what}: ${s.why}`);
    return report.imported.length === tree.mailboxes.length;
  }
  if (what === 'passwd-file') {
    if (args.length !== 1) throw usage('import passwd-file: FILE expected');
    const text = await readFile(args[0] as string, 'utf8').catch((e: Error) => {
      throw new ArclineError('NOT_FOUND', `${args[0]}: ${e.message}`);
    });
    if (text.length > PASSWD_MAX_BYTES) throw new ArclineError('LIMIT', `${args[0]} is too large`);
    const report = await importPasswdFile(ctx.ops, text, {
      ...(flags.domain ? { domain: flags.domain } : {}),
      dryRun,
    });
    for (const a of report.added) say(`${dryRun ? 'would add' : 'added'} ${a.address} (${a.how})`);
    for (const n of report.notes) say(`note: ${n}`);
    for (const s of report.skipped) say(`skipped ${s.what}: ${s.why}`);
    say(`${report.added.length} user(s) ${dryRun ? 'to add' : 'added'}, ${report.skipped.length} skipped`);
    return report.skipped.length === 0;
  }
  throw usage(`unknown command: import ${what ?? ''}`.trim());
}
