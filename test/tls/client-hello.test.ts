// The ClientHello reader (src/tls/client-hello.ts) on real hellos sent by Node's TLS client,
// re-fragmented across records, cut short, and fuzzed.

import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import tls from 'node:tls';
import fc from 'fast-check';
import { parseClientHello } from '../../src/tls/client-hello.ts';

const MAX = 2 * (5 + 16_384);

/** The bytes a real TLS client sends first. */
async function realHello(opts: tls.ConnectionOptions): Promise<Buffer> {
  let got: Buffer = Buffer.alloc(0);
  const server = net.createServer((s) => {
    s.on('data', (d) => {
      got = Buffer.concat([got, d]);
      const r = parseClientHello(got, MAX);
      if (r.kind !== 'more') s.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => {
    const c = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...opts });
    c.on('error', () => resolve());
    c.on('close', () => resolve());
  });
  server.close();
  return got;
}

/** The same handshake message cut into records of `size` bytes. */
function refragment(hello: Buffer, size: number): Buffer {
  const len = hello.readUInt16BE(3);
  const body = hello.subarray(5, 5 + len);
  const out: Buffer[] = [];
  for (let i = 0; i < body.length; i += size) {
    const part = body.subarray(i, i + size);
    const head = Buffer.from([22, 3, 1, 0, 0]);
    head.writeUInt16BE(part.length, 3);
    out.push(head, part);
  }
  return Buffer.concat(out);
}

describe('ClientHello reader', () => {
  test('reads SNI (lower-cased) and the ALPN list of a real hello; every prefix asks for more', async () => {
    const hello = await realHello({ servername: 'Mail.Example.COM', ALPNProtocols: ['acme-tls/1', 'http/1.1'] });
    assert.deepEqual(parseClientHello(hello, MAX), {
      kind: 'hello',
      serverName: 'mail.example.com',
      alpn: ['acme-tls/1', 'http/1.1'],
    });
    for (let n = 0; n < hello.length; n++) assert.equal(parseClientHello(hello.subarray(0, n), MAX).kind, 'more');
  });

  test('a hello fragmented across records reads the same; no SNI and no ALPN give null and []', async () => {
    const hello = await realHello({ servername: 'mta-sts.example.test', ALPNProtocols: ['acme-tls/1'] });
    for (const size of [1, 7, 100, 512]) {
      const r = parseClientHello(refragment(hello, size), MAX);
      assert.deepEqual(r, { kind: 'hello', serverName: 'mta-sts.example.test', alpn: ['acme-tls/1'] }, `size ${size}`);
    }
    const bare = await realHello({});
    assert.deepEqual(parseClientHello(bare, MAX), { kind: 'hello', serverName: null, alpn: [] });
  });

  test('refuses what is not a ClientHello, and a hello longer than the bound', async () => {
    assert.equal(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n\r\n'), MAX).kind, 'invalid');
    assert.equal(parseClientHello(Buffer.from([22, 3, 1, 0, 4, 2, 0, 0, 0]), MAX).kind, 'invalid'); // ServerHello
    const hello = await realHello({ servername: 'a.test' });
    assert.equal(parseClientHello(hello, 100).kind, 'invalid');
    // A record that claims more than 16 KiB + 256.
    assert.equal(parseClientHello(Buffer.from([22, 3, 1, 0x44, 0x01]), MAX).kind, 'invalid');
  });

  test('fuzz: random bytes and mutated real hellos never throw; "more" only below the bound', async () => {
    const hello = await realHello({ servername: 'mx.example.test', ALPNProtocols: ['acme-tls/1', 'h2'] });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.integer({ min: 1, max: 700 }), (bytes, max) => {
        const r = parseClientHello(bytes, max);
        if (r.kind === 'more') assert.ok(bytes.length < max);
      }),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(hello.length - 1), fc.nat(255)), { minLength: 1, maxLength: 8 }),
        fc.nat(hello.length),
        (edits, cut) => {
          const b = Buffer.from(hello);
          for (const [i, v] of edits) b[i] = v;
          const r = parseClientHello(b.subarray(0, cut), MAX);
          if (r.kind === 'hello') {
            assert.ok(r.serverName === null || /^[a-z0-9.-]{1,253}$/.test(r.serverName));
            for (const p of r.alpn) assert.ok(p.length > 0 && p.length < 256);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});
