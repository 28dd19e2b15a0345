// Pigeonhole's sieve-test (Debian dovecot-sieve) as a reference for the Sieve interpreter: runs a
// batch of script × message pairs in one shell (a process start per pair is the cost, not the
// shell), with a private HOME, a Maildir with the given folders, personal and global script
// directories for include, vacation-seconds enabled and TZ=UTC. As root (CI) it runs as nobody:
// Dovecot refuses mail access as UID 0. Its printed result is parsed into normalized lines.

import { execFileSync, spawn } from 'node:child_process';
import { chownSync, copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

export const SIEVE_TEST = '/usr/bin/sieve-test';

export interface PigeonholeJob {
  readonly script: string;
  readonly message: string;
  readonly from: string;
  readonly to: string;
}

export interface PigeonholeResult {
  readonly rc: number;
  readonly stdout: string;
  readonly stderr: string;
}

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  for (const e of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, e.name);
    if (e.isDirectory()) chownTree(p, uid, gid);
    else chownSync(p, uid, gid);
  }
}

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs sieve-test for every job (in one `sh`); `dir` is removed by the caller. */
export async function sieveTestBatch(
  dir: string,
  jobs: readonly PigeonholeJob[],
  o: { mailboxes: readonly string[]; personal: string; global: string },
): Promise<PigeonholeResult[]> {
  const maildir = join(dir, 'Maildir');
  for (const box of ['', ...o.mailboxes.map((m) => `.${m}`)])
    for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(maildir, box, sub), { recursive: true });
  for (const [from, to] of [
    [o.personal, join(dir, 'sieve')],
    [o.global, join(dir, 'global')],
  ] as const) {
    mkdirSync(to, { recursive: true });
    for (const f of readdirSync(from)) copyFileSync(join(from, f), join(to, f));
  }
  const conf = join(dir, 'dovecot.conf');
  writeFileSync(
    conf,
    `plugin {\n  sieve = file:${dir}/sieve;active=${dir}/.dovecot.sieve\n  sieve_global = ${dir}/global\n}\n`,
  );
  const inputs = join(dir, 'in');
  const outputs = join(dir, 'out');
  mkdirSync(inputs);
  mkdirSync(outputs);
  const copied = new Set<string>();
  const lines = ['#!/bin/sh'];
  jobs.forEach((j, i) => {
    for (const f of [j.script, j.message])
      if (!copied.has(f)) {
        copyFileSync(f, join(inputs, basename(f)));
        copied.add(f);
      }
    const from = j.from === '' ? '<>' : j.from;
    lines.push(
      `${SIEVE_TEST} -c ${quote(conf)} -l maildir:${quote(maildir)} -x +vacation-seconds -f ${quote(from)} -r ${quote(j.to)} ` +
        `${quote(join(inputs, basename(j.script)))} ${quote(join(inputs, basename(j.message)))} >${outputs}/${i}.out 2>${outputs}/${i}.err; echo $? >${outputs}/${i}.rc`,
    );
  });
  const runner = join(dir, 'run.sh');
  writeFileSync(runner, `${lines.join('\n')}\n`);
  const root = process.getuid?.() === 0;
  let ids: { uid: number; gid: number } | undefined;
  if (root) {
    ids = {
      uid: Number(execFileSync('id', ['-u', 'nobody']).toString()),
      gid: Number(execFileSync('id', ['-g', 'nobody']).toString()),
    };
    chownTree(dir, ids.uid, ids.gid);
  }
  await new Promise<void>((resolve, reject) => {
    const child = spawn('/bin/sh', [runner], {
      env: { HOME: dir, TZ: 'UTC', PATH: '/usr/bin:/bin' },
      stdio: 'ignore',
      ...(ids ?? {}),
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`sieve-test batch exited ${code}`))));
  });
  return jobs.map((_, i) => ({
    rc: Number(readFileSync(join(outputs, `${i}.rc`), 'utf8')),
    stdout: readFileSync(join(outputs, `${i}.out`), 'utf8'),
    stderr: readFileSync(join(outputs, `${i}.err`), 'utf8'),
  }));
}

/** A system flag in lower case (Pigeonhole prints them so), a keyword as it is; sorted. */
export function normalFlags(flags: readonly string[] | null): string {
  const list = (flags ?? []).map((f) => (f.startsWith('\\') ? f.toLowerCase() : f));
  return list.sort().join(' ');
}

/** sieve-test's printed result as lines: `store <box> [create] flags=<...>`, `redirect <addr>`,
 *  `reject <reason>`, `discard`, `vacation ...`, `track`, then `implicit keep flags=...` or
 *  `no implicit keep`; a failed run is `error` (Pigeonhole then keeps the message). */
export function parsePigeonhole(r: PigeonholeResult): string[] {
  const out = r.stdout.replace(/\r/g, '');
  if (r.rc !== 0 || !out.includes('Performed actions:')) return ['error'];
  const [performed = '', implicit = ''] = out.split('Implicit keep:');
  const result: string[] = [];
  let current: { kind: string; head: string; flags: string[]; create: boolean; props: Map<string, string> } | null =
    null;
  const flush = (): void => {
    if (current === null) return;
    result.push(render(current));
    current = null;
  };
  const render = (c: NonNullable<typeof current>): string => {
    if (c.kind === 'store') return `store ${c.head}${c.create ? ' create' : ''} flags=${normalFlags(c.flags)}`;
    if (c.kind === 'vacation')
      return `vacation seconds=${c.props.get('seconds')} subject=${c.props.get('subject') ?? '-'} from=${c.props.get('from') ?? '-'} handle=${c.props.get('handle')} reason=${c.props.get('reason')}`;
    return c.head;
  };
  const lines = performed.split('\n');
  const start = (kind: string, head: string): undefined => {
    flush();
    current = { kind, head, flags: [], create: false, props: new Map() };
    return undefined;
  };
  const done = (line: string): undefined => {
    flush();
    result.push(line);
    return undefined;
  };
  const rules: [RegExp, (m: RegExpExecArray, i: number) => number | undefined][] = [
    [/^ \* store message in folder: (.*)$/, (m) => start('store', m[1] as string)],
    [/^ \* redirect message to: <(.*)>$/, (m) => start('other', `redirect ${m[1]}`)],
    [/^ \* reject message with reason: (.*)$/, (m) => start('other', `reject ${m[1]}`)],
    [/^ \* discard$/, () => done('discard')],
    [/^ \* track (?:last )?duplicate(?: with handle: (.*))?$/, (m) => done(m[1] ? `track handle=${m[1]}` : 'track')],
    [/^ \* send vacation message:$/, () => start('vacation', '')],
    [
      /^ {4}=> (\w+) *: (.*)$/,
      (m, i) => {
        // A value (a handle made of a text: reason) runs on to the next property or the message.
        const value = [m[2] as string];
        let j = i;
        while (j + 1 < lines.length && !/^( {4}=> | \* |START MESSAGE$)/.test(lines[j + 1] as string))
          value.push(lines[++j] as string);
        current?.props.set(m[1] as string, value.join('\n').trim());
        return j;
      },
    ],
    [
      /^START MESSAGE$/,
      (_, i) => {
        const body: string[] = [];
        let j = i + 1;
        for (; j < lines.length && lines[j] !== 'END MESSAGE'; j++) body.push(lines[j] as string);
        current?.props.set('reason', body.join('\n').trim());
        return j;
      },
    ],
    [
      /^\s+\+ add IMAP flags: (.*)$/,
      (m) => {
        if (current) current.flags = (m[1] as string).split(' ').filter((f) => f !== '');
        return undefined;
      },
    ],
    [
      /^\s+\+ create mailbox if it does not exist$/,
      () => {
        if (current) current.create = true;
        return undefined;
      },
    ],
    [/^ \* (.*)$/, (m) => done(`unknown: ${m[1]}`)],
  ];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    for (const [re, handle] of rules) {
      const m = re.exec(line);
      if (m) {
        i = handle(m, i) ?? i;
        break;
      }
    }
  }
  flush();
  if (implicit.includes('(none)')) result.push('no implicit keep');
  else {
    const m = /\+ add IMAP flags: (.*)/.exec(implicit);
    result.push(`implicit keep flags=${normalFlags(m ? (m[1] as string).split(' ').filter((f) => f !== '') : [])}`);
  }
  return result;
}
