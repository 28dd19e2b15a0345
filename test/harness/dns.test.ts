import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import net from 'node:net';
import { type TestContext, test } from 'node:test';
import type { DecodedPacket, Packet } from 'dns-packet';
import dnsPacket from 'dns-packet';
import { startTestDns, type TestDnsServer, type TestRecord } from './dns.ts';

async function setup(
  t: TestContext,
  records: TestRecord[] = [],
  opts?: { timeout: number; tries: number },
): Promise<{ dns: TestDnsServer; resolver: Resolver }> {
  const dns = await startTestDns(records);
  t.after(() => dns.close());
  const resolver = new Resolver(opts);
  resolver.setServers([dns.address]);
  return { dns, resolver };
}

async function errorCode(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
}

/** One raw query over UDP; resolves with the decoded reply, or undefined after a short wait. */
async function udpExchange(port: number, msg: Buffer, waitMs = 1000): Promise<DecodedPacket | undefined> {
  const socket = dgram.createSocket('udp4');
  try {
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    const reply = new Promise<DecodedPacket | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), waitMs);
      socket.once('message', (m) => {
        clearTimeout(timer);
        resolve(dnsPacket.decode(m));
      });
    });
    socket.send(msg, port, '127.0.0.1');
    return await reply;
  } finally {
    socket.close();
  }
}

function query(id: number, name: string, type: 'A' | 'MX' | 'TXT', edns?: number): Buffer {
  const packet: Packet = {
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type, class: 'IN' }],
    additionals:
      edns === undefined
        ? []
        : [
            {
              type: 'OPT',
              name: '.',
              udpPayloadSize: edns,
              extendedRcode: 0,
              ednsVersion: 0,
              flags: 0,
              flag_do: false,
              options: [],
            },
          ],
  };
  return dnsPacket.encode(packet);
}

/** dns-packet decodes the rcode, but its types do not declare it. */
function rcodeOf(reply: DecodedPacket | undefined): string | undefined {
  return (reply as (DecodedPacket & { rcode?: string }) | undefined)?.rcode;
}

/** Node 24 adds `type: 'MX'` to each record; keep what the tests compare. */
function mx(records: { priority: number; exchange: string }[]): { priority: number; exchange: string }[] {
  return records.map(({ priority, exchange }) => ({ priority, exchange }));
}

function txtOf(reply: DecodedPacket | undefined): string {
  const a = reply?.answers?.[0];
  assert.equal(a?.type, 'TXT');
  const data = a.data;
  return (Array.isArray(data) ? data : [data]).map((c) => c.toString()).join('');
}

test('MX: two records, in the order given', async (t) => {
  const { resolver } = await setup(t, [
    { type: 'MX', name: 'example.test', preference: 20, exchange: 'mx2.example.test' },
    { type: 'MX', name: 'example.test', preference: 10, exchange: 'mx1.example.test.' },
  ]);
  assert.deepEqual(mx(await resolver.resolveMx('example.test')), [
    { priority: 20, exchange: 'mx2.example.test' },
    { priority: 10, exchange: 'mx1.example.test' },
  ]);
});

test('null MX (RFC 7505) comes back with an empty exchange', async (t) => {
  const { resolver } = await setup(t, [{ type: 'MX', name: 'nomail.test', preference: 0, exchange: '.' }]);
  assert.deepEqual(mx(await resolver.resolveMx('nomail.test')), [{ priority: 0, exchange: '' }]);
});

test('A and AAAA, with TTLs', async (t) => {
  const { resolver } = await setup(t, [
    { type: 'A', name: 'host.test', address: '192.0.2.1' },
    { type: 'A', name: 'host.test', address: '192.0.2.2', ttl: 60 },
    { type: 'AAAA', name: 'host.test', address: '2001:db8::1' },
  ]);
  assert.deepEqual(await resolver.resolve4('host.test'), ['192.0.2.1', '192.0.2.2']);
  assert.deepEqual(await resolver.resolve4('host.test', { ttl: true }), [
    { address: '192.0.2.1', ttl: 300 },
    { address: '192.0.2.2', ttl: 60 },
  ]);
  assert.deepEqual(await resolver.resolve6('host.test'), ['2001:db8::1']);
});

test('a long TXT string comes back as 255-octet chunks that join to the original', async (t) => {
  const text = Array.from({ length: 600 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
  const { resolver } = await setup(t, [
    { type: 'TXT', name: 'txt.test', text },
    { type: 'TXT', name: 'two.test', text: ['v=spf1 ', '-all'] },
  ]);
  const [record, ...rest] = await resolver.resolveTxt('txt.test');
  assert.equal(rest.length, 0);
  assert.deepEqual(
    record?.map((c) => c.length),
    [255, 255, 90],
  );
  assert.equal(record?.join(''), text);
  assert.deepEqual(await resolver.resolveTxt('two.test'), [['v=spf1 ', '-all']]);
});

test('NXDOMAIN gives ENOTFOUND, NODATA gives ENODATA, an empty non-terminal is NODATA', async (t) => {
  const { resolver } = await setup(t, [
    { type: 'A', name: 'host.test', address: '192.0.2.1' },
    { type: 'TXT', name: '_dmarc.deep.sub.test', text: 'v=DMARC1; p=reject' },
  ]);
  assert.equal(await errorCode(resolver.resolve4('missing.test')), 'ENOTFOUND');
  assert.equal(await errorCode(resolver.resolveMx('host.test')), 'ENODATA');
  assert.equal(await errorCode(resolver.resolveTxt('deep.sub.test')), 'ENODATA');
  assert.equal(await errorCode(resolver.resolveTxt('sub.test')), 'ENODATA');
  assert.equal(await errorCode(resolver.resolveTxt('other.sub.test')), 'ENOTFOUND');
});

test('failing names get SERVFAIL until removed from the set', async (t) => {
  const { dns, resolver } = await setup(t, [{ type: 'A', name: 'flaky.test', address: '192.0.2.7' }]);
  dns.failing.add('Flaky.Test');
  assert.equal(await errorCode(resolver.resolve4('flaky.test')), 'ESERVFAIL');
  dns.failing.clear();
  assert.deepEqual(await resolver.resolve4('flaky.test'), ['192.0.2.7']);
});

test('silent names time out', async (t) => {
  const { dns, resolver } = await setup(t, [{ type: 'A', name: 'slow.test', address: '192.0.2.8' }], {
    timeout: 200,
    tries: 1,
  });
  dns.silent.add('slow.test');
  assert.equal(await errorCode(resolver.resolve4('slow.test')), 'ETIMEOUT');
  assert.equal(dns.queries.get('slow.test/A'), 1);
});

test('CNAMEs are followed within the data, and the chain ends like its last name', async (t) => {
  const { resolver } = await setup(t, [
    { type: 'CNAME', name: 'www.test', target: 'alias.test' },
    { type: 'CNAME', name: 'alias.test', target: 'real.test' },
    { type: 'A', name: 'real.test', address: '192.0.2.9' },
    { type: 'CNAME', name: 'dangling.test', target: 'nowhere.test' },
  ]);
  assert.deepEqual(await resolver.resolve4('www.test'), ['192.0.2.9']);
  assert.deepEqual(await resolver.resolveCname('www.test'), ['alias.test']);
  assert.equal(await errorCode(resolver.resolve4('dangling.test')), 'ENOTFOUND');
  // c-ares quirk: NODATA after a CNAME is not ENODATA but an empty list.
  assert.deepEqual(await resolver.resolveMx('www.test'), []);
});

test('a CNAME loop stops after eight hops', async (t) => {
  const { dns } = await setup(t, [
    { type: 'CNAME', name: 'loop1.test', target: 'loop2.test' },
    { type: 'CNAME', name: 'loop2.test', target: 'loop1.test' },
  ]);
  const reply = await udpExchange(dns.port, query(7, 'loop1.test', 'A'));
  assert.equal(rcodeOf(reply), 'NOERROR');
  assert.equal(reply?.answers?.length, 9);
});

test('names are case-insensitive, and the question keeps its spelling', async (t) => {
  const { dns, resolver } = await setup(t, [{ type: 'A', name: 'MiXeD.Example.TEST.', address: '192.0.2.10' }]);
  assert.deepEqual(await resolver.resolve4('mixed.example.test'), ['192.0.2.10']);
  assert.deepEqual(await resolver.resolve4('MIXED.EXAMPLE.TEST'), ['192.0.2.10']);
  const reply = await udpExchange(dns.port, query(99, 'mIxEd.example.test', 'A'));
  assert.equal(reply?.questions?.[0]?.name, 'mIxEd.example.test');
  assert.equal(reply?.answers?.[0]?.name, 'mIxEd.example.test');
  assert.equal(dns.queries.get('mixed.example.test/A'), 3);
});

test('PTR records', async (t) => {
  const { resolver } = await setup(t, [{ type: 'PTR', name: '1.2.0.192.in-addr.arpa', target: 'mx.example.test' }]);
  assert.deepEqual(await resolver.reverse('192.0.2.1'), ['mx.example.test']);
});

test('a 3000-byte TXT is truncated over UDP and fetched over TCP', async (t) => {
  const text = 'k'.repeat(3000);
  const { dns, resolver } = await setup(t, [{ type: 'TXT', name: 'big.test', text }]);
  assert.equal((await resolver.resolveTxt('big.test'))[0]?.join(''), text);
  // Once over UDP (truncated), once over TCP.
  assert.equal(dns.queries.get('big.test/TXT'), 2);

  const plain = await udpExchange(dns.port, query(1, 'big.test', 'TXT'));
  assert.equal(plain?.flag_tc, true);
  assert.equal(plain?.answers?.length, 0);
  const small = await udpExchange(dns.port, query(2, 'big.test', 'TXT', 1232));
  assert.equal(small?.flag_tc, true);
  assert.equal(small?.additionals?.[0]?.type, 'OPT');
  const large = await udpExchange(dns.port, query(3, 'big.test', 'TXT', 4096));
  assert.equal(large?.flag_tc, false);
  assert.equal(txtOf(large), text);
});

test('replies are authoritative, echo id, RD and question, and MX answers carry glue', async (t) => {
  const { dns } = await setup(t, [
    { type: 'MX', name: 'example.test', preference: 10, exchange: 'mx.example.test' },
    { type: 'A', name: 'mx.example.test', address: '192.0.2.25' },
    { type: 'AAAA', name: 'mx.example.test', address: '2001:db8::25' },
  ]);
  const reply = await udpExchange(dns.port, query(0xbeef, 'example.test', 'MX'));
  assert.equal(reply?.id, 0xbeef);
  assert.equal(reply?.type, 'response');
  assert.equal(reply?.flag_aa, true);
  assert.equal(reply?.flag_rd, true);
  assert.deepEqual(reply?.questions, [{ name: 'example.test', type: 'MX', class: 'IN' }]);
  assert.deepEqual(
    reply?.additionals?.map((a) => [a.type, a.name, 'data' in a ? a.data : undefined]),
    [
      ['A', 'mx.example.test', '192.0.2.25'],
      ['AAAA', 'mx.example.test', '2001:db8::25'],
    ],
  );
});

test('TCP: several length-prefixed queries on one connection, however the bytes arrive', async (t) => {
  const { dns } = await setup(t, [{ type: 'TXT', name: 'tcp.test', text: 'hello' }]);
  const socket = net.connect(dns.port, '127.0.0.1');
  t.after(() => socket.destroy());
  const replies: DecodedPacket[] = [];
  const done = new Promise<void>((resolve) => {
    let buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        replies.push(dnsPacket.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
        if (replies.length === 3) resolve();
      }
    });
  });
  const frame = (msg: Buffer) => Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 0xff]), msg]);
  // Two queries in one write, then a third one byte at a time.
  socket.write(Buffer.concat([frame(query(1, 'tcp.test', 'TXT')), frame(query(2, 'nx.test', 'A'))]));
  for (const byte of frame(query(3, 'tcp.test', 'A'))) {
    socket.write(Buffer.from([byte]));
    await new Promise((resolve) => setImmediate(resolve));
  }
  await done;
  assert.deepEqual(
    replies.map((r) => [r.id, rcodeOf(r), r.answers?.length]),
    [
      [1, 'NOERROR', 1],
      [2, 'NXDOMAIN', 0],
      [3, 'NOERROR', 0],
    ],
  );
  assert.equal(txtOf(replies[0]), 'hello');
});

test('queries are counted per name and type', async (t) => {
  const { dns, resolver } = await setup(t, [
    { type: 'MX', name: 'count.test', preference: 1, exchange: 'mx.count.test' },
  ]);
  await resolver.resolveMx('Count.Test');
  await resolver.resolveMx('count.test');
  await errorCode(resolver.resolve4('count.test'));
  await errorCode(resolver.resolveTxt('nothing.test'));
  assert.deepEqual(
    new Map(dns.queries),
    new Map([
      ['count.test/MX', 2],
      ['count.test/A', 1],
      ['nothing.test/TXT', 1],
    ]),
  );
});

test('add and remove', async (t) => {
  const { dns, resolver } = await setup(t, [{ type: 'A', name: 'h.test', address: '192.0.2.1' }]);
  dns.add({ type: 'A', name: 'h.test', address: '192.0.2.1' }, { type: 'TXT', name: 'h.test', text: 'x' });
  assert.deepEqual(await resolver.resolve4('h.test'), ['192.0.2.1']);
  dns.remove('H.test', 'A');
  assert.equal(await errorCode(resolver.resolve4('h.test')), 'ENODATA');
  dns.remove('h.test');
  assert.equal(await errorCode(resolver.resolveTxt('h.test')), 'ENOTFOUND');
  assert.throws(() => dns.add({ type: 'A', name: 'bad.test', address: '2001:db8::1' }), /IPv4/);
  assert.throws(() => dns.add({ type: 'A', name: `${'x'.repeat(64)}.test`, address: '192.0.2.1' }), /label/);
  assert.throws(() =>
    dns.add({ type: 'CNAME', name: 'h2.test', target: 'x.test' }, { type: 'A', name: 'h2.test', address: '192.0.2.1' }),
  );
});

test('malformed packets are ignored and the server keeps answering', async (t) => {
  const { dns, resolver } = await setup(t, [{ type: 'A', name: 'ok.test', address: '192.0.2.11' }]);
  const valid = query(5, 'ok.test', 'A');
  const response = Buffer.from(valid);
  response[2] = response[2]! | 0x80; // QR set: a response, not to be answered
  const badLabel = Buffer.from(valid);
  badLabel[12] = 0x80; // reserved label type
  const garbage = [Buffer.from('hello, world'), Buffer.alloc(3), valid.subarray(0, 20), response, badLabel];
  for (const msg of garbage) assert.equal(await udpExchange(dns.port, msg, 100), undefined);
  // The same over TCP, including a zero-length frame.
  const socket = net.connect(dns.port, '127.0.0.1');
  t.after(() => socket.destroy());
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(Buffer.from([0, 0, 0, 5, 1, 2, 3, 4, 5]));
  assert.deepEqual(await resolver.resolve4('ok.test'), ['192.0.2.11']);
  assert.equal((await udpExchange(dns.port, valid))?.answers?.length, 1);
});

test('close() closes both sockets and open TCP connections', async () => {
  const dns = await startTestDns();
  const socket = net.connect(dns.port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const closed = new Promise((resolve) => socket.once('close', resolve));
  await dns.close();
  await closed;
  await dns.close(); // idempotent
  // Both ports are free again.
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(dns.port, '127.0.0.1', () => resolve()));
  udp.close();
  const tcp = net.createServer();
  await new Promise<void>((resolve) => tcp.listen(dns.port, '127.0.0.1', () => resolve()));
  await new Promise((resolve) => tcp.close(resolve));
});
