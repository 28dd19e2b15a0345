// Many sessions on one mailbox at once, over raw sockets: writers STORE flags and keywords,
// EXPUNGE, APPEND, COPY and MOVE at random while watchers IDLE and FETCH. Every untagged
// response each session receives goes through a ViewChecker (test/harness/view-checker.ts), so
// any answer inconsistent with what that session was told before fails the test; at the end all
// sessions, and a fresh one, must agree on every message's UID and flags, and a message must
// have been \Recent in one session at most (RFC 3501 §2.3.2).
// The random choices come from a seed, printed with any failure: ARCLINE_SEED=n replays the
// same choices (the interleaving of sessions still depends on timing).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { RawImap } from '../harness/imap-client.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { ViewChecker } from '../harness/view-checker.ts';

const SEED = Number(process.env.ARCLINE_SEED ?? 20_251_106);
const WRITERS = 4;
const WATCHERS = 2;
const DURATION_MS = Number(process.env.ARCLINE_CONCURRENCY_MS ?? 10_000);
const FLAGS = ['\\Seen', '\\Flagged', '\\Answered', '\\Deleted', '\\Draft', '$Kw1', '$Kw2', '$Kw3', '$Kw4', '$Kw5'];

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Actor {
  readonly checker: ViewChecker;
  readonly #c: RawImap;
  readonly #rand: () => number;
  ops = 0;

  constructor(name: string, client: RawImap, seed: number) {
    this.checker = new ViewChecker(name);
    this.#c = client;
    this.#rand = prng(seed);
  }

  int(n: number): number {
    return Math.floor(this.#rand() * n);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }

  /** Runs a command; every untagged line goes to the checker; the tagged reply must be OK. */
  async run(command: string, onSent?: () => void): Promise<string[]> {
    const pending = this.#c.cmd(command);
    onSent?.();
    const lines = await pending;
    for (const l of lines.slice(0, -1)) if (l.startsWith('* ')) this.checker.feed(l);
    const tagged = lines.at(-1) ?? '';
    if (!/^t\d+ OK/.test(tagged))
      this.checker.errors.push(`${this.checker.name}: ${command.split('\r')[0]} -> ${tagged}`);
    this.ops++;
    return lines;
  }

  write(data: string): void {
    this.#c.write(data);
  }

  /** 1..3 sequence numbers this session knows, as a set. */
  seqs(): string {
    const n = this.checker.exists;
    return [...new Set(Array.from({ length: 1 + this.int(3) }, () => 1 + this.int(n)))].join(',');
  }

  flags(): string {
    return [...new Set(Array.from({ length: 1 + this.int(3) }, () => this.pick(FLAGS)))].join(' ');
  }

  async append(): Promise<void> {
    const body = `Subject: ${this.checker.name} ${this.ops}\r\nMessage-ID: <${this.checker.name}.${this.ops}@concurrency.test>\r\n\r\nbody\r\n`;
    const flags = this.int(2) === 0 ? '' : this.flags();
    await this.run(`APPEND INBOX (${flags}) {${Buffer.byteLength(body)}+}\r\n${body}`);
  }

  /** One random writer step. */
  async write1(): Promise<void> {
    const n = this.checker.exists;
    const r = this.int(100);
    if (n < 8 || (r < 12 && n < 60)) return this.append();
    if (r < 40) {
      const mode = this.pick(['+FLAGS', '-FLAGS', 'FLAGS', '+FLAGS.SILENT', '-FLAGS.SILENT']);
      await this.run(`STORE ${this.seqs()} ${mode} (${this.flags()})`);
    } else if (r < 48 || n > 60) {
      if (n > 60) await this.run(`STORE ${this.seqs()} +FLAGS.SILENT (\\Deleted)`);
      await this.run('EXPUNGE');
    } else if (r < 56) await this.run(`COPY ${this.seqs()} ${this.pick(['INBOX', 'Other'])}`);
    else if (r < 64) await this.run(`MOVE ${this.seqs()} Other`);
    else if (r < 80) await this.run('FETCH 1:* (UID FLAGS MODSEQ)');
    else if (r < 88) await this.run(`SEARCH ${this.pick(['DELETED', 'KEYWORD $Kw1', 'UNSEEN', 'FLAGGED'])}`);
    else if (r < 94) await this.run(`FETCH ${this.seqs()} (FLAGS)`);
    else await this.run('NOOP');
  }

  /** One random watcher step: IDLE a while (updates are pushed), then look. */
  async watch1(): Promise<void> {
    await this.run('IDLE', () => {
      setTimeout(() => this.write('DONE\r\n'), 30 + this.int(250));
    });
    if (this.int(2) === 0) await this.run('FETCH 1:* (UID FLAGS MODSEQ)');
    else await this.run('NOOP');
  }
}

let s: TestServer;
const clients: RawImap[] = [];

before(async () => {
  s = await startTestServer();
});
after(async () => {
  for (const c of clients) c.close();
  await s?.stop();
});

async function session(name: string, seed: number): Promise<Actor> {
  const { client } = await RawImap.connect(s.imapPort);
  client.timeoutMs = 60_000;
  clients.push(client);
  const a = new Actor(name, client, seed);
  assert.match((await client.cmd('LOGIN alice@example.test secret-password')).at(-1) ?? '', /OK/);
  await a.run('ENABLE CONDSTORE');
  await a.run('SELECT INBOX');
  return a;
}

test('sessions on one mailbox stay consistent with what each was told', async (t) => {
  const setup = await session('setup', SEED);
  await setup.run('CREATE Other');
  for (let i = 0; i < 20; i++) await setup.append();
  const writers = await Promise.all(Array.from({ length: WRITERS }, (_, i) => session(`w${i}`, SEED + 1 + i)));
  const watchers = await Promise.all(Array.from({ length: WATCHERS }, (_, i) => session(`idle${i}`, SEED + 100 + i)));
  const all = [setup, ...writers, ...watchers];
  const started = performance.now();
  const until = Date.now() + DURATION_MS;
  await Promise.all([
    ...writers.map(async (w) => {
      while (Date.now() < until && w.checker.errors.length === 0) await w.write1();
    }),
    ...watchers.map(async (w) => {
      while (Date.now() < until && w.checker.errors.length === 0) await w.watch1();
    }),
  ]);
  const seconds = (performance.now() - started) / 1000;
  const ops = all.reduce((n, a) => n + a.ops, 0);
  t.diagnostic(`seed ${SEED}: ${ops} commands in ${seconds.toFixed(1)} s (${(ops / seconds).toFixed(0)}/s)`);

  // Quiet now: every session brings its view up to date, then all must agree.
  const fresh = await session('fresh', SEED + 999);
  const views: string[] = [];
  for (const a of [...all, fresh]) {
    await a.run('NOOP');
    const lines = await a.run('UID FETCH 1:* (FLAGS MODSEQ)');
    const c = a.checker;
    if (c.uids.some((u) => u === null)) c.errors.push(`${c.name}: a sequence number without a UID after UID FETCH 1:*`);
    views.push(
      lines
        .slice(0, -1)
        .map((l) => l.replace(/^\* \d+ FETCH /, '').replace(/ ?\\Recent/, ''))
        .join('\n'),
    );
  }
  const errors = all.flatMap((a) => a.checker.errors).concat(fresh.checker.errors);
  assert.deepEqual(errors, [], `seed ${SEED}`);
  for (const [i, v] of views.entries()) assert.equal(v, views.at(-1), `seed ${SEED}: ${all[i]?.checker.name ?? ''}`);
  assert.ok((views.at(-1) ?? '').length > 0, 'the mailbox is not empty');
  // RFC 3501 §2.3.2: \Recent in one session at most.
  const recentIn = new Map<number, string[]>();
  for (const a of [...all, fresh])
    for (const u of a.checker.recent) recentIn.set(u, [...(recentIn.get(u) ?? []), a.checker.name]);
  const shared = [...recentIn].filter(([, names]) => names.length > 1);
  assert.deepEqual(shared, [], `seed ${SEED}: messages \\Recent in more than one session`);
  assert.ok(
    writers.every((w) => w.ops > 10) && watchers.every((w) => w.ops > 4),
    `seed ${SEED}: every session made progress`,
  );
});
