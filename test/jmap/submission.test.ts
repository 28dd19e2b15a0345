// JMAP Identity, EmailSubmission and VacationResponse (RFC 8621 §6-§8) over real HTTP against
// the real server, and the VacationResponse answered at delivery: mail from a remote sender
// arrives on port 25 and one reply reaches a fake MX on loopback (found through a real DNS
// server), as with a Sieve vacation (test/sieve/delivery.test.ts).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dkimVerify } from 'mailauth';
import type { AccountId } from '../../src/core/ids.ts';
import { createPromiseResolver } from '../../src/dns/resolver.ts';
import { dkimRecordName, dkimTxtValue } from '../../src/hygiene/dkim-keys.ts';
import { accountIdOf } from '../../src/jmap/session.ts';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';
import { type FakeMx, startFakeMx } from '../harness/mx.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { transaction } from '../harness/smtp-client.ts';
import { waitUntil } from '../harness/submit.ts';
import { appendDraft, auth, jmapCall, SUBMISSION } from './submission-support.ts';

const ALICE = 'alice@example.test' as AccountId;
const VACATION = 'urn:ietf:params:jmap:vacationresponse';
const aliceId = accountIdOf(ALICE);

let s: TestServer;
let base: string;
let dns: TestDnsServer;
let mx: FakeMx;

// biome-ignore lint/suspicious/noExplicitAny: JSON answers of many shapes, asserted field by field
const api = (using: string[], methodCalls: unknown[], user: string = ALICE): Promise<any[]> =>
  jmapCall(base, user, using, methodCalls);

function message(o: { from?: string; to?: string; subject: string; extra?: string }): string {
  const id = o.subject.replace(/\W/g, '');
  return (
    `From: ${o.from ?? 'Carol <carol@remote.test>'}\r\nTo: ${o.to ?? 'alice@example.test'}\r\n` +
    `Subject: ${o.subject}\r\nDate: Mon, 07 Dec 2026 03:00:00 +0000\r\nMessage-ID: <${id}@remote.test>\r\n` +
    `${o.extra ?? ''}\r\nHello.\r\n`
  );
}

before(async () => {
  mx = await startFakeMx();
  dns = await startTestDns([
    { type: 'MX', name: 'remote.test', preference: 10, exchange: 'mx.remote.test' },
    { type: 'A', name: 'mx.remote.test', address: '127.0.0.1' },
  ]);
  s = await startTestServer({
    http: true,
    auth: 'failure_delay = "0s"',
    // Two inbound threads: the JMAP vacation is found by the hand-over to the main thread too.
    smtp: 'threads = 2',
    // Two messages an hour: the third JMAP submission is refused (rateLimit).
    extra:
      `[delivery]\nport = ${mx.port}\nretry_schedule = ["300ms"]\n[dns]\nservers = ["${dns.address}"]\n` +
      '[rate_limits]\nmessages_per_hour = 2',
  });
  base = `http://127.0.0.1:${s.server.http[0]?.port}`;
  await s.admin.ops.addAlias('sales@example.test', [ALICE]);
  for (const k of await s.admin.dkim.keys('example.test'))
    dns.add({ type: 'TXT', name: dkimRecordName(k), text: dkimTxtValue(k) });
});

after(async () => {
  await s?.stop();
  await mx?.close();
  await dns?.close();
});

describe('VacationResponse (RFC 8621 §8)', () => {
  test('the singleton: get, set, state, singleton errors, invalid properties', async () => {
    const session = (await (
      await fetch(`${base}/.well-known/jmap`, { headers: { authorization: auth(ALICE) } })
    ).json()) as {
      capabilities: Record<string, unknown>;
      accounts: Record<string, { accountCapabilities: Record<string, unknown> }>;
    };
    assert.deepEqual(session.capabilities[VACATION], {});
    assert.deepEqual(session.accounts[aliceId]?.accountCapabilities[VACATION], {});

    const [[name, got]] = await api([VACATION], [['VacationResponse/get', { accountId: aliceId, ids: null }, 'g']]);
    assert.equal(name, 'VacationResponse/get');
    assert.deepEqual(got.list, [
      {
        id: 'singleton',
        isEnabled: false,
        fromDate: null,
        toDate: null,
        subject: null,
        textBody: null,
        htmlBody: null,
      },
    ]);
    const state0 = got.state;

    const r = await api(
      [VACATION],
      [
        [
          'VacationResponse/set',
          {
            accountId: aliceId,
            ifInState: state0,
            update: { singleton: { isEnabled: true, subject: 'Away', textBody: 'I am away until Monday.' } },
            create: { x: { isEnabled: true } },
          },
          's',
        ],
        ['VacationResponse/set', { accountId: aliceId, destroy: ['singleton'] }, 'd'],
        ['VacationResponse/set', { accountId: aliceId, update: { singleton: { fromDate: 'tomorrow' } } }, 'bad'],
        ['VacationResponse/set', { accountId: aliceId, update: { other: { isEnabled: false } } }, 'nf'],
        ['VacationResponse/get', { accountId: aliceId, ids: ['singleton', 'nope'], properties: ['isEnabled'] }, 'g2'],
      ],
    );
    const set = r[0][1];
    assert.deepEqual(set.updated, { singleton: null });
    assert.equal(set.notCreated.x.type, 'singleton');
    assert.notEqual(set.newState, state0);
    assert.equal(r[1][1].notDestroyed.singleton.type, 'singleton');
    r.splice(1, 1);
    assert.equal(r[1][1].notUpdated.singleton.type, 'invalidProperties');
    assert.deepEqual(r[1][1].notUpdated.singleton.properties, ['fromDate']);
    assert.equal(r[2][1].notUpdated.other.type, 'notFound');
    assert.deepEqual(r[3][1].list, [{ id: 'singleton', isEnabled: true }]);
    assert.deepEqual(r[3][1].notFound, ['nope']);
    assert.equal(r[3][1].state, set.newState);

    // Without the capability in `using` the methods are unknown (RFC 8620 §3.3).
    const [[err]] = await api([], [['VacationResponse/get', { accountId: aliceId }, 'u']]);
    assert.equal(err, 'error');
  });

  test('an enabled VacationResponse answers remote mail once per sender (the Sieve vacation)', async () => {
    await api(
      [VACATION],
      [
        [
          'VacationResponse/set',
          {
            accountId: aliceId,
            update: {
              singleton: {
                isEnabled: true,
                fromDate: '2020-01-01T00:00:00Z',
                toDate: '2100-01-01T00:00:00Z',
                subject: 'Out of office',
                textBody: 'Back on Monday.',
              },
            },
          },
          's',
        ],
      ],
    );
    for (const subject of ['first vacation test', 'second vacation test']) {
      const r = await transaction(s.port, 'carol@remote.test', [ALICE], message({ subject }));
      assert.equal(r.code, 250);
    }
    const replies = await waitUntil('the vacation reply at the remote MX', async () => {
      const m = mx.mails.filter((x) => x.data.toString().includes('Back on Monday.'));
      return m.length >= 1 ? m : null;
    });
    const reply = replies[0];
    assert.ok(reply);
    assert.equal(reply.from, '');
    assert.deepEqual(reply.to, ['carol@remote.test']);
    const text = reply.data.toString();
    assert.match(text, /^Subject: Out of office\r$/m);
    assert.match(text, /^Auto-Submitted: auto-replied\r$/m);
    assert.match(text, /^In-Reply-To: <firstvacationtest@remote\.test>\r$/m);
    // The second message from the same sender within the period gets none (RFC 5230 §4.2).
    await s.logged((l) => l.msg === 'sieve: no vacation reply' && l.why === 'already-replied');
    assert.equal(mx.mails.filter((x) => x.data.toString().includes('Back on Monday.')).length, 1);
  });

  test('a VacationResponse before its fromDate answers nothing; within its dates it does', async () => {
    const set = (singleton: Record<string, unknown>) =>
      api([VACATION], [['VacationResponse/set', { accountId: aliceId, update: { singleton } }, 's']]);
    await set({ fromDate: '2099-01-01T00:00:00Z', textBody: 'Later.' });
    const before = (await s.newFiles(ALICE)).length;
    const send = (subject: string) =>
      transaction(s.port, 'dave@remote.test', [ALICE], message({ from: 'dave@remote.test', subject }));
    assert.equal((await send('not yet away')).code, 250);
    await waitUntil('delivered', async () => ((await s.newFiles(ALICE)).length > before ? true : null));
    // Now within its dates (a new fromDate: a new absence, answered anew).
    await set({ fromDate: '2021-01-01T00:00:00Z', textBody: 'Away now.' });
    assert.equal((await send('away now')).code, 250);
    await waitUntil('the reply to dave', async () =>
      mx.mails.some((m) => m.data.toString().includes('Away now.')) ? true : null,
    );
    // The first message (delivered and its reply, if any, queued before) got none.
    assert.equal(mx.mails.filter((m) => m.data.toString().includes('Later.')).length, 0);
    // Disabled: nothing, and the state says so.
    const r = await set({ isEnabled: false });
    assert.deepEqual(r[0][1].updated, { singleton: null });
  });
});

describe('Identity (RFC 8621 §6)', () => {
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers
  const identities = async (): Promise<{ state: string; list: any[] }> => {
    const [[, r]] = await api([SUBMISSION], [['Identity/get', { accountId: aliceId, ids: null }, 'g']]);
    return r;
  };

  test('one per address the account may send as; create, update, destroy, changes', async () => {
    const session = (await (
      await fetch(`${base}/.well-known/jmap`, { headers: { authorization: auth(ALICE) } })
    ).json()) as {
      capabilities: Record<string, unknown>;
      accounts: Record<string, { accountCapabilities: Record<string, unknown> }>;
    };
    // RFC 8621 §1.3.2: {} in the session, the limits in the account's capabilities.
    assert.deepEqual(session.capabilities[SUBMISSION], {});
    // The default [jmap] max_delayed_send: 7 days, offered as FUTURERELEASE (RFC 4865).
    assert.deepEqual(session.accounts[aliceId]?.accountCapabilities[SUBMISSION], {
      maxDelayedSend: 604800,
      submissionExtensions: { DSN: [], FUTURERELEASE: ['604800'] },
    });

    const first = await identities();
    const own = first.list.find((i) => i.email === ALICE);
    assert.deepEqual(own && { ...own, id: undefined }, {
      id: undefined,
      name: '',
      email: ALICE,
      replyTo: null,
      bcc: null,
      textSignature: '',
      htmlSignature: '',
      mayDelete: false,
    });
    assert.ok(first.list.some((i) => i.email === 'sales@example.test' && i.mayDelete === false));
    assert.ok(!first.list.some((i) => i.email === 'bob@example.test'));
    // Stable ids across calls.
    assert.deepEqual((await identities()).list, first.list);

    const r = await api(
      [SUBMISSION],
      [
        [
          'Identity/set',
          {
            accountId: aliceId,
            create: {
              work: { name: 'Alice at Sales', email: 'sales@example.test', textSignature: '-- Alice' },
              bob: { name: 'Not Bob', email: 'bob@example.test' },
              bad: { email: ALICE, mayDelete: false },
            },
            update: { [own.id]: { name: 'Alice', replyTo: [{ name: null, email: 'alice@example.test' }] } },
          },
          's',
        ],
        ['Identity/get', { accountId: aliceId, ids: ['#work'] }, 'g'],
        ['Identity/set', { accountId: aliceId, destroy: [own.id, '#work'] }, 'd'],
        ['Identity/changes', { accountId: aliceId, sinceState: first.state }, 'c'],
        ['Identity/set', { accountId: aliceId, update: { [own.id]: { email: 'sales@example.test' } } }, 'u'],
      ],
    );
    const set = r[0][1];
    const workId = set.created.work.id;
    assert.equal(set.created.work.mayDelete, true);
    assert.equal(set.notCreated.bob.type, 'forbiddenFrom');
    assert.equal(set.notCreated.bad.type, 'invalidProperties');
    assert.deepEqual(set.updated, { [own.id]: null });
    assert.equal(r[1][1].list[0].textSignature, '-- Alice');
    assert.equal(r[1][1].list[0].email, 'sales@example.test');
    assert.equal(r[2][1].notDestroyed[own.id].type, 'forbidden');
    assert.deepEqual(r[2][1].destroyed, [workId]);
    // Created and destroyed since: in neither list (RFC 8620 §5.2 allows leaving it out).
    assert.deepEqual(
      { created: r[3][1].created, updated: r[3][1].updated, destroyed: r[3][1].destroyed },
      { created: [], updated: [own.id], destroyed: [] },
    );
    assert.equal(r[3][1].newState, r[2][1].newState);
    assert.equal(r[4][1].notUpdated[own.id].type, 'invalidProperties');
    const [[, bad]] = await api(
      [SUBMISSION],
      [['Identity/changes', { accountId: aliceId, sinceState: '999999' }, 'x']],
    );
    assert.equal(bad.type, 'cannotCalculateChanges');
    const after = await identities();
    assert.equal(after.list.find((i) => i.id === own.id)?.name, 'Alice');
  });

  test('the identity of a removed alias goes', async () => {
    await s.admin.ops.addAlias('temp@example.test', [ALICE]);
    const before = await identities();
    const temp = before.list.find((i) => i.email === 'temp@example.test');
    assert.ok(temp);
    await s.admin.ops.deleteAlias('temp@example.test');
    const after = await identities();
    assert.ok(!after.list.some((i) => i.email === 'temp@example.test'));
    const [[, c]] = await api(
      [SUBMISSION],
      [['Identity/changes', { accountId: aliceId, sinceState: before.state }, 'c']],
    );
    assert.deepEqual(c.destroyed, [temp.id]);
  });
});

describe('EmailSubmission (RFC 8621 §7)', () => {
  const draft = (raw: string) => appendDraft(s, ALICE, raw);

  const mail = (extra: string, subject: string) =>
    `From: Alice <alice@example.test>\r\nTo: Carol <carol@remote.test>\r\nCc: bob@example.test\r\n${extra}` +
    `Subject: ${subject}\r\nDate: Mon, 07 Dec 2026 04:00:00 +0000\r\n` +
    `Message-ID: <${subject.replace(/\W/g, '')}@example.test>\r\n\r\nHello Carol.\r\n`;

  test('sent: DKIM-signed at the remote MX, Bcc stripped, local copy, moved to Sent', async () => {
    const d = await draft(mail('Bcc: Secret <dave@remote.test>\r\n', 'jmap submission one'));
    const identities = await api([SUBMISSION], [['Identity/get', { accountId: aliceId }, 'i']]);
    const identity = identities[0][1].list.find((i: { email: string }) => i.email === ALICE);
    const r = await api(
      [SUBMISSION],
      [
        [
          'EmailSubmission/set',
          {
            accountId: aliceId,
            create: { k1: { identityId: identity.id, emailId: d.emailId } },
            onSuccessUpdateEmail: {
              '#k1': {
                [`mailboxIds/${d.drafts}`]: null,
                [`mailboxIds/${d.sent}`]: true,
                'keywords/$draft': null,
                'keywords/$seen': true,
              },
            },
          },
          's',
        ],
        ['EmailSubmission/get', { accountId: aliceId, ids: ['#k1'] }, 'g'],
      ],
    );
    const [name, set] = r[0];
    assert.equal(name, 'EmailSubmission/set', JSON.stringify(r[0]));
    const made = set.created.k1;
    assert.ok(made, JSON.stringify(set));
    assert.equal(made.undoStatus, 'final');
    assert.deepEqual(made.envelope, {
      mailFrom: { email: ALICE, parameters: null },
      rcptTo: [
        { email: 'carol@remote.test', parameters: null },
        { email: 'bob@example.test', parameters: null },
        { email: 'dave@remote.test', parameters: null },
      ],
    });
    assert.equal(made.deliveryStatus['bob@example.test'].delivered, 'yes');
    assert.equal(made.deliveryStatus['carol@remote.test'].delivered, 'queued');
    // The implicit Email/set comes right after (§7.5).
    assert.equal(r[1][0], 'Email/set');
    assert.deepEqual(r[1][1].updated, { [d.emailId]: null });
    assert.equal(r[1][2], 's');
    const got = r[2][1].list[0];
    assert.equal(got.emailId, d.emailId);
    assert.equal(got.identityId, identity.id);
    assert.equal(got.threadId, `T${d.emailId.slice(1)}`);

    // The remote MX: both remote recipients in one transaction, no Bcc:, a signature that verifies.
    const remote = await waitUntil(
      'the message at the remote MX',
      async () => mx.mails.find((m) => m.data.toString().includes('jmap submission one')) ?? null,
    );
    assert.equal(remote.from, ALICE);
    assert.deepEqual([...remote.to].sort(), ['carol@remote.test', 'dave@remote.test']);
    const text = remote.data.toString();
    assert.doesNotMatch(text, /^Bcc:/im);
    assert.doesNotMatch(text, /Secret/);
    const resolver = createPromiseResolver([dns.address]);
    const v = await dkimVerify(remote.data, {
      resolver: (n: string, rr: string) => resolver.resolve(n, rr) as Promise<string[][]>,
    });
    assert.ok(v.results.length > 0);
    for (const res of v.results) assert.deepEqual([res.signingDomain, res.status.result], ['example.test', 'pass']);
    // Bob's copy, without Bcc either.
    const bobs = await waitUntil('bob got it', async () => {
      const m = (await s.messages('bob@example.test')).find((b) => b.toString().includes('jmap submission one'));
      return m ?? null;
    });
    assert.doesNotMatch(bobs.toString(), /^Bcc:/im);
    // Moved from Drafts to Sent, \Seen set and \Draft gone.
    const [located] = await s.admin.store.accounts.locate(ALICE, [d.emailId]);
    assert.deepEqual(
      located?.copies.map((c) => [c.mailbox, [...c.flags].sort()]),
      [['Sent', ['\\Seen']]],
    );
  });

  test('forbiddenFrom, forbiddenMailFrom, invalidRecipients, unknown identity and email; cannotUnsend', async () => {
    const [id] = (await api([SUBMISSION], [['Identity/get', { accountId: aliceId }, 'i']]))[0][1].list;
    const bobs = await draft(
      mail('', 'from bob').replace('From: Alice <alice@example.test>', 'From: bob@example.test'),
    );
    const ok = await draft(mail('', 'envelope checks'));
    const before = (await api([SUBMISSION], [['EmailSubmission/get', { accountId: aliceId, ids: null }, 'g']]))[0][1];
    const r = await api(
      [SUBMISSION],
      [
        [
          'EmailSubmission/set',
          {
            accountId: aliceId,
            create: {
              bob: { identityId: id.id, emailId: bobs.emailId },
              mailFrom: {
                identityId: id.id,
                emailId: ok.emailId,
                envelope: { mailFrom: { email: 'bob@example.test' }, rcptTo: [{ email: 'carol@remote.test' }] },
              },
              nobody: {
                identityId: id.id,
                emailId: ok.emailId,
                envelope: { mailFrom: { email: ALICE }, rcptTo: [{ email: 'nobody@example.test' }] },
              },
              none: {
                identityId: id.id,
                emailId: ok.emailId,
                envelope: { mailFrom: { email: ALICE }, rcptTo: [] },
              },
              noIdentity: { identityId: 'Inope', emailId: ok.emailId },
              noEmail: { identityId: id.id, emailId: 'Mnope' },
            },
          },
          's',
        ],
      ],
    );
    const nc = r[0][1].notCreated;
    assert.equal(nc.bob.type, 'forbiddenFrom');
    assert.equal(nc.mailFrom.type, 'forbiddenMailFrom');
    assert.equal(nc.nobody.type, 'invalidRecipients');
    assert.equal(nc.none.type, 'noRecipients');
    assert.deepEqual(nc.noIdentity.properties, ['identityId']);
    assert.deepEqual(nc.noEmail.properties, ['emailId']);
    assert.equal(r[0][1].created, null);
    assert.equal(r[0][1].newState, before.state);
    // Nothing left for these.
    assert.equal(mx.mails.filter((m) => m.data.toString().includes('envelope checks')).length, 0);

    const sent = before.list[0];
    const u = await api(
      [SUBMISSION],
      [
        ['EmailSubmission/set', { accountId: aliceId, update: { [sent.id]: { undoStatus: 'canceled' } } }, 'u'],
        ['EmailSubmission/query', { accountId: aliceId, filter: { emailIds: [sent.emailId] } }, 'q'],
        ['EmailSubmission/query', { accountId: aliceId, filter: { undoStatus: 'pending' } }, 'q2'],
        ['EmailSubmission/changes', { accountId: aliceId, sinceState: '0' }, 'c'],
        ['EmailSubmission/queryChanges', { accountId: aliceId, sinceQueryState: '0' }, 'qc'],
        ['EmailSubmission/set', { accountId: aliceId, destroy: [sent.id] }, 'd'],
        ['EmailSubmission/get', { accountId: aliceId, ids: [sent.id] }, 'g'],
      ],
    );
    assert.equal(u[0][1].notUpdated[sent.id].type, 'cannotUnsend');
    assert.deepEqual(u[1][1].ids, [sent.id]);
    assert.deepEqual(u[2][1].ids, []);
    assert.deepEqual(u[3][1].created, [sent.id]);
    assert.deepEqual(u[4][1].added, [{ id: sent.id, index: 0 }]);
    assert.deepEqual(u[5][1].destroyed, [sent.id]);
    assert.deepEqual(u[6][1].notFound, [sent.id]);
  });

  test('submission rate limits apply: the third message of the hour is refused (rateLimit)', async () => {
    const [id] = (await api([SUBMISSION], [['Identity/get', { accountId: aliceId }, 'i']]))[0][1].list;
    const d = await draft(mail('', 'rate limited'));
    const send = () =>
      api(
        [SUBMISSION],
        [
          [
            'EmailSubmission/set',
            { accountId: aliceId, create: { k: { identityId: id.id, emailId: d.emailId } } },
            's',
          ],
        ],
      );
    // The first test sent one: this is the second, then the third is over the limit.
    assert.ok((await send())[0][1].created?.k);
    assert.equal((await send())[0][1].notCreated?.k?.type, 'rateLimit');
  });
});

describe('jmap-jam (an independent client)', () => {
  test('Identity/get and VacationResponse/set, /get with the capabilities it derives', async () => {
    // Loaded by a computed name, as in test/jmap/http.test.ts (its types do not compile here).
    const name = 'jmap-jam';
    const { JamClient } = (await import(name)) as {
      JamClient: new (
        c: object,
      ) => { request(call: [string, Record<string, unknown>]): Promise<[Record<string, unknown>, unknown]> };
    };
    const token = (await s.admin.access.create({ role: { kind: 'user', user: ALICE } })).token;
    const jam = new JamClient({ bearerToken: token, sessionUrl: `${base}/.well-known/jmap` });
    const [ids] = await jam.request(['Identity/get', { accountId: aliceId }]);
    assert.ok((ids.list as { email: string }[]).some((i) => i.email === ALICE));
    const [set] = await jam.request([
      'VacationResponse/set',
      { accountId: aliceId, update: { singleton: { subject: 'Set by jam' } } },
    ]);
    assert.deepEqual(set.updated, { singleton: null });
    const [got] = await jam.request(['VacationResponse/get', { accountId: aliceId, properties: ['subject'] }]);
    assert.deepEqual(got.list, [{ id: 'singleton', subject: 'Set by jam' }]);
  });
});
