// Mail across three real nodes (issue #18, docs/cluster.md "Mailboxes across nodes"): one
// PostgreSQL, one Maildir directory, three `arcline serve` processes. A message delivered by
// SMTP to node A reaches a client idling on node B as EXISTS within 100 ms; a flag set on B
// reaches a client idling on C; APPENDs through all three nodes at once to one mailbox get
// unique, increasing UIDs; UIDs never change after a node restarts, even after SIGKILL.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { imapflowClient, RawImap } from '../harness/imap-client.ts';
import { transaction } from '../harness/smtp-client.ts';
import { waitUntil } from '../harness/submit.ts';
import { startCluster, type TestCluster } from './harness.ts';

const USER = 'dave@example.test';
const PASS = 'dave-secret';
let c: TestCluster;

before(async () => {
  c = await startCluster({ nodes: 3 });
  for (const args of [
    ['domain', 'add', 'example.test'],
    ['user', 'add', USER, '--password-stdin'],
  ]) {
    const r = await c.cli(args, { stdin: `${PASS}\n` });
    assert.equal(r.code, 0, r.stderr);
  }
});

after(() => c?.close());

const node = (i: number) => c.nodes[i] as (typeof c.nodes)[number];

/** A raw IMAP session on node i with `box` selected; returns it and the EXISTS count. */
async function selected(i: number, box = 'INBOX'): Promise<{ imap: RawImap; exists: number }> {
  const { client: imap } = await RawImap.connect(node(i).port('imap'));
  assert.match((await imap.cmd(`LOGIN ${USER} ${PASS}`)).at(-1) ?? '', /OK/);
  const lines = await imap.cmd(`SELECT ${box}`);
  assert.match(lines.at(-1) ?? '', /OK/);
  const exists = Number(/\* (\d+) EXISTS/.exec(lines.join('\n'))?.[1] ?? 0);
  return { imap, exists };
}

/** Starts IDLE; resolves once the server said it is idling. */
async function idle(imap: RawImap): Promise<void> {
  imap.write('idle1 IDLE\r\n');
  assert.match(await imap.readLine(), /^\+ /);
}

/** Reads untagged lines until one matches. */
async function untilLine(imap: RawImap, re: RegExp): Promise<string> {
  for (;;) {
    const line = await imap.readLine();
    if (re.test(line)) return line;
  }
}

const message = (n: string) =>
  `From: erin@example.net\r\nTo: ${USER}\r\nSubject: cluster ${n}\r\nMessage-ID: <${n}@cluster.test>\r\n\r\nbody ${n}\r\n`;

test('cluster: a message delivered by SMTP to node A appears as EXISTS on node B within 100 ms', async (t) => {
  const { imap, exists } = await selected(1);
  try {
    await idle(imap);
    const latencies: number[] = [];
    for (let k = 0; k < 10; k++) {
      const reply = await transaction(node(0).port('smtp'), 'erin@example.net', [USER], message(`exists-${k}`));
      assert.equal(reply.code, 250, reply.text);
      const accepted = performance.now();
      const line = await untilLine(imap, /^\* \d+ EXISTS/);
      latencies.push(performance.now() - accepted);
      assert.equal(line, `* ${exists + k + 1} EXISTS`);
    }
    latencies.sort((a, b) => a - b);
    t.diagnostic(`250 on A -> EXISTS on B: median ${latencies[5]?.toFixed(1)} ms, max ${latencies[9]?.toFixed(1)} ms`);
    assert.ok((latencies[5] as number) < 100, `median ${latencies[5]} ms`);
    imap.write('DONE\r\n');
    await imap.until('idle1');
  } finally {
    imap.close();
  }
});

test('cluster: a flag set on node B is seen by a client idling on node C', async () => {
  const b = await selected(1);
  const cc = await selected(2);
  try {
    await idle(cc.imap);
    const store = await b.imap.cmd('STORE 1 +FLAGS (\\Flagged)');
    assert.match(store.at(-1) ?? '', /OK/);
    const line = await untilLine(cc.imap, /^\* 1 FETCH /);
    assert.match(line, /\\Flagged/);
    cc.imap.write('DONE\r\n');
    await cc.imap.until('idle1');
  } finally {
    b.imap.close();
    cc.imap.close();
  }
});

test('cluster: APPENDs through all three nodes at once get unique, increasing UIDs', async () => {
  const clients = await Promise.all([0, 1, 2].map((i) => imapflowClient(node(i).port('imap'), USER, PASS)));
  try {
    await clients[0]?.mailboxCreate('Shared');
    const per = 25;
    const uids = await Promise.all(
      clients.map(async (client, i) => {
        const got: number[] = [];
        for (let k = 0; k < per; k++) {
          const r = await client.append('Shared', message(`append-${i}-${k}`));
          got.push(Number(r && typeof r === 'object' ? r.uid : Number.NaN));
        }
        return got;
      }),
    );
    const all = uids.flat();
    assert.equal(all.length, 3 * per);
    assert.ok(
      all.every((u) => Number.isInteger(u) && u > 0),
      'every APPEND answered APPENDUID',
    );
    assert.equal(new Set(all).size, all.length, 'no UID given twice');
    for (const u of uids)
      assert.deepEqual(
        u,
        [...u].sort((a, b) => a - b),
        'UIDs increase',
      );
    // Every node lists the same UIDs for the mailbox.
    const sorted = [...all].sort((a, b) => a - b);
    for (const client of clients) {
      const lock = await client.getMailboxLock('Shared');
      try {
        const found = await waitUntil('every append visible', async () => {
          const r = await client.search({ all: true }, { uid: true });
          return Array.isArray(r) && r.length === all.length ? r : null;
        });
        assert.deepEqual(found, sorted);
      } finally {
        lock.release();
      }
    }
  } finally {
    for (const client of clients) await client.logout().catch(() => {});
  }
});

/** UID -> Message-ID of a mailbox as node i shows it, with its UIDVALIDITY. */
async function uidMap(i: number, box: string): Promise<{ validity: number; map: Map<number, string> }> {
  const client = await imapflowClient(node(i).port('imap'), USER, PASS);
  try {
    const lock = await client.getMailboxLock(box);
    try {
      const map = new Map<number, string>();
      for await (const m of client.fetch('1:*', { uid: true, envelope: true })) {
        map.set(m.uid, m.envelope?.messageId ?? '');
      }
      const mb = client.mailbox;
      return { validity: Number(mb && typeof mb === 'object' ? mb.uidValidity : 0), map };
    } finally {
      lock.release();
    }
  } finally {
    await client.logout().catch(() => {});
  }
}

test('cluster: UIDs never change after a node restarts (SIGTERM and SIGKILL)', async () => {
  const before = { inbox: await uidMap(0, 'INBOX'), shared: await uidMap(0, 'Shared') };
  assert.ok(before.inbox.map.size >= 10 && before.shared.map.size >= 75);
  await node(0).stop();
  await c.restart(0);
  await node(2).kill();
  await c.restart(2);
  for (const i of [0, 1, 2]) {
    assert.deepEqual(await uidMap(i, 'INBOX'), before.inbox, `INBOX on node ${i}`);
    assert.deepEqual(await uidMap(i, 'Shared'), before.shared, `Shared on node ${i}`);
  }
});
