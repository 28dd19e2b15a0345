// A small SMTP load generator for when Postfix's smtp-source is not installed: `sessions`
// parallel workers, each sending its share of `count` messages of `size` bytes over a NEW
// connection per message (EHLO, MAIL, RCPT, DATA, QUIT; no pipelining), like smtp-source's
// default. Returns how many messages got 250.

import net from 'node:net';

export interface LoadOptions {
  readonly port: number;
  readonly sessions: number;
  readonly count: number;
  readonly size: number;
  readonly to: string;
}

function body(size: number, n: number): Buffer {
  const head = `From: load@bench.example\r\nTo: sink@bench.test\r\nSubject: bench ${n}\r\n\r\n`;
  const line = `${'x'.repeat(76)}\r\n`;
  let text = head;
  while (text.length + line.length <= size) text += line;
  return Buffer.from(`${text}.\r\n`);
}

/** Sends one message on a new connection; resolves true on 250 after DATA. */
function sendOne(port: number, to: string, payload: Buffer): Promise<boolean> {
  // Each reply we wait for, and what to send when it arrives.
  const script: [number, string | Buffer][] = [
    [220, 'EHLO load.bench.example\r\n'],
    [250, 'MAIL FROM:<load@bench.example>\r\n'],
    [250, `RCPT TO:<${to}>\r\n`],
    [250, 'DATA\r\n'],
    [354, payload],
    [250, 'QUIT\r\n'],
  ];
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let step = 0;
    let buf = '';
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      buf += d;
      for (
        let m = /^(\d{3}) [^\r\n]*\r\n/m.exec(buf);
        m && step < script.length;
        m = /^(\d{3}) [^\r\n]*\r\n/m.exec(buf)
      ) {
        buf = buf.slice(m.index + m[0].length);
        const [expected, send] = script[step] as [number, string | Buffer];
        if (Number(m[1]) !== expected) {
          sock.end('QUIT\r\n');
          return;
        }
        sock.write(send);
        step++;
      }
    });
    sock.on('error', () => resolve(false));
    sock.on('close', () => resolve(step === script.length));
  });
}

export async function runLoad(o: LoadOptions): Promise<number> {
  let next = 0;
  let accepted = 0;
  const payload = body(o.size, 0);
  const worker = async () => {
    while (next < o.count) {
      next++;
      if (await sendOne(o.port, o.to, payload)) accepted++;
    }
  };
  await Promise.all(Array.from({ length: o.sessions }, worker));
  return accepted;
}
