// JMAP Identity, EmailSubmission and VacationResponse (RFC 8621 §6-§8) over real HTTP against
// the real server, and the VacationResponse answered at delivery: mail from a remote sender
// arrives on port 25 and one reply reaches a fake MX on loopback (found through a real DNS
// server), as with a Sieve vacation (test/sieve/delivery.test.ts).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import { accountIdOf } from '../../src/jmap/session.ts';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';
import { type FakeMx, startFakeMx } from '../harness/mx.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { transaction } from '../harness/smtp-client.ts';
import { waitUntil } from '../harness/submit.ts';

const ALICE = 'alice@example.test' as AccountId;
const CORE = 'urn:ietf:params:jmap:core';
const VACATION = 'urn:ietf:params:jmap:vacationresponse';
const SUBMISSION = 'urn:ietf:params:jmap:submission';
const aliceId = accountIdOf(ALICE);
const auth = (user: string) => `Basic ${Buffer.from(`${user}:secret-password`).toString('base64')}`;

let s: TestServer;
let base: string;
let dns: TestDnsServer;
let mx: FakeMx;

// biome-ignore lint/suspicious/noExplicitAny: JSON answers of many shapes, asserted field by field
async function api(using: string[], methodCalls: unknown[], user: string = ALICE): Promise<any[]> {
  const r = await fetch(`${base}/jmap/api`, {
    method: 'POST',
    headers: { authorization: auth(user), 'content-type': 'application/json' },
    body: JSON.stringify({ using: [CORE, ...using], methodCalls }),
  });
  assert.equal(r.status, 200);
  return ((await r.json()) as { methodResponses: unknown[] }).methodResponses as never;
}

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
    extra: `[delivery]\nport = ${mx.port}\nretry_schedule = ["300ms"]\n[dns]\nservers = ["${dns.address}"]`,
  });
  base = `http://127.0.0.1:${s.server.http[0]?.port}`;
  await s.admin.ops.addAlias('sales@example.test', [ALICE]);
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
    ).json()) as { capabilities: Record<string, unknown> };
    assert.deepEqual(session.capabilities[SUBMISSION], { maxDelayedSend: 0, submissionExtensions: {} });

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
