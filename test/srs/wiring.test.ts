// The pieces that wire SRS into the server, without sockets (the socket-level suite is
// forward.test.ts): the [srs] section, the sender rewriter, the RCPT stage of SRS addresses,
// the transaction's direct and forwarded recipients, and the Dispatcher's queue entries per
// envelope sender with the durability order of dispatch.ts.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfigText } from '../../src/config/load.ts';
import type { AccountId, DomainName } from '../../src/core/ids.ts';
import { silentLogger } from '../../src/core/log.ts';
import { srsAddresses } from '../../src/core/metrics.ts';
import type { Directory } from '../../src/directory/types.ts';
import { Dispatcher } from '../../src/queue/dispatch.ts';
import type { QueueStore } from '../../src/queue/store.ts';
import type { OutboundMessage, QueueId } from '../../src/queue/types.ts';
import { addRecipient, resolution } from '../../src/smtp/accept/rcpt.ts';
import { srsRecipient } from '../../src/smtp/accept/srs.ts';
import { newTxn } from '../../src/smtp/context.ts';
import { NO_REWRITE, SrsForwarding } from '../../src/srs/forwarding.ts';
import { Srs } from '../../src/srs/srs.ts';
import { bufferMessage } from '../../src/store/spool.ts';
import type { DeliveryTarget, MailStore } from '../../src/store/types.ts';

const SECRET = 'wiring-test-secret-0123456789';
const LOCAL = new Set(['example.test', 'second.test']);

function forwarding(domain: string | null = null): SrsForwarding {
  return new SrsForwarding({
    srs: new Srs({ secrets: [SECRET] }),
    domain,
    isLocalDomain: async (d) => LOCAL.has(d),
    log: silentLogger(),
  });
}

describe('[srs] configuration', () => {
  const parse = (srs: string) =>
    parseConfigText(`hostname = "mx.example.test"\n[srs]\n${srs}\n`, '/etc/arcline.toml').srs;

  test('defaults: on, under the forwarding domain, 21 days', () => {
    assert.deepEqual(parse(''), { enabled: true, domain: '', max_age: 21 * 86_400_000 });
  });

  test('domain is normalised; max_age is whole days below the 1024-day cycle', () => {
    assert.equal(parse('domain = "SRS.Example.COM."').domain, 'srs.example.com');
    assert.equal(parse('max_age = "30d"').max_age, 30 * 86_400_000);
    for (const bad of ['domain = "not a domain"', 'max_age = "36h"', 'max_age = "1024d"', 'max_age = "0d"']) {
      assert.throws(() => parse(bad), /srs/, bad);
    }
  });
});

describe('SrsForwarding (the SenderRewriter)', () => {
  test('rewrites a foreign sender under the forwarding domain, or the configured one', async () => {
    const f = await forwarding().forwardSender('a@orig.test', 'example.test');
    assert.match(f, /^SRS0=....=..=orig\.test=a@example\.test$/);
    const g = await forwarding('srs.example.net').forwardSender('a@orig.test', 'example.test');
    assert.match(g, /@srs\.example\.net$/);
  });

  test('leaves the null sender, senders of our domains and unrewritable senders alone', async () => {
    const f = forwarding();
    assert.equal(await f.forwardSender('', 'example.test'), '');
    assert.equal(await f.forwardSender('Bob@Second.TEST', 'example.test'), 'Bob@Second.TEST');
    const long = `${'x'.repeat(65)}@orig.test`; // a local part over RFC 5321's 64 octets
    assert.equal(await f.forwardSender(long, 'example.test'), long);
    assert.equal(await NO_REWRITE.forwardSender('a@orig.test', 'example.test'), 'a@orig.test');
  });

  test('bounces we make for a forwarded copy go to the address its SRS sender stands for', async () => {
    const f = forwarding();
    const srsSender = await f.forwardSender('a@orig.test', 'example.test');
    assert.equal(await f.bounceAddress(srsSender), 'a@orig.test');
    assert.equal(await f.bounceAddress('a@orig.test'), 'a@orig.test');
    // Not one of our domains: not ours to reverse.
    const theirs = new Srs({ secrets: [SECRET] }).forward('a@orig.test', 'elsewhere.test');
    assert.equal(await f.bounceAddress(theirs), theirs);
    // Expired while queued: left as it is (the notice is then dropped as for any unknown user).
    const old = new Srs({ secrets: [SECRET], now: () => Date.now() - 30 * 86_400_000 }).forward(
      'a@orig.test',
      'example.test',
    );
    assert.equal(await f.bounceAddress(old), old);
    assert.equal(await NO_REWRITE.bounceAddress(srsSender), srsSender);
  });

  test('arcline_srs_total counts rewrites and reversals by result', async () => {
    const count = async (op: string, result: string) =>
      (await srsAddresses.get()).values.find((v) => v.labels.op === op && v.labels.result === result)?.value ?? 0;
    const before = {
      rewritten: await count('forward', 'rewritten'),
      unchanged: await count('forward', 'unchanged'),
      valid: await count('reverse', 'valid'),
      forged: await count('reverse', 'forged'),
    };
    const f = forwarding();
    const a = await f.forwardSender('a@orig.test', 'example.test');
    await f.forwardSender('', 'example.test');
    f.reverse(a);
    assert.throws(() => f.reverse(a.replace(/^SRS0=..../, 'SRS0=____')), /hash/);
    assert.throws(() => f.reverse('alice@example.test'), /not an SRS/); // not counted
    assert.equal(await count('forward', 'rewritten'), before.rewritten + 1);
    assert.equal(await count('forward', 'unchanged'), before.unchanged + 1);
    assert.equal(await count('reverse', 'valid'), before.valid + 1);
    assert.equal(await count('reverse', 'forged'), before.forged + 1);
  });

  test('recognises SRS addresses at our domains and the configured one only', async () => {
    const f = forwarding('srs.example.net');
    assert.equal(await f.isOurs('SRS0=x=y=z=w@example.test', 'example.test'), true);
    assert.equal(await f.isOurs('srs1+x=y==z@srs.example.net', 'srs.example.net'), true);
    assert.equal(await f.isOurs('SRS0=x=y=z=w@elsewhere.test', 'elsewhere.test'), false);
    assert.equal(await f.isOurs('alice@example.test', 'example.test'), false);
  });
});

describe('RCPT stage of SRS addresses (accept/srs.ts)', () => {
  test('decoded: the next recipient keeps the case of its local part', () => {
    const r = srsRecipient({ address: 'Sender@ORIG.test' }, 'k');
    assert.equal(r.kind, 'continue');
    if (r.kind === 'continue') assert.deepEqual(r.next, { local: 'Sender', domain: 'orig.test' });
  });

  test('refusals and whether they count as an offence', () => {
    const cases = [
      [{ error: 'forged' }, /^550 5\.7\.1 .*invalid SRS/, true],
      [{ error: 'expired' }, /^550 5\.7\.1 .*expired/, false],
      [{ error: 'malformed' }, /^550 5\.1\.1 .*malformed/, true],
      [{ error: 'too-long' }, /^550 5\.1\.1 /, true],
      [{ address: 'no-domain' }, /^550 5\.1\.1 /, true],
    ] as const;
    for (const [outcome, reply, offence] of cases) {
      const r = srsRecipient(outcome, 'k');
      assert.equal(r.kind, 'refuse');
      if (r.kind === 'refuse') {
        assert.match(`${r.reply.responseCode} ${r.reply.message}`, reply);
        assert.equal(r.offence, offence, JSON.stringify(outcome));
      }
    }
  });
});

test('a recipient addressed directly wins over the same address reached through a forward', () => {
  const ext = { local: 'ext', domain: 'other.test' as DomainName };
  const alias = resolution(
    { kind: 'deliver', accounts: [], remote: [ext] },
    { local: 'fwd', domain: 'example.test' as DomainName },
    'fwd@example.test',
    true,
  );
  const direct = resolution({ kind: 'unknown-domain' }, ext, 'ext@other.test', true);
  assert.ok(alias.kind === 'continue' && direct.kind === 'continue');
  const a = newTxn();
  addRecipient(a, 'fwd@example.test', alias);
  assert.deepEqual(a.remote.get('ext@other.test'), { address: 'ext@other.test', forwardedVia: 'example.test' });
  addRecipient(a, 'ext@other.test', direct);
  assert.deepEqual(a.remote.get('ext@other.test'), { address: 'ext@other.test' });
  const b = newTxn();
  addRecipient(b, 'ext@other.test', direct);
  addRecipient(b, 'fwd@example.test', alias);
  assert.deepEqual(b.remote.get('ext@other.test'), { address: 'ext@other.test' });
});

describe('Dispatcher: one queue entry per envelope sender', () => {
  function fakes(failLocal = false) {
    const log: string[] = [];
    const entries: OutboundMessage[] = [];
    const queue = {
      async enqueue(m: OutboundMessage) {
        entries.push(m);
        log.push(`enqueue ${m.sender} held=${m.hold}`);
        return `q${entries.length}` as QueueId;
      },
      release(id: QueueId) {
        log.push(`release ${id}`);
      },
      async drop(id: QueueId) {
        log.push(`drop ${id}`);
        return true;
      },
    } as unknown as QueueStore;
    const store = {
      async deliver(targets: readonly DeliveryTarget[]) {
        log.push('deliver');
        if (failLocal) throw new Error('disk full');
        return targets.map((t) => ({ account: t.account, mailbox: 'INBOX', size: 1 }));
      },
    } as unknown as MailStore;
    const dispatcher = new Dispatcher({
      store,
      queue,
      directory: {} as Directory,
      hostname: 'mx.example.test',
      log: silentLogger(),
      senderRewriter: forwarding(),
    });
    return { log, entries, dispatcher };
  }
  const request = (local: boolean) => ({
    sender: 'a@orig.test',
    local: local ? [{ account: 'bob@example.test' as AccountId, prefix: Buffer.alloc(0) }] : [],
    remote: [
      { address: 'direct@remote.test' },
      { address: 'f1@remote.test', forwardedVia: 'example.test' },
      { address: 'f2@remote.test', forwardedVia: 'example.test' },
      { address: 'f3@remote.test', forwardedVia: 'second.test' },
    ],
    remotePrefix: Buffer.alloc(0),
    message: bufferMessage(Buffer.from('Subject: x\r\n\r\nx\r\n')),
    origin: 'forward' as const,
    logId: 'm1',
  });

  test('direct recipients keep the sender; forwarded ones get SRS per domain; all held, then released', async () => {
    const { log, entries, dispatcher } = fakes();
    const r = await dispatcher.dispatch(request(true));
    assert.deepEqual(r.queueIds, ['q1', 'q2', 'q3']);
    assert.equal(r.queueId, 'q1');
    assert.equal(entries[0]?.sender, 'a@orig.test');
    assert.deepEqual(
      entries.map((e) => e.recipients.map((x) => x.address)),
      [['direct@remote.test'], ['f1@remote.test', 'f2@remote.test'], ['f3@remote.test']],
    );
    assert.match(entries[1]?.sender ?? '', /=orig\.test=a@example\.test$/);
    assert.match(entries[2]?.sender ?? '', /=orig\.test=a@second\.test$/);
    // The queue never sees the forwarding mark.
    assert.ok(entries.every((e) => e.recipients.every((x) => !('forwardedVia' in x))));
    assert.deepEqual(log.slice(3), ['deliver', 'release q1', 'release q2', 'release q3']);
    assert.ok(log.slice(0, 3).every((l) => l.endsWith('held=true')));
  });

  test('without local copies, several entries are still held until all are queued', async () => {
    const { log, dispatcher } = fakes();
    await dispatcher.dispatch(request(false));
    assert.ok(log.slice(0, 3).every((l) => l.endsWith('held=true')));
    assert.deepEqual(log.slice(3), ['release q1', 'release q2', 'release q3']);
  });

  test('a failed local delivery drops every entry', async () => {
    const { log, dispatcher } = fakes(true);
    await assert.rejects(dispatcher.dispatch(request(true)), /disk full/);
    assert.deepEqual(log.slice(3), ['deliver', 'drop q1', 'drop q2', 'drop q3']);
  });
});
