// An rspamd client over HTTP (POST /checkv2, as maddy, Haraka and ZoneMTA use it; rspamd's
// protocol: https://rspamd.com/doc/developers/protocol.html). The message is streamed from the
// spool with its Content-Length, never read into memory whole; the SMTP facts go in rspamd's
// request headers (From, one Rcpt per recipient, IP, Helo, Hostname, User, Queue-ID,
// TLS-Version, TLS-Cipher, Settings-ID). The JSON reply is read up to LIMITS.spam.maxReplyBytes
// and checked by a zod schema; what it means for the message is rspamd-verdict.ts's job (pure).
// Every failure (refused connection, timeout, HTTP status, oversized or malformed reply) is
// thrown as one error: the caller applies [spam] failure.

import http from 'node:http';
import { pipeline } from 'node:stream';
import { z } from 'zod';
import type { Config } from '../config/schema.ts';
import { LIMITS } from '../core/limits.ts';
import { oneLine } from '../core/text.ts';
import type { SpooledMessage } from '../store/types.ts';

/** What rspamd is told besides the message (its "HTTP headers" table). */
export interface ScanRequest {
  readonly message: SpooledMessage;
  /** The envelope sender ('' for the null sender). */
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly ip: string;
  readonly helo: string;
  /** The client's host name by reverse DNS; null: unknown (rspamd then treats it so). */
  readonly hostname: string | null;
  /** The authenticated user (submission); null on port 25. */
  readonly user: string | null;
  readonly queueId: string;
  readonly tls: { readonly version: string; readonly cipher: string } | null;
  /** '' for none. */
  readonly settingsId: string;
}

/** The scanner the acceptance stage uses. */
export interface SpamScanner {
  /** The [spam] section: the stage's policy (max_size, failure, scan_submission...). */
  readonly options: Config['spam'];
  scan(r: ScanRequest): Promise<RspamdReply>;
}

const headerValue = z.union([z.string(), z.object({ value: z.string(), order: z.number().optional() })]);

/** The part of rspamd's reply we act on; other keys (urls, emails, time_real...) are dropped. */
export const rspamdReplySchema = z.object({
  /** "no action", "greylist", "add header", "rewrite subject", "soft reject", "reject" (or a
   *  custom action of the operator's, treated as "no action"). */
  action: z.string().max(64),
  score: z.number(),
  required_score: z.number(),
  symbols: z.record(z.string(), z.object({ name: z.string().optional(), score: z.number().optional() })).optional(),
  /** The whole new Subject for "rewrite subject". */
  subject: z.string().optional(),
  messages: z.object({ smtp_message: z.string().optional() }).optional(),
  milter: z
    .object({
      add_headers: z.record(z.string(), z.union([headerValue, z.array(headerValue)])).optional(),
      remove_headers: z.record(z.string(), z.number()).optional(),
    })
    .optional(),
});
export type RspamdReply = z.infer<typeof rspamdReplySchema>;

export class RspamdError extends Error {}

/** An HTTP header value as bytes: UTF-8 addresses (SMTPUTF8) pass as their UTF-8 octets (node
 *  writes header strings as latin1), control characters never (no header can be ended early). */
function headerText(s: string): string {
  return Buffer.from(oneLine(s), 'utf8').toString('latin1');
}

export class RspamdClient implements SpamScanner {
  readonly options: Config['spam'];
  readonly #url: URL;
  readonly #timeoutMs: number;
  /** One connection per scan (rspamd is near: a connection costs a fraction of a millisecond);
   *  a kept-alive one that rspamd closed while idle would fail a scan that was never sent. */
  readonly #agent = new http.Agent({ keepAlive: false });

  constructor(spam: Config['spam']) {
    const base = spam.rspamd_url.endsWith('/') ? spam.rspamd_url : `${spam.rspamd_url}/`;
    this.#url = new URL('checkv2', base);
    this.#timeoutMs = spam.timeout;
    this.options = spam;
  }

  scan(r: ScanRequest): Promise<RspamdReply> {
    const headers: Record<string, string | string[]> = {
      'Content-Length': String(r.message.size),
      From: headerText(r.sender),
      IP: headerText(r.ip),
      Helo: headerText(r.helo),
      'Queue-ID': headerText(r.queueId),
    };
    if (r.recipients.length > 0) headers.Rcpt = r.recipients.map(headerText);
    if (r.hostname) headers.Hostname = headerText(r.hostname);
    if (r.user) headers.User = headerText(r.user);
    if (r.tls) {
      headers['TLS-Version'] = headerText(r.tls.version);
      headers['TLS-Cipher'] = headerText(r.tls.cipher);
    }
    if (r.settingsId) headers['Settings-ID'] = r.settingsId;
    return new Promise<RspamdReply>((resolve, reject) => {
      let settled = false;
      const fail = (e: unknown) => {
        if (settled) return;
        settled = true;
        reject(e instanceof RspamdError ? e : new RspamdError(errorText(e)));
      };
      const req = http.request(this.#url, {
        method: 'POST',
        agent: this.#agent,
        headers,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      // The request's own errors (the timeout's abort among them) after the body was sent:
      // pipeline() stops listening once the request is written.
      req.on('error', fail);
      req.on('response', (res) => {
        const fromHeader = Number(res.headers['content-length'] ?? 0);
        if (res.statusCode !== 200 || fromHeader > LIMITS.spam.maxReplyBytes) {
          res.destroy();
          fail(new RspamdError(`rspamd answered HTTP ${res.statusCode} (${fromHeader} bytes)`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > LIMITS.spam.maxReplyBytes) {
            res.destroy();
            fail(new RspamdError('rspamd reply too large'));
            return;
          }
          chunks.push(c);
        });
        res.on('error', fail);
        res.on('end', () => {
          if (settled) return;
          try {
            const parsed = rspamdReplySchema.safeParse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
            if (!parsed.success) throw new RspamdError('rspamd reply not understood');
            settled = true;
            resolve(parsed.data);
          } catch (e) {
            fail(e);
          }
        });
      });
      // The spool streams into the request; an error on either side ends both.
      pipeline(r.message.open(), req, (err) => {
        if (err) fail(err);
      });
    });
  }
}

function errorText(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'rspamd timed out';
    return code ? `rspamd unreachable: ${code}` : `rspamd failed: ${e.message}`;
  }
  return 'rspamd failed';
}

/** The SMTP dependency for this configuration: none when [spam] rspamd_url is empty. */
export function spamDeps(config: Config): { spam?: SpamScanner } {
  return config.spam.rspamd_url ? { spam: new RspamdClient(config.spam) } : {};
}
