// Reading a password for the CLI: from the first line of standard input (--password-stdin, for
// scripts), or from the terminal with echo off, asked twice. Never echoed, printed or logged.

import { ArclineError } from '../core/errors.ts';

export async function readPassword(fromStdin: boolean): Promise<string> {
  if (fromStdin) return readLine('password');
  if (!process.stdin.isTTY) {
    throw new ArclineError('INVALID', 'standard input is not a terminal: pass the password with --password-stdin');
  }
  const a = await prompt('Password: ');
  const b = await prompt('Repeat password: ');
  if (a !== b) throw new ArclineError('INVALID', 'the passwords do not match');
  if (a === '') throw new ArclineError('INVALID', 'the password is empty');
  return a;
}

/** The first line of standard input (a password or a password hash); empty is an error. */
export async function readLine(what = 'password hash'): Promise<string> {
  const first = (await readAll(process.stdin)).split(/\r?\n/)[0] ?? '';
  if (first === '') throw new ArclineError('INVALID', `no ${what} on standard input`);
  return first;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) {
    text += chunk.toString();
    if (text.length > 4096) throw new ArclineError('INVALID', 'password on standard input is too long');
  }
  return text;
}

/** Reads one line from the terminal in raw mode without echo. */
function prompt(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    stdin.setRawMode(true);
    stdin.resume();
    let value = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (d: Buffer) => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new ArclineError('INVALID', 'cancelled'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}
