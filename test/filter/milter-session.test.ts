// One milter session against a scripted peer on loopback, for what no real milter sends:
// negotiated step and no-reply flags, macro lists, and broken or hostile replies (absurd
// lengths, replies out of place, undeclared actions, envelope changes, silence). Each must end
// in MilterFailure (the chain then applies on_failure), never hang or throw anything else.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type MilterContext, MilterFailure, runSession } from '../../src/filter/milter/client.ts';
import { ACTION, PacketReader, PROTO } from '../../src/filter/milter/codec.ts';
import { Spool } from '../../src/store/spool.ts';

type Script = (cmd: string, data: Buffer) => Buffer[] | 'silent' | 'close';

function pkt(cmd: string, ...parts: (Buffer | string | number)[]): Buffer {
  const data = Buffer.concat(
    parts.map((p) => {
      if (typeof p === 'number') {
        const b = Buffer.alloc(4);
        b.writeUInt32BE(p, 0);
        return b;
      }
      return typeof p === 'string' ? Buffer.from(p, 'latin1') : p;
    }),
  );
  const head = Buffer.alloc(5);
  head.writeUInt32BE(data.length + 1, 0);
  head[4] = cmd.charCodeAt(0);
  return Buffer.concat([head, data]);
}

const optneg = (actions: number, protocol: number, extra: Buffer = Buffer.alloc(0)) =>
  pkt('O', 6, actions, protocol, extra);

/** A peer that answers each command by `script`; records what it was sent. */
async function peer(
  script: Script,
): Promise<{ port: number; seen: { cmd: string; data: Buffer }[]; ended: Promise<void>; close(): void }> {
  const seen: { cmd: string; data: Buffer }[] = [];
  const sockets = new Set<net.Socket>();
  let ended = () => {};
  const endedP = new Promise<void>((r) => {
    ended = r;
  });
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => ended());
    const reader = new PacketReader();
    s.on('error', () => {});
    s.on('data', (chunk) => {
      reader.push(chunk);
      for (let p = reader.next(); p; p = reader.next()) {
        seen.push(p);
        const out = script(p.cmd, p.data);
        if (out === 'close') s.destroy();
        else if (out !== 'silent') for (const b of out) s.write(b);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    ended: endedP,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

const CTX: MilterContext = {
  client: { address: '192.0.2.7', port: 40000, hostname: null },
  helo: 'client.example',
  sender: 'a@example.org',
  recipients: ['b@example.test'],
  macros: { hostname: 'mx.test', daemonName: 'smtp', queueId: 'q1', authAuthen: null, tlsVersion: null, cipher: null },
};

let dir: string;
let spool: Spool;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'arcline-milter-session-'));
  spool = new Spool(dir, 1024);
});
after(() => rm(dir, { recursive: true, force: true }));

async function session(script: Script, o: { maxBodyBytes?: number; commandTimeoutMs?: number } = {}) {
  const p = await peer(script);
  try {
    const outcome = await runSession(
      {
        name: 't',
        address: { kind: 'inet', host: '127.0.0.1', port: p.port },
        connectTimeoutMs: 1000,
        commandTimeoutMs: o.commandTimeoutMs ?? 1000,
        eomTimeoutMs: 1000,
        macros: {},
      },
      CTX,
      {
        fields: [
          { name: 'From', value: ' a@example.org' },
          { name: 'Subject', value: ' hi\r\n there' },
        ],
        body: async function* () {
          yield Buffer.from('body\r\n');
        },
      },
      { createSpool: () => spool.create(), maxBodyBytes: o.maxBodyBytes ?? 1 << 20 },
    );
    await p.ended; // the QUIT that follows the verdict, and the close
    return { outcome, seen: p.seen };
  } finally {
    p.close();
  }
}

test('negotiated steps are left out, no-reply steps not waited for, a macro list honoured', async () => {
  const symlist = Buffer.concat([Buffer.from([0, 0, 0, 2]), Buffer.from('{mail_addr}\0')]);
  const { outcome, seen } = await session((cmd) => {
    if (cmd === 'O') {
      return [
        optneg(
          ACTION.addHeaders,
          PROTO.noConnect | PROTO.noHelo | PROTO.nrHeader | PROTO.noBody | PROTO.noData,
          symlist,
        ),
      ];
    }
    if (cmd === 'L' || cmd === 'D') return [];
    if (cmd === 'E') return [pkt('p'), pkt('h', 'X-T\0v\0'), pkt('a')];
    return [pkt('c')];
  });
  assert.deepEqual(
    seen.map((p) => p.cmd),
    ['O', 'D', 'M', 'D', 'R', 'L', 'L', 'N', 'D', 'E', 'Q'],
  );
  const mailMacros = seen[1]?.data.toString('latin1');
  assert.equal(mailMacros, 'M{mail_addr}\0a@example.org\0', 'only the macro asked for');
  // Header values: leading space dropped, folding as LF.
  assert.equal(seen[6]?.data.toString('latin1'), 'Subject\0hi\n there\0');
  assert.deepEqual(outcome, {
    kind: 'continue',
    edits: [{ kind: 'addheader', name: 'X-T', value: 'v' }],
    body: null,
    quarantine: null,
    leadingSpace: false,
  });
});

test('connect carries the family, port and address; an early reject ends the session', async () => {
  const { outcome, seen } = await session((cmd) =>
    cmd === 'O' ? [optneg(0, 0)] : cmd === 'D' ? [] : [pkt('y', '554 5.7.1 go away\0')],
  );
  const connect = seen.find((p) => p.cmd === 'C')?.data;
  assert.ok(connect);
  assert.equal(connect.toString('latin1'), `[192.0.2.7]\x004\x9c\x40192.0.2.7\x00`);
  assert.deepEqual(outcome, {
    kind: 'reject',
    reply: { code: 554, enhanced: '5.7.1', text: 'go away' },
    step: 'connect',
  });
});

const failures: [string, Script, RegExp][] = [
  ['an absurd packet length', () => [Buffer.from([0xff, 0xff, 0xff, 0xff, 0x4f])], /out of bounds/],
  ['protocol version 1', (c) => (c === 'O' ? [pkt('O', 1, 0, 0)] : []), /version 1/],
  ['actions not offered', (c) => (c === 'O' ? [pkt('O', 6, 0x8000, 0)] : []), /actions not offered/],
  [
    'a modification before the end of the message',
    (c) => (c === 'O' ? [optneg(ACTION.addHeaders, 0)] : c === 'D' ? [] : [pkt('h', 'X\0y\0')]),
    /not allowed after connect/,
  ],
  [
    'an action that was not negotiated',
    (c) => (c === 'O' ? [optneg(0, 0)] : c === 'D' ? [] : c === 'E' ? [pkt('h', 'X\0y\0'), pkt('c')] : [pkt('c')]),
    /without having negotiated/,
  ],
  [
    'an envelope change',
    (c) => (c === 'O' ? [optneg(0x1ff, 0)] : c === 'D' ? [] : c === 'E' ? [pkt('+', '<x@y>\0'), pkt('c')] : [pkt('c')]),
    /envelope change/,
  ],
  ['a shutdown reply', (c) => (c === 'O' ? [optneg(0, 0)] : c === 'D' ? [] : [pkt('4')]), /shutdown not allowed/],
  [
    'a replacement body over the size limit',
    (c) =>
      c === 'O'
        ? [optneg(ACTION.changeBody, 0)]
        : c === 'D'
          ? []
          : c === 'E'
            ? [pkt('b', 'x'.repeat(3000)), pkt('c')]
            : [pkt('c')],
    /over the size limit/,
  ],
  ['silence', (c) => (c === 'O' ? [optneg(0, 0)] : 'silent'), /connect reply timed out/],
  ['the connection closed', (c) => (c === 'O' ? [optneg(0, 0)] : 'close'), /closed by the milter|ECONNRESET/],
];

for (const [what, script, error] of failures) {
  test(`a failure: ${what}`, async () => {
    const started = performance.now();
    await assert.rejects(
      session(script, { maxBodyBytes: 2000, commandTimeoutMs: what === 'silence' ? 200 : 1000 }),
      (e: unknown) => e instanceof MilterFailure && error.test(e.message),
    );
    assert.ok(performance.now() - started < 1500);
  });
}
