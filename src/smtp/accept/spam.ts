// Spam stage (docs/spam.md "rspamd"), after hygiene and before sign/deliver, on port 25 and
// submission. The pure part, `spamDecision`, maps rspamd's verdict (filter/rspamd-verdict.ts)
// or its failure to a refusal or to what delivery needs: the fields to put on top (rspamd's
// and our X-Spam-Status), the header block after rspamd's removals and Subject rewrite, Junk.
// `spamStage` is its runner: it asks rspamd and, for "greylist", our greylisting (forced:
// rspamd asked for it), and counts the metrics; the pipeline logs the refusals.
//
// Port 25: every action applies; clients in [hygiene] trusted_networks are not scanned.
// Submission ([spam] scan_submission): rspamd learns the user (User header); reject and soft
// reject refuse the message as on port 25, the rest delivers it unchanged (an authenticated
// user is never greylisted, and our verdict headers never go out with a user's mail).
// Whenever [spam] is on, a sender's own X-Spam-Status is removed: only ours is ever trusted.

import type { AccountId } from '../../core/ids.ts';
import type { Logger } from '../../core/log.ts';
import { spamScanSeconds, spamScans } from '../../core/metrics.ts';
import type { Greylister } from '../../defense/types.ts';
import { editHeader } from '../../filter/header-edit.ts';
import type { SpamScanner } from '../../filter/rspamd.ts';
import { type ScanLabel, type SpamVerdict, STATUS_FIELD, scanLabel, spamVerdict } from '../../filter/rspamd-verdict.ts';
import type { SpooledMessage } from '../../store/types.ts';
import type { ConnState, SmtpDeps, SmtpSession } from '../context.ts';
import { REPLIES } from '../replies.ts';
import { type Decision, refuse } from './decision.ts';

export type SpamOutcome = Decision<{
  /** Fields to put on top of every copy ('' for none). */
  readonly header: string;
  /** The local accounts of the message go to Junk. */
  readonly junk: boolean;
  /** The rewritten header block, or null when unchanged. */
  readonly head: Buffer | null;
}>;

/** What the runner found: a verdict, rspamd's failure, or no scan. */
export type ScanResult =
  | { readonly kind: 'verdict'; readonly verdict: SpamVerdict; readonly greylisted: boolean }
  | { readonly kind: 'failed'; readonly error: string; readonly policy: 'accept' | 'tempfail' }
  | { readonly kind: 'unscanned' };

const FORGED = [{ name: STATUS_FIELD.toLowerCase(), order: 0 }] as const;

export function spamDecision(r: ScanResult, headerBlock: Buffer, submission: boolean): SpamOutcome {
  if (r.kind === 'failed' && r.policy === 'tempfail')
    return refuse(REPLIES.spamFilterUnavailable(), 'warn', 'spam scan failed, message deferred', { error: r.error });
  if (r.kind !== 'verdict') return asReceived(headerBlock);
  const v = r.verdict;
  switch (v.kind) {
    case 'reject':
      return refuse(REPLIES.spamRejected(v.text), 'info', 'message rejected as spam', { text: v.text });
    case 'soft-reject':
      return refuse(REPLIES.spamDeferred(v.text), 'info', 'message deferred by the spam filter', { text: v.text });
    case 'greylist':
      if (r.greylisted && !submission) return refuse(REPLIES.greylisted(), 'info', 'message greylisted (rspamd)');
      return asReceived(headerBlock);
    default:
      if (submission) return asReceived(headerBlock);
      return { kind: 'continue', header: v.add, junk: v.junk, head: editHeader(headerBlock, v) };
  }
}

/** Delivered as received, but for a sender's X-Spam-Status. */
function asReceived(headerBlock: Buffer): SpamOutcome {
  return {
    kind: 'continue',
    header: '',
    junk: false,
    head: editHeader(headerBlock, { remove: FORGED, subject: null }),
  };
}

/** The accounts that get the message in Junk: the hygiene stage's, and every local account
 *  when the spam filter says so. */
export function junkAccounts(
  hygiene: ReadonlySet<AccountId>,
  accounts: ReadonlySet<AccountId>,
  spam: boolean,
): ReadonlySet<AccountId> {
  return spam ? new Set([...hygiene, ...accounts]) : hygiene;
}

export interface SpamInput {
  /** The message as it will be delivered so far (forged Authentication-Results removed). */
  readonly message: SpooledMessage;
  readonly headerBlock: Buffer;
  readonly session: SmtpSession;
  readonly state: ConnState;
  readonly msgId: string;
  readonly log: Logger;
}

const counters = new Map<ScanLabel, { inc(): void }>();
function count(label: ScanLabel): void {
  let c = counters.get(label);
  if (!c) {
    c = spamScans.labels({ action: label });
    counters.set(label, c);
  }
  c.inc();
}

/** Runs the stage; undefined when [spam] is off (nothing to do, not even the forged header). */
export async function spamStage(deps: SmtpDeps, i: SpamInput): Promise<SpamOutcome | undefined> {
  const scanner = deps.spam;
  if (!scanner) return undefined;
  const submission = deps.role === 'submission';
  const r = await scan(deps, scanner, i, submission);
  return spamDecision(r, i.headerBlock, submission);
}

async function scan(deps: SmtpDeps, scanner: SpamScanner, i: SpamInput, submission: boolean): Promise<ScanResult> {
  const { session, state } = i;
  const o = scanner.options;
  const skip =
    (submission && !o.scan_submission) ||
    (!submission && deps.hygiene?.isTrusted(session.remoteAddress) === true) ||
    i.message.size > o.max_size;
  if (skip) {
    count('skipped');
    return { kind: 'unscanned' };
  }
  const txn = state.txn;
  const recipients = [...txn.recipients.keys(), ...txn.remote.keys()];
  const started = performance.now();
  let verdict: SpamVerdict;
  try {
    const reply = await scanner.scan({
      message: i.message,
      sender: session.mailFrom ?? '',
      recipients,
      ip: session.remoteAddress,
      helo: session.helo,
      hostname: await session.clientHostname(),
      user: submission ? session.user : null,
      queueId: i.msgId,
      tls: session.tlsInfo,
      settingsId: submission ? o.submission_settings_id : o.settings_id,
    });
    spamScanSeconds.observe((performance.now() - started) / 1000);
    count(scanLabel(reply.action));
    verdict = spamVerdict(reply, { statusHeader: o.status_header && !submission });
    if (reply.action !== 'no action')
      i.log.info({ action: reply.action, score: reply.score, required: reply.required_score }, 'spam scanned');
  } catch (e) {
    count('error');
    const error = e instanceof Error ? e.message : String(e);
    if (o.failure === 'accept') i.log.warn({ error }, 'spam scan failed, message accepted unscanned');
    return { kind: 'failed', error, policy: o.failure };
  }
  if (verdict.kind !== 'greylist' || submission) return { kind: 'verdict', verdict, greylisted: false };
  return { kind: 'verdict', verdict, greylisted: await greylisted(deps.greylist, session, recipients) };
}

/** rspamd asked for greylisting: our greylister decides per recipient (forced, as greylisting
 *  may be off in [greylist]), every triplet asked so that each starts its delay now and the
 *  retry passes them all; deferred if any defers. Without a greylister the message is deferred
 *  (the sender retries, and rspamd decides again then). */
export async function greylisted(
  g: Greylister | undefined,
  session: Pick<SmtpSession, 'remoteAddress' | 'mailFrom'>,
  recipients: readonly string[],
): Promise<boolean> {
  if (!g) return true;
  const sender = session.mailFrom ?? '';
  const answers = await Promise.all(
    recipients.map((recipient) => g.check({ ip: session.remoteAddress, sender, recipient }, { force: true })),
  );
  return answers.some((a) => a.kind === 'defer');
}
