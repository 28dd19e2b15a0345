// `arcline check`: the certificate each TLS listener presents, found the way a peer finds it:
// implicit TLS (465, 993), or the SMTP greeting, EHLO and STARTTLS first (25, 587; RFC 3207 §4),
// and the MTA-STS policy fetched over HTTPS as a sender would (RFC 8461 §3.3). Every probe has
// one deadline and reads at most LIMITS.check.maxReplyBytes; nothing here throws.

import { request } from 'node:https';
import net from 'node:net';
import tls, { type PeerCertificate, type TLSSocket } from 'node:tls';
import { LIMITS } from '../core/limits.ts';
import type { CertFacts } from './facts.ts';

export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
  /** The name asked for (SNI) and checked. */
  readonly servername: string;
  /** CA certificates to trust instead of the system's (tests). */
  readonly ca?: readonly string[] | undefined;
  readonly timeoutMs?: number;
}

/** The facts of a peer certificate as node:tls reports them. */
export function certFacts(s: TLSSocket): CertFacts | null {
  const c: PeerCertificate = s.getPeerCertificate();
  if (!c || Object.keys(c).length === 0) return null;
  const alt = (c.subjectaltname ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.startsWith('DNS:'))
    .map((x) => x.slice(4).toLowerCase());
  const cn = typeof c.subject?.CN === 'string' ? [c.subject.CN.toLowerCase()] : [];
  const err = s.authorizationError;
  return {
    names: alt.length > 0 ? alt : cn,
    notBefore: new Date(c.valid_from),
    notAfter: new Date(c.valid_to),
    issuer: typeof c.issuer?.CN === 'string' ? c.issuer.CN : '',
    trusted: s.authorized,
    trustError: err ? String(err) : null,
  };
}

type Outcome = { ok: true; cert: CertFacts } | { ok: false; error: string };

/** Implicit TLS (465, 993), or STARTTLS after the SMTP greeting and EHLO (25, 587). */
export function probeTls(t: ProbeTarget, mode: 'implicit' | 'smtp-starttls', ehloName: string): Promise<Outcome> {
  return new Promise((resolve) => {
    let done = false;
    const sockets: net.Socket[] = [];
    const finish = (o: Outcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      // The TLS socket first: it owns the TCP socket under it (destroying that first crashed Node 24).
      for (const s of sockets.reverse()) s.destroy();
      resolve(o);
    };
    const timer = setTimeout(
      () => finish({ ok: false, error: 'timed out' }),
      t.timeoutMs ?? LIMITS.check.probeTimeoutMs,
    );
    timer.unref();
    const handshake = (socket?: net.Socket) => {
      const s = tls.connect({
        ...(socket ? { socket } : { host: t.host, port: t.port }),
        servername: t.servername,
        rejectUnauthorized: false,
        ...(t.ca ? { ca: [...t.ca] } : {}),
      });
      sockets.push(s);
      s.once('secureConnect', () => {
        const cert = certFacts(s);
        finish(cert ? { ok: true, cert } : { ok: false, error: 'no certificate' });
      });
      s.once('error', (e) => finish({ ok: false, error: e.message }));
    };
    if (mode === 'implicit') return handshake();
    const sock = net.connect({ host: t.host, port: t.port });
    sockets.push(sock);
    sock.once('error', (e) => finish({ ok: false, error: e.message }));
    let buf = '';
    let step: 'greeting' | 'ehlo' | 'starttls' = 'greeting';
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      if (buf.length > LIMITS.check.maxReplyBytes) return finish({ ok: false, error: 'reply too long' });
      // A reply ends with a line "NNN text" (RFC 5321 §4.2.1: "NNN-" continues it).
      const lines = buf.split('\r\n');
      const last = lines.length >= 2 ? (lines[lines.length - 2] as string) : '';
      if (!/^\d{3}( |$)/.test(last)) return;
      const code = last.slice(0, 3);
      const reply = buf;
      buf = '';
      if (step === 'greeting') {
        if (code !== '220') return finish({ ok: false, error: `greeting ${reply.trim().slice(0, 200)}` });
        step = 'ehlo';
        sock.write(`EHLO ${ehloName}\r\n`);
      } else if (step === 'ehlo') {
        if (code !== '250') return finish({ ok: false, error: `EHLO refused: ${last.slice(0, 200)}` });
        if (!/^250[- ]STARTTLS\b/im.test(reply)) return finish({ ok: false, error: 'STARTTLS not offered' });
        step = 'starttls';
        sock.write('STARTTLS\r\n');
      } else {
        if (code !== '220') return finish({ ok: false, error: `STARTTLS refused: ${last.slice(0, 200)}` });
        sock.off('data', onData);
        handshake(sock);
      }
    };
    sock.on('data', onData);
  });
}

/** GET https://{servername}/.well-known/mta-sts.txt from host:port (our listener). */
export function fetchMtaStsPolicy(
  t: ProbeTarget,
): Promise<{ ok: true; status: number; body: string; cert: CertFacts } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (o: { ok: true; status: number; body: string; cert: CertFacts } | { ok: false; error: string }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve(o);
    };
    const req = request({
      host: t.host,
      port: t.port,
      servername: t.servername,
      path: '/.well-known/mta-sts.txt',
      headers: { host: t.servername },
      rejectUnauthorized: false,
      agent: false,
      ...(t.ca ? { ca: [...t.ca] } : {}),
    });
    const timer = setTimeout(
      () => finish({ ok: false, error: 'timed out' }),
      t.timeoutMs ?? LIMITS.check.probeTimeoutMs,
    );
    timer.unref();
    req.once('error', (e) => finish({ ok: false, error: e.message }));
    req.once('response', (res) => {
      const cert = certFacts(res.socket as TLSSocket);
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
        if (body.length > LIMITS.check.maxReplyBytes) finish({ ok: false, error: 'policy too long' });
      });
      res.once('end', () =>
        finish(cert ? { ok: true, status: res.statusCode ?? 0, body, cert } : { ok: false, error: 'no certificate' }),
      );
      res.once('error', (e) => finish({ ok: false, error: e.message }));
    });
    req.end();
  });
}
