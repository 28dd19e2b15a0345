// imap/output.ts on a real loopback socket: text parts in a row go out in one write (each write
// is a system call, and a second small segment would wait for the client's ACK under Nagle),
// push() writes at once and in order, and is bounded like send() for a client that does not read.

import assert from 'node:assert/strict';
import net from 'node:net';
import { type TestContext, test } from 'node:test';
import { Output } from '../../src/imap/output.ts';

/** A connected pair: the server side (written by Output, its writes counted) and the client,
 *  closed when the test ends. */
async function pair(t: TestContext) {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const sock = await accepted;
  const writes: string[] = [];
  const write = sock.write.bind(sock) as (chunk: string | Buffer) => boolean;
  sock.write = ((chunk: string | Buffer) => {
    writes.push(Buffer.isBuffer(chunk) ? `<buffer ${chunk.length}>` : chunk);
    return write(chunk);
  }) as typeof sock.write;
  let received = '';
  client.setEncoding('latin1');
  client.on('data', (d: string) => {
    received += d;
  });
  const receivedAll = async (n: number) => {
    while (received.length < n) await new Promise((r) => client.once('data', r));
    return received;
  };
  t.after(() => {
    client.destroy();
    sock.destroy();
    server.close();
  });
  return { sock, client, writes, receivedAll };
}

test('send(): a run of text and bytes is one write, in order', async (t) => {
  const p = await pair(t);
  const out = new Output(p.sock);
  await out.send(['* 3 EXISTS\r\n', '* 1 RECENT\r\n']);
  await out.send(['* 3 EXISTS\r\n', '* 1 RECENT\r\n', Buffer.from('literal'), '\r\n', 'a1 OK done\r\n']);
  assert.deepEqual(p.writes, ['* 3 EXISTS\r\n* 1 RECENT\r\n', '<buffer 45>']);
  const text = '* 3 EXISTS\r\n* 1 RECENT\r\n* 3 EXISTS\r\n* 1 RECENT\r\nliteral\r\na1 OK done\r\n';
  assert.equal(await p.receivedAll(text.length), text);
});

test('push(): written before it returns, in one write, in order with send()', async (t) => {
  const p = await pair(t);
  const out = new Output(p.sock);
  const sent = out.send(['+ idling\r\n']);
  out.push('* 1 EXISTS\r\n* 0 RECENT\r\n');
  assert.deepEqual(p.writes, ['+ idling\r\n', '* 1 EXISTS\r\n* 0 RECENT\r\n']);
  await sent;
  out.push('* 1 EXPUNGE\r\n');
  const text = '+ idling\r\n* 1 EXISTS\r\n* 0 RECENT\r\n* 1 EXPUNGE\r\n';
  assert.equal(await p.receivedAll(text.length), text);
});

test('push() to a client that does not read is bounded like send()', async (t) => {
  const p = await pair(t);
  p.client.pause();
  let overflows = 0;
  const out = new Output(p.sock, {
    maxQueued: 4 * 1024 * 1024,
    onOverflow: () => {
      overflows++;
      p.sock.destroy();
    },
  });
  const update = `* 1 FETCH (FLAGS (${'x'.repeat(256 * 1024)}))\r\n`;
  for (let i = 0; i < 64; i++) out.push(update); // 16 MB, nobody reading
  assert.equal(overflows, 1);
  assert.ok(p.sock.destroyed);
  assert.ok(p.writes.length < 64);
});
