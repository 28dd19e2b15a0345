// EmailSubmission following the outbound queue (RFC 8621 §7): deliveryStatus from the remote
// MX's replies (a fake MX on loopback found through a real DNS server), delayed send
// (HOLDFOR, RFC 4865) pending then canceled or released on time, cannotUnsend once sent; and
// PushSubscriptions (RFC 8620 §7.2) kept across a restart, their StateChanges POSTed to a
// loopback listener. The server is restarted in the same directory half way.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import { accountIdOf } from '../../src/jmap/session.ts';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';
import { type FakeMx, startFakeMx } from '../harness/mx.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { waitUntil } from '../harness/submit.ts';
import { appendDraft, jmapCall, SUBMISSION } from './submission-support.ts';

const ALICE = 'alice@example.test' as AccountId;
const aliceId = accountIdOf(ALICE);
const VACATION = 'urn:ietf:params:jmap:vacationresponse';

let dir: string;
let s: TestServer;
let base: string;
let dns: TestDnsServer;
let mx: FakeMx;
/** A next hop offering DSN (RFC 3461), for dsn.test, on another loopback address. */
let dsnMx: FakeMx;
let sink: Server;
let sinkPort: number;
/** The bodies POSTed to the push sink, parsed. */
const pushed: Record<string, unknown>[] = [];

async function start(): Promise<void> {
  s = await startTestServer({
    dir,
    http: true,
    auth: 'failure_delay = "0s"',
    extra:
      `[delivery]\nport = ${mx.port}\nretry_schedule = ["300ms"]\n[dns]\nservers = ["${dns.address}"]\n` +
      `[jmap]\nmax_delayed_send = "1h"\npush_url_patterns = ["http://127.0.0.1:${sinkPort}/push/*"]`,
  });
  base = `http://127.0.0.1:${s.server.http[0]?.port}`;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'arcline-subq-'));
  mx = await startFakeMx({
    onRcpt: (a) => (a.startsWith('nobody@') ? { code: 550, message: '5.1.1 No such user here' } : null),
  });
  dsnMx = await startFakeMx({ host: '127.0.0.3', port: mx.port, dsn: true });
  dns = await startTestDns([
    { type: 'MX', name: 'remote.test', preference: 10, exchange: 'mx.remote.test' },
    { type: 'A', name: 'mx.remote.test', address: '127.0.0.1' },
    { type: 'MX', name: 'dsn.test', preference: 10, exchange: 'mx.dsn.test' },
    { type: 'A', name: 'mx.dsn.test', address: '127.0.0.3' },
  ]);
  sink = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      pushed.push({ path: req.url, ...(JSON.parse(Buffer.concat(chunks).toString()) as object) });
      res.writeHead(201).end();
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  sinkPort = (sink.address() as AddressInfo).port;
  await start();
  await s.admin.ops.addDomain('example.test');
  await s.admin.ops.addUser(ALICE, { password: 'secret-password' });
});

after(async () => {
  await s?.stop();
  await mx?.close();
  await dsnMx?.close();
  await dns?.close();
  sink?.close();
  await rm(dir, { recursive: true, force: true });
});

// biome-ignore lint/suspicious/noExplicitAny: JSON answers of many shapes, asserted field by field
const api = (using: string[], calls: unknown[]): Promise<any[]> => jmapCall(base, ALICE, using, calls);

const mail = (to: string, subject: string) =>
  `From: Alice <alice@example.test>\r\nTo: ${to}\r\nSubject: ${subject}\r\n` +
  `Date: Mon, 07 Dec 2026 06:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.test>\r\n\r\nHi.\r\n`;

let identityId: string;

/** Submits a new draft to `to`; the create's answer (or its SetError) and the draft. */
async function submit(
  to: string,
  subject: string,
  o: {
    mailFrom?: Record<string, string>;
    after?: (d: { drafts: string; sent: string }) => Record<string, unknown>;
  } = {},
) {
  const d = await appendDraft(s, ALICE, mail(to, subject));
  identityId ??= (await api([SUBMISSION], [['Identity/get', { accountId: aliceId }, 'i']]))[0][1].list[0].id;
  const envelope = o.mailFrom
    ? { mailFrom: { email: ALICE, parameters: o.mailFrom }, rcptTo: [{ email: to }] }
    : undefined;
  const r = await api(
    [SUBMISSION],
    [
      [
        'EmailSubmission/set',
        {
          accountId: aliceId,
          create: { k: { identityId, emailId: d.emailId, ...(envelope ? { envelope } : {}) } },
          ...(o.after ? { onSuccessUpdateEmail: { '#k': o.after(d) } } : {}),
        },
        's',
      ],
    ],
  );
  return {
    created: r[0][1].created?.k,
    notCreated: r[0][1].notCreated?.k,
    draft: d,
    state: r[0][1].newState,
    // The implicit Email/set response (§7.5), when onSuccess* were given.
    implicit: r[1]?.[0] === 'Email/set' ? r[1][1] : undefined,
  };
}

async function getSubmission(id: string) {
  const r = await api([SUBMISSION], [['EmailSubmission/get', { accountId: aliceId, ids: [id] }, 'g']]);
  return r[0][1].list[0];
}

/** The submission once `pred` holds (polled over JMAP). */
// biome-ignore lint/suspicious/noExplicitAny: a submission object
const once = (id: string, what: string, pred: (x: any) => boolean) =>
  waitUntil(what, async () => {
    const x = await getSubmission(id);
    return pred(x) ? x : null;
  });

test('deliveryStatus follows the queue: yes with the MX reply, no on a 5xx; state and /changes move', async () => {
  const ok = await submit('carol@remote.test', 'queue status ok');
  assert.equal(ok.created.undoStatus, 'final');
  assert.equal(ok.created.deliveryStatus['carol@remote.test'].delivered, 'queued');
  const done = await once(
    ok.created.id,
    'delivered yes',
    (x) => x.deliveryStatus['carol@remote.test'].delivered === 'yes',
  );
  assert.match(done.deliveryStatus['carol@remote.test'].smtpReply, /^250 /);
  assert.ok(mx.mails.some((m) => m.data.toString().includes('queue status ok')));
  const [[, changes]] = await api(
    [SUBMISSION],
    [['EmailSubmission/changes', { accountId: aliceId, sinceState: ok.state }, 'c']],
  );
  assert.deepEqual(changes.updated, [ok.created.id]);

  const bad = await submit('nobody@remote.test', 'queue status bad');
  const failed = await once(
    bad.created.id,
    'delivered no',
    (x) => x.deliveryStatus['nobody@remote.test'].delivered === 'no',
  );
  assert.match(failed.deliveryStatus['nobody@remote.test'].smtpReply, /^550 5\.1\.1 No such user here/);
  // Sent: too late to cancel.
  const [[, u]] = await api(
    [SUBMISSION],
    [['EmailSubmission/set', { accountId: aliceId, update: { [ok.created.id]: { undoStatus: 'canceled' } } }, 'u']],
  );
  assert.equal(u.notUpdated[ok.created.id].type, 'cannotUnsend');
});

test('DSN through the envelope (RFC 8621 §7): RET, ENVID, NOTIFY, ORCPT reach a next hop offering DSN', async () => {
  identityId ??= (await api([SUBMISSION], [['Identity/get', { accountId: aliceId }, 'i']]))[0][1].list[0].id;
  const create = async (subject: string, rcpt: Record<string, string>) => {
    const d = await appendDraft(s, ALICE, mail('carol@dsn.test', subject));
    const envelope = {
      // Values without their xtext encoding (§7): "+" and "=" are encoded again for the next hop.
      mailFrom: { email: ALICE, parameters: { RET: 'HDRS', envid: 'env+id=jmap' } },
      rcptTo: [{ email: 'carol@dsn.test', parameters: rcpt }],
    };
    const r = await api(
      [SUBMISSION],
      [
        [
          'EmailSubmission/set',
          { accountId: aliceId, create: { k: { identityId, emailId: d.emailId, envelope } } },
          's',
        ],
      ],
    );
    return r[0][1];
  };
  const ok = await create('jmap dsn round trip', { NOTIFY: 'SUCCESS,FAILURE', ORCPT: 'rfc822;Carol@dsn.test' });
  assert.ok(ok.created?.k, JSON.stringify(ok.notCreated));
  const [got] = await dsnMx.waitFor(1);
  assert.ok(got?.data.toString().includes('jmap dsn round trip'));
  assert.equal(got?.dsn?.ret, 'HDRS');
  assert.equal(got?.dsn?.envid, 'env+id=jmap');
  assert.deepEqual(got?.rcptDsn['carol@dsn.test']?.notify, ['SUCCESS', 'FAILURE']);
  assert.equal(got?.rcptDsn['carol@dsn.test']?.orcpt, 'rfc822;Carol@dsn.test');
  // A malformed value is refused as SMTP refuses it (RFC 3461 §4.1: NEVER alone).
  const bad = await create('jmap dsn malformed', { NOTIFY: 'NEVER,SUCCESS' });
  assert.equal(bad.notCreated?.k?.type, 'invalidProperties');
  assert.match(bad.notCreated?.k?.description, /NOTIFY/);
});

test('HOLDFOR: pending then canceled (never sent), another released on time; onSuccess* at create (§7.5)', async () => {
  // Beyond maxDelayedSend (1h here), and the capability that says so.
  const far = await submit('dan@remote.test', 'too far', { mailFrom: { HOLDFOR: '7200' } });
  assert.equal(far.notCreated.type, 'invalidProperties');
  const session = (await (
    await fetch(`${base}/.well-known/jmap`, {
      headers: { authorization: `Basic ${Buffer.from(`${ALICE}:secret-password`).toString('base64')}` },
    })
  ).json()) as { accounts: Record<string, { accountCapabilities: Record<string, unknown> }> };
  assert.deepEqual(session.accounts[aliceId]?.accountCapabilities[SUBMISSION], {
    maxDelayedSend: 3600,
    submissionExtensions: { DSN: [], FUTURERELEASE: ['3600'] },
  });

  const held = await submit('erin@remote.test', 'held then canceled', {
    mailFrom: { HOLDFOR: '600' },
    after: () => ({ 'keywords/$draft': null }),
  });
  assert.equal(held.created.undoStatus, 'pending');
  assert.ok(Date.parse(held.created.sendAt) >= Date.now() + 590_000);
  // §7.5: onSuccessUpdateEmail follows the create's success (the implicit Email/set answered
  // with it), not the sending.
  assert.deepEqual(held.implicit?.updated, { [held.draft.emailId]: null });
  const queued = (await s.admin.queue.list()).filter((m) => m.releaseAt > 0);
  assert.equal(queued.length, 1);
  const pendingFilter = { accountId: aliceId, filter: { undoStatus: 'pending' } };
  const [[, pendingNow]] = await api([SUBMISSION], [['EmailSubmission/query', pendingFilter, 'q']]);
  assert.deepEqual(pendingNow.ids, [held.created.id]);
  const r = await api(
    [SUBMISSION],
    [
      ['EmailSubmission/set', { accountId: aliceId, update: { [held.created.id]: { undoStatus: 'canceled' } } }, 'u'],
      ['EmailSubmission/get', { accountId: aliceId, ids: [held.created.id], properties: ['undoStatus'] }, 'g'],
    ],
  );
  assert.deepEqual(r[0][1].updated, { [held.created.id]: null });
  assert.equal(r[1][1].list[0].undoStatus, 'canceled');
  // It left the undoStatus "pending" query: an old query state by that filter cannot be
  // brought up to date.
  const [[, qc]] = await api(
    [SUBMISSION],
    [['EmailSubmission/queryChanges', { ...pendingFilter, sinceQueryState: pendingNow.queryState }, 'qc']],
  );
  assert.equal(qc.type, 'cannotCalculateChanges');
  assert.equal((await s.admin.queue.list()).filter((m) => m.releaseAt > 0).length, 0);
  // Its onSuccessUpdateEmail ran at the create: the draft lost $draft (a client undoing the
  // send restores it).
  const [located] = await s.admin.store.accounts.locate(ALICE, [held.draft.emailId]);
  assert.ok(!located?.copies[0]?.flags.includes('\\Draft'));

  // Released on time: pending, then final once handed over, at the MX not before sendAt; its
  // Email moved to Sent then.
  const soon = await submit('frank@remote.test', 'held then sent', {
    mailFrom: { HOLDFOR: '1' },
    after: (d) => ({ [`mailboxIds/${d.drafts}`]: null, [`mailboxIds/${d.sent}`]: true }),
  });
  assert.equal(soon.created.undoStatus, 'pending');
  const sendAt = Date.parse(soon.created.sendAt);
  const arrived = await waitUntil('the released message at the MX', async () =>
    mx.mails.find((m) => m.data.toString().includes('held then sent')),
  );
  assert.ok(Date.now() >= sendAt - 1000);
  assert.deepEqual(arrived.to, ['frank@remote.test']);
  const sent = await once(
    soon.created.id,
    'released and delivered',
    (x) => x.deliveryStatus['frank@remote.test'].delivered === 'yes',
  );
  assert.equal(sent.undoStatus, 'final');
  const [[, late]] = await api(
    [SUBMISSION],
    [['EmailSubmission/set', { accountId: aliceId, update: { [soon.created.id]: { undoStatus: 'canceled' } } }, 'u']],
  );
  assert.equal(late.notUpdated[soon.created.id].type, 'cannotUnsend');
  await waitUntil('the released draft in Sent', async () => {
    const [l] = await s.admin.store.accounts.locate(ALICE, [soon.draft.emailId]);
    return l?.copies.length === 1 && l.copies[0]?.mailboxId === soon.draft.sent;
  });
  // The canceled one never reached the MX.
  assert.ok(!mx.rcpts.includes('erin@remote.test'));
});

test('a delayed send and push subscriptions survive a restart; StateChange POSTed to the callback', async () => {
  const [[, created]] = await api(
    [],
    [
      [
        'PushSubscription/set',
        { create: { p: { deviceClientId: 'dev1', url: `http://127.0.0.1:${sinkPort}/push/one`, types: null } } },
        'p',
      ],
    ],
  );
  const id = created.created.p.id as string;
  const verification = await waitUntil('the PushVerification', async () =>
    pushed.find((b) => b['@type'] === 'PushVerification' && b.pushSubscriptionId === id),
  );
  const [[, verified]] = await api(
    [],
    [['PushSubscription/set', { update: { [id]: { verificationCode: verification.verificationCode } } }, 'v']],
  );
  assert.deepEqual(verified.updated, { [id]: null });

  const held = await submit('gina@remote.test', 'held over a restart', { mailFrom: { HOLDFOR: '2' } });
  assert.equal(held.created.undoStatus, 'pending');
  await s.stop();
  const restarted = pushed.length;
  await start();

  const [[, got]] = await api([], [['PushSubscription/get', { ids: null }, 'g']]);
  assert.deepEqual(
    got.list.map((p: Record<string, unknown>) => [p.id, p.deviceClientId, p.verificationCode]),
    [[id, 'dev1', verification.verificationCode]],
  );
  // The delayed send is released by the restarted server and followed to its delivery.
  const done = await once(
    held.created.id,
    'released after the restart',
    (x) => x.deliveryStatus['gina@remote.test'].delivered === 'yes',
  );
  assert.equal(done.undoStatus, 'final');
  // Its new EmailSubmission states were pushed to the kept subscription.
  await waitUntil('an EmailSubmission StateChange after the restart', async () =>
    pushed
      .slice(restarted)
      .some(
        (b) =>
          b['@type'] === 'StateChange' &&
          (b.changed as Record<string, Record<string, string>>)[aliceId]?.EmailSubmission !== undefined,
      ),
  );
  // A change after the restart reaches the callback.
  const before = pushed.length;
  const [[, v]] = await api(
    [VACATION],
    [['VacationResponse/set', { accountId: aliceId, update: { singleton: { isEnabled: false } } }, 'v']],
  );
  const change = await waitUntil('a StateChange after the restart', async () =>
    pushed
      .slice(before)
      .find(
        (b) =>
          b['@type'] === 'StateChange' &&
          (b.changed as Record<string, Record<string, string>>)[aliceId]?.VacationResponse === v.newState,
      ),
  );
  assert.equal(change.path, '/push/one');
  // Destroyed: gone for good (also after another restart).
  await api([], [['PushSubscription/set', { destroy: [id] }, 'd']]);
  await s.stop();
  await start();
  const [[, none]] = await api([], [['PushSubscription/get', { ids: null }, 'g']]);
  assert.deepEqual(none.list, []);
});
