// The `arcline` command. Exit codes: 0 success, 1 the operation was refused (nothing changed),
// 2 usage or configuration error. Errors are one line on stderr starting with "arcline:".
// Passwords are read from a terminal without echo or, with --password-stdin, from the first
// line of standard input; they are never printed or logged.
// Run as root, every command but `serve` first becomes the account the server runs as (run-as.ts
// planCli), so the Maildirs, keys and database rows it creates belong to that account.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { resolveNodeName } from '../config/cluster.ts';
import { parseDuration } from '../config/duration.ts';
import { configPath, type LoadedConfig, loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { normalizeDomain } from '../core/address.ts';
import { ArclineError, isArclineError } from '../core/errors.ts';
import { silentLogger } from '../core/log.ts';
import { dropPrivileges } from '../core/privileges.ts';
import { formatSize, parseSize } from '../core/size.ts';
import { oneLine } from '../core/text.ts';
import { dkimRecordName, dkimZoneLine } from '../hygiene/dkim-keys.ts';
import { dnsRecords } from '../hygiene/dns-records.ts';
import { type Context, openContext } from '../main.ts';
import type { QueuedMessage, QueueId } from '../queue/types.ts';
import { planCli, prepareStorage } from '../run-as.ts';
import { backupCommand, restoreCommand } from './backup.ts';
import { fixPermissions } from './fix-permissions.ts';
import { greylistCommand } from './greylist.ts';
import { runImport } from './import.ts';
import { banCommand, ipCommand } from './network.ts';
import { ago, say, table } from './output.ts';
import { readLine, readPassword } from './password-input.ts';
import { tokenCommand } from './token.ts';

const USAGE = `usage: arcline [--config FILE] COMMAND

  serve [--allow-root]                    run the server
  domain add NAME | del NAME | list
  user add ADDR [--password-stdin | --hash-stdin] [--quota SIZE]
  user del ADDR [--purge]
  user passwd ADDR [--password-stdin]
  user quota ADDR SIZE|none
  user disable ADDR | enable ADDR          a disabled user cannot log in; its mail is still accepted
  user list [DOMAIN]
  alias add SRC DST... | del SRC [DST...] | list [DOMAIN]
  catchall set DOMAIN ADDR|none
  queue list | show ID | retry ID|--all | delete ID
  greylist list | clear                   greylisting entries, newest first / forget them all
  allow add USER SENDER | del USER SENDER | list USER
  dkim keygen DOMAIN [--selector S] [--algo rsa|ed25519] | list [DOMAIN] | del DOMAIN SELECTOR
  dkim rotate DOMAIN [--algorithm rsa|ed25519] [--grace 7d] | rotate DOMAIN --activate
  dkim activate DOMAIN SELECTOR [--force]
  dns-records DOMAIN
  check [DOMAIN...] [--json]              deliverability self-check: DNS, reverse DNS, blocklists, certificates
  sieve check FILE                        parse and validate a Sieve script (RFC 5228); prints ok or the errors
  sieve put USER NAME FILE|- | get USER NAME | list USER   a user's Sieve scripts (validated when stored)
  sieve activate USER NAME | deactivate USER | delete USER NAME
  token add --role admin|readonly|domain:D|user:ADDR [--name N] | list | del ID   admin API tokens
  ip allow|deny ADDR[/PREFIX] [--comment TEXT] | del ADDR[/PREFIX] | list | check ADDR   IP allow and deny lists
  ban list | del ADDR                     automatic bans of abusive networks
  fix-permissions                         give the data to [server] user, files 0600, directories 0700
  import dovecot --maildir DIR --user ADDR [--layout maildir++|fs] [--control DIR] [--replace-empty] [--dry-run]
  import passwd-file FILE [--domain D] [--dry-run]
  reports tls [--days N] [--mailbox ADDR]  TLS reports (RFC 8460) received: per reporter and domain
  cluster status [--json]                 the nodes sharing [database]: alive or gone, version, load, leader tasks
  reports dmarc [--days N] [--mailbox ADDR]   DMARC aggregate reports received, per reporting org and source IP
  backup DIR                              consistent copy of the state and Maildir (server may run)
  restore DIR [--force] [--check]         bring a backup back into empty directories (server stopped)
  version | --version | help

--config FILE (or ARCLINE_CONFIG) names the config file; default: embedded defaults.
--node NAME (or ARCLINE_NODE) names this node of a cluster, over [cluster] node_name.
Documentation: docs/cli.md`;

class UsageError extends Error {}

/** `arcline sieve` subcommands on stored scripts (they need the config); `check` and usage
 *  errors need none. */
const SIEVE_STORE_COMMANDS = new Set(['put', 'get', 'list', 'activate', 'deactivate', 'delete']);

export async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (e) {
    process.stderr.write(`arcline: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, sub, ...rest] = positionals;
  if (values.version && command === undefined) {
    process.stdout.write(`arcline ${version()}\n`);
    return 0;
  }
  if (command === undefined || command === 'help' || values.help) {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined && !values.help ? 2 : 0;
  }
  if (command === 'version') {
    process.stdout.write(`arcline ${version()}\n`);
    return 0;
  }
  // Pure and config-free (src/sieve/), loaded only for this command.
  if (command === 'sieve' && !SIEVE_STORE_COMMANDS.has(sub ?? ''))
    return (await import('./sieve.ts')).sieveCommand(
      [sub, ...rest].filter((a) => a !== undefined),
      say,
      (l) => process.stderr.write(`${l}\n`),
    );
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig(configPath(values.config));
    // One name from here on (config/cluster.ts): --node, ARCLINE_NODE, node_name, host name.
    const node_name = resolveNodeName(loaded.config.cluster, { flag: values.node });
    loaded = { ...loaded, config: { ...loaded.config, cluster: { ...loaded.config.cluster, node_name } } };
  } catch (e) {
    process.stderr.write(`arcline: ${(e as Error).message}\n`);
    return 2;
  }
  if (command === 'serve') {
    const { runServer } = await import('../server.ts');
    return runServer(loaded, { allowRoot: values['allow-root'] === true });
  }
  if (values['allow-root']) {
    process.stderr.write(`arcline: --allow-root is an option of serve\n${USAGE}\n`);
    return 2;
  }
  let ctx: Context | undefined;
  try {
    if (command === 'cluster')
      return await (await import('./cluster.ts')).clusterCommand(
        loaded.config,
        sub,
        rest,
        values,
        say,
        (m) => new UsageError(m),
      );
    if (command === 'fix-permissions') {
      if (sub !== undefined) throw new UsageError(`fix-permissions: unexpected argument ${sub}`);
      say(await fixPermissions(loaded.config));
      return 0;
    }
    if (command === 'backup' || command === 'restore') {
      if (sub === undefined || rest.length > 0) throw new UsageError(`${command}: DIR expected`);
      if (command === 'backup' && (values.force || values.check)) throw new UsageError('backup: no options');
      const flags = { force: values.force === true, check: values.check === true };
      const lines =
        command === 'backup'
          ? await backupCommand(loaded.config, sub, version())
          : await restoreCommand(loaded.config, sub, flags);
      for (const line of lines) say(line);
      return 0;
    }
    const plan = planCli(loaded.config);
    prepareStorage(loaded.config, plan);
    if (plan.become) dropPrivileges(plan.become);
    ctx = await openContext(loaded.config, silentLogger());
    if (command === 'greylist') {
      await greylistCommand(loaded.config, silentLogger(), sub, rest, say, (m) => new UsageError(m));
      return 0;
    }
    if (command === 'sieve') {
      const { sieveStoreCommand } = await import('./sieve.ts');
      const io = {
        say,
        err: (l: string) => process.stderr.write(`${l}\n`),
        write: (b: Buffer) => process.stdout.write(b),
      };
      return await sieveStoreCommand(ctx, sub, rest, io, (m) => new UsageError(m));
    }
    if (command === 'token')
      return await tokenCommand(ctx, sub, rest, values, say, (m) => new UsageError(m)).then(() => 0);
    if (command === 'ip') {
      await ipCommand(ctx, sub, rest, values, say, (m) => new UsageError(m));
      return 0;
    }
    if (command === 'ban') {
      await banCommand(ctx, sub, rest, say, (m) => new UsageError(m));
      return 0;
    }
    // Loaded only for this command (its modules cost every other command half a second).
    if (command === 'check')
      return await (await import('./check.ts')).checkCommand(
        ctx,
        loaded.config,
        [sub, ...rest].filter((a) => a !== undefined),
        values,
        say,
      );
    if (command === 'reports') {
      const { reportsCommand } = await import('./reports.ts');
      await reportsCommand(ctx, sub, rest, values, say, (m) => new UsageError(m));
      return 0;
    }
    if (command === 'import') {
      return (await runImport(ctx, sub, rest, values, say, (m) => new UsageError(m))) ? 0 : 1;
    }
    await run(ctx, loaded.config, command, sub, rest, values);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`arcline: ${e.message}\n${USAGE}\n`);
      return 2;
    }
    if (isArclineError(e)) {
      process.stderr.write(`arcline: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    await ctx?.close();
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string' },
      'password-stdin': { type: 'boolean' },
      'hash-stdin': { type: 'boolean' },
      quota: { type: 'string' },
      purge: { type: 'boolean' },
      all: { type: 'boolean' },
      selector: { type: 'string' },
      algo: { type: 'string' },
      algorithm: { type: 'string' },
      grace: { type: 'string' },
      activate: { type: 'boolean' },
      'allow-root': { type: 'boolean' },
      maildir: { type: 'string' },
      user: { type: 'string' },
      domain: { type: 'string' },
      layout: { type: 'string' },
      control: { type: 'string' },
      'replace-empty': { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      force: { type: 'boolean' },
      check: { type: 'boolean' },
      role: { type: 'string' },
      name: { type: 'string' },
      comment: { type: 'string' },
      json: { type: 'boolean' },
      node: { type: 'string' },
      days: { type: 'string' },
      mailbox: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'V' },
    },
  });
}

type Flags = ReturnType<typeof parse>['values'];

async function run(
  ctx: Context,
  config: Config,
  command: string,
  sub: string | undefined,
  args: string[],
  flags: Flags,
) {
  const { ops } = ctx;
  const need = (n: number, what: string) => {
    if (args.length < n) throw new UsageError(`${command} ${sub}: missing ${what}`);
  };
  const noMore = (n: number) => {
    if (args.length > n) throw new UsageError(`${command} ${sub}: unexpected argument ${args[n]}`);
  };
  if (command === 'dns-records') {
    if (sub === undefined || args.length > 0) throw new UsageError('dns-records: DOMAIN expected');
    const domain = await localDomain(ctx, sub);
    if (!config.hostname.includes('.')) {
      process.stderr.write(
        `arcline: warning: the hostname "${config.hostname}" is not fully qualified; the MX record and EHLO need one: set hostname in the config file\n`,
      );
    }
    if (config.http.tls_listen.length === 0) {
      process.stderr.write(
        'arcline: warning: [http] tls_listen is off, so the MTA-STS policy is not served (nor client autoconfiguration over HTTPS): publish the _mta-sts record once HTTPS listens on 443\n',
      );
    }
    const m = config.mta_sts;
    const mtaSts = { mode: m.mode, maxAgeMs: m.max_age, mx: m.mx };
    // Pending keys (a rotation) too: their records are the ones to publish before activation.
    const keys = [...(await ctx.dkim.keys(domain)), ...(await ctx.dkim.pendingKeys(domain))];
    for (const line of dnsRecords({ domain, hostname: config.hostname, keys, mtaSts })) {
      say(line);
    }
    return;
  }
  switch (`${command} ${sub ?? ''}`.trim()) {
    case 'domain add':
      need(1, 'NAME');
      noMore(1);
      return say(`added domain ${(await ops.addDomain(args[0] as string)).name}`);
    case 'domain del': {
      need(1, 'NAME');
      noMore(1);
      const { retiredDkim } = await ops.deleteDomain(args[0] as string);
      say(`deleted domain ${args[0]}`);
      if (retiredDkim) say(`its DKIM keys are out of use, kept in ${retiredDkim}; remove its DNS records`);
      return;
    }
    case 'domain list':
      noMore(0);
      return table(
        ['DOMAIN', 'USERS', 'ALIASES', 'CATCH-ALL'],
        (await ops.listDomains()).map((d) => [d.name, String(d.users), String(d.aliases), d.catchAll ?? '-']),
      );
    case 'user add': {
      need(1, 'ADDR');
      noMore(1);
      const quotaBytes = flags.quota === undefined ? null : sizeOrThrow(flags.quota);
      await ops.checkNewUser(args[0] as string); // refuse a bad address before asking for a password
      // --hash-stdin imports an existing hash (Dovecot {BLF-CRYPT}/{SHA512-CRYPT}, $2y$, $6$ ...).
      const u = flags['hash-stdin']
        ? await ops.addUserWithHash(args[0] as string, { passwordHash: await readLine(), quotaBytes })
        : await ops.addUser(args[0] as string, {
            password: await readPassword(flags['password-stdin'] === true),
            quotaBytes,
          });
      return say(`added user ${u.address}`);
    }
    case 'user del': {
      need(1, 'ADDR');
      noMore(1);
      const u = await ops.deleteUser(args[0] as string, { purge: flags.purge === true });
      return say(`deleted user ${u.address}${flags.purge ? ' and its mail' : ' (mail kept on disk)'}`);
    }
    case 'user passwd': {
      need(1, 'ADDR');
      noMore(1);
      if (!(await ops.getUser(args[0] as string))) throw new ArclineError('NOT_FOUND', `no user ${args[0]}`);
      await ops.setPassword(args[0] as string, await readPassword(flags['password-stdin'] === true));
      return say(`password changed for ${args[0]}`);
    }
    case 'user quota':
      need(2, 'ADDR SIZE|none');
      noMore(2);
      await ops.setQuota(args[0] as string, args[1] === 'none' ? null : sizeOrThrow(args[1] as string));
      return say(`quota of ${args[0]} set to ${args[1]}`);
    case 'user disable':
    case 'user enable':
      need(1, 'ADDR');
      noMore(1);
      await ops.setEnabled(args[0] as string, sub === 'enable');
      return say(`${args[0]} ${sub}d`);
    case 'user list': {
      noMore(1);
      const rows: string[][] = [];
      for (const u of await ops.listUsers(args[0])) {
        const used = await ctx.store.usage(u.accountId).catch(() => null);
        rows.push([
          u.enabled ? u.address : `${u.address} (disabled)`,
          used === null ? '-' : formatSize(used),
          u.quotaBytes === null ? 'unlimited' : formatSize(u.quotaBytes),
          u.createdAt.toISOString().replace(/\.\d+Z$/, 'Z'),
        ]);
      }
      return table(['USER', 'USED', 'QUOTA', 'CREATED'], rows);
    }
    case 'alias add': {
      need(2, 'SRC DST...');
      const a = await ops.addAlias(args[0] as string, args.slice(1));
      return say(`${a.source} -> ${a.destinations.join(', ')}`);
    }
    case 'alias del':
      need(1, 'SRC');
      await ops.deleteAlias(args[0] as string, args.length > 1 ? args.slice(1) : undefined);
      return say(`deleted ${args.length > 1 ? `${args.slice(1).join(', ')} from alias` : 'alias'} ${args[0]}`);
    case 'alias list':
      noMore(1);
      return table(
        ['ALIAS', 'DESTINATIONS'],
        (await ops.listAliases(args[0])).map((a) => [a.source, a.destinations.join(', ')]),
      );
    case 'catchall set':
      need(2, 'DOMAIN ADDR|none');
      noMore(2);
      await ops.setCatchAll(args[0] as string, args[1] === 'none' ? null : (args[1] as string));
      return say(args[1] === 'none' ? `removed the catch-all of ${args[0]}` : `catch-all of ${args[0]} -> ${args[1]}`);
    case 'queue list':
      noMore(0);
      return await queueList(ctx);
    case 'queue show': {
      need(1, 'ID');
      noMore(1);
      const m = await ctx.queue.get(args[0] as QueueId);
      if (!m) throw new ArclineError('NOT_FOUND', `no queued message ${args[0]}`);
      return queueShow(m);
    }
    case 'queue retry': {
      if (flags.all) {
        noMore(0);
        return say(`${await ctx.queue.retry('all')} recipient(s) due now`);
      }
      need(1, 'ID or --all');
      noMore(1);
      if (!(await ctx.queue.get(args[0] as QueueId)))
        throw new ArclineError('NOT_FOUND', `no queued message ${args[0]}`);
      return say(`${await ctx.queue.retry(args[0] as QueueId)} recipient(s) of ${args[0]} due now`);
    }
    case 'queue delete':
      need(1, 'ID');
      noMore(1);
      if (!(await ctx.queue.drop(args[0] as QueueId))) {
        throw new ArclineError('NOT_FOUND', `no queued message ${args[0]}`);
      }
      return say(`deleted ${args[0]} (no bounce sent)`);
    case 'allow add':
      need(2, 'USER SENDER');
      noMore(2);
      return say(`${args[0]} allows ${await ops.addAllowedSender(args[0] as string, args[1] as string)}`);
    case 'allow del':
      need(2, 'USER SENDER');
      noMore(2);
      await ops.deleteAllowedSender(args[0] as string, args[1] as string);
      return say(`removed ${args[1]} from the allowlist of ${args[0]}`);
    case 'allow list':
      need(1, 'USER');
      noMore(1);
      for (const p of await ops.listAllowedSenders(args[0] as string)) say(p);
      return;
    case 'dkim keygen': {
      need(1, 'DOMAIN');
      noMore(1);
      const domain = await localDomain(ctx, args[0] as string);
      const algo = flags.algo ?? 'rsa';
      if (algo !== 'rsa' && algo !== 'ed25519') throw new UsageError(`--algo: rsa or ed25519, not ${algo}`);
      const key = await ctx.dkim.generate(domain, {
        selector: flags.selector ?? config.dkim.selector,
        algorithm: algo,
      });
      say(
        `; DKIM key ${key.selector} (${key.algorithm}) for ${key.domain}: publish this record, then mail is signed with it`,
      );
      return say(dkimZoneLine(key));
    }
    case 'dkim list': {
      noMore(1);
      const domains = args[0] ? [await localDomain(ctx, args[0])] : (await ops.listDomains()).map((d) => d.name);
      for (const d of domains) {
        for (const k of await ctx.dkim.keys(d)) say(dkimZoneLine(k));
        for (const k of await ctx.dkim.pendingKeys(d)) {
          say(`; pending (rotation): publish; it signs once found in DNS (or \`arcline dkim rotate ${d} --activate\`)`);
          say(dkimZoneLine(k));
        }
        for (const k of await ctx.dkim.retiredKeys(d)) {
          const name = dkimRecordName(k);
          say(
            k.gone
              ? `; retired, deleted after its grace: the DNS record ${name} may be removed`
              : `; retired (${k.algorithm}): keep the DNS record ${name} published until ${k.removableAt.toISOString()}`,
          );
        }
      }
      return;
    }
    case 'dkim rotate': {
      need(1, 'DOMAIN');
      noMore(1);
      const domain = await localDomain(ctx, args[0] as string);
      if (flags.activate) {
        if (flags.algorithm !== undefined || flags.grace !== undefined)
          throw new UsageError('--activate takes no --algorithm or --grace (they belong to the rotation itself)');
        return activatePending(ops, ctx, domain);
      }
      const algorithm = flags.algorithm;
      if (algorithm !== undefined && algorithm !== 'rsa' && algorithm !== 'ed25519')
        throw new UsageError(`--algorithm: rsa or ed25519, not ${algorithm}`);
      const graceMs = flags.grace === undefined ? undefined : parseDuration(flags.grace);
      if (graceMs === null) throw new UsageError(`--grace: a duration such as 7d or 36h, not ${flags.grace}`);
      for (const k of await ops.rotateDkim(domain, {
        ...(algorithm ? { algorithm } : {}),
        ...(graceMs === undefined ? {} : { graceMs }),
      })) {
        say(`; new DKIM key, selector ${k.selector} (${k.algorithm}), pending: publish this record; it signs`);
        say(`; once the server finds it in DNS, or at once with \`arcline dkim rotate ${domain} --activate\``);
        say(dkimZoneLine(k));
      }
      return;
    }
    case 'dkim activate': {
      need(2, 'DOMAIN SELECTOR');
      noMore(2);
      const domain = await localDomain(ctx, args[0] as string);
      const { key, retired } = await ops.activateDkim(domain, args[1] as string, { force: flags.force === true });
      say(`DKIM key ${key.selector} of ${domain} signs from now on`);
      if (retired)
        say(`the old key is retired; keep its DNS record published until its grace ends (\`arcline dkim list\`)`);
      return;
    }
    case 'dkim del':
      need(2, 'DOMAIN SELECTOR');
      noMore(2);
      await ctx.dkim.remove(await localDomain(ctx, args[0] as string), args[1] as string);
      return say(`deleted DKIM key ${args[1]} of ${args[0]}`);
    default:
      throw new UsageError(`unknown command: ${[command, sub].filter(Boolean).join(' ')}`);
  }
}

/** `dkim rotate DOMAIN --activate`: every pending key of the domain, each checked in DNS first
 *  (activateDkim refuses one whose record is not published, with the reason). */
async function activatePending(ops: Context['ops'], ctx: Context, domain: string): Promise<void> {
  const pending = await ctx.dkim.pendingKeys(domain);
  if (pending.length === 0) throw new ArclineError('NOT_FOUND', `${domain} has no pending DKIM key: rotate first`);
  for (const k of pending) {
    const { key, retired } = await ops.activateDkim(domain, k.selector);
    say(`DKIM key ${key.selector} of ${domain} signs from now on`);
    if (retired) say(`the old ${key.algorithm} key is retired; keep its DNS record published until its grace ends`);
  }
}

async function localDomain(ctx: Context, name: string): Promise<string> {
  const d = normalizeDomain(name);
  if (!d) throw new ArclineError('INVALID', `invalid domain name: ${JSON.stringify(name)}`);
  if (!(await ctx.directory.isLocalDomain(d))) throw new ArclineError('NOT_FOUND', `no domain ${d}`);
  return d;
}

async function queueList(ctx: Context): Promise<void> {
  const now = Date.now();
  const rows: string[][] = [];
  for (const m of await ctx.queue.list()) {
    const queued = m.recipients.filter((r) => r.state === 'queued');
    const next = Math.min(...queued.map((r) => r.nextAttempt));
    rows.push([
      m.id,
      formatSize(m.size),
      ago(now - m.created),
      m.sender === '' ? '<>' : m.sender,
      String(queued.length),
      next <= now ? 'now' : `in ${ago(next - now)}`,
      oneLine(queued.find((r) => r.lastReply)?.lastReply ?? '-', 60),
    ]);
  }
  table(['ID', 'SIZE', 'AGE', 'SENDER', 'RCPTS', 'NEXT', 'LAST REPLY'], rows);
  const c = await ctx.queue.counts();
  say(`${c.messages} message(s), ${c.recipients} recipient(s) queued`);
}

function queueShow(m: QueuedMessage): void {
  say(`id:       ${m.id}`);
  say(`log id:   ${m.logId}`);
  say(`sender:   ${m.sender === '' ? '<>' : m.sender}`);
  say(`origin:   ${m.origin}${m.authUser ? ` (${m.authUser})` : ''}`);
  say(`size:     ${formatSize(m.size)} (${m.size} bytes)`);
  say(`arrived:  ${new Date(m.created).toISOString()}`);
  for (const r of m.recipients) {
    say('');
    say(`  ${r.address}: ${r.state}, ${r.attempts} attempt(s)`);
    if (r.state === 'queued') say(`    next attempt: ${new Date(r.nextAttempt).toISOString()}`);
    if (r.lastHost) say(`    last host:    ${r.lastHost}`);
    if (r.lastReply) say(`    last reply:   ${oneLine(r.lastReply, 500)}`);
  }
}

function sizeOrThrow(text: string): number {
  const n = parseSize(text);
  if (n === null || n === 0) throw new UsageError(`not a size: ${text} (use e.g. 1GB, 500MB)`);
  return n;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
