// kill -9 at any moment (issue #11): a spawned server takes APPENDs and STOREs from several
// clients at once and is killed with SIGKILL at a random moment, three times over. After each
// restart: every message whose APPEND was answered OK is there under the UID its APPENDUID
// named, with its content; every flag change answered OK is there; UIDVALIDITY never changed;
// no UID names two messages. The index commits (in its worker thread) before a UID or a flag
// change is told to a client, and the message file is durable before that.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { RawImap } from '../harness/imap-client.ts';
import { provisionAlice, type ServerProcess, spawnServer } from '../harness/process.ts';
import { TEST_CONFIG } from '../harness/server.ts';

const PASSWORD = 'pw-crash-1';
const CLIENTS = 4;
const ROUNDS = 3;
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A seeded PRNG (mulberry32): the kill moments are the same on every run. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function login(port: number): Promise<RawImap> {
  const { client } = await RawImap.connect(port);
  assert.match((await client.cmd(`LOGIN alice@example.test ${PASSWORD}`)).at(-1) ?? '', /^t\d+ OK/);
  return client;
}

/** One client until the connection dies: APPENDs, each followed by a STORE on what it added. */
async function writer(port: number, name: string, appended: Map<number, string>, flagged: Set<number>): Promise<void> {
  let c: RawImap;
  try {
    c = await login(port);
    await c.cmd('SELECT INBOX');
  } catch {
    return; // killed before it started
  }
  for (let i = 0; ; i++) {
    const id = `${name}-${i}`;
    const msg = `Subject: ${id}\r\nMessage-ID: <${id}@crash.test>\r\n\r\nbody of ${id}\r\n`;
    try {
      c.write(`${id} APPEND INBOX {${msg.length}+}\r\n${msg}\r\n`);
      const reply = (await c.until(id)).at(-1) ?? '';
      const uid = Number(/\[APPENDUID \d+ (\d+)\]/.exec(reply)?.[1]);
      assert.ok(uid > 0, reply);
      appended.set(uid, id);
      if (i % 2 === 0) {
        const r = (await c.cmd(`UID STORE ${uid} +FLAGS.SILENT (\\Flagged)`)).at(-1) ?? '';
        if (/^t\d+ OK/.test(r)) flagged.add(uid);
      }
    } catch {
      return; // the server is gone: what was answered OK is recorded
    }
  }
}

/** UIDVALIDITY, and UID -> (Subject, flags) of every message. */
async function contents(
  port: number,
): Promise<{ validity: number; messages: Map<number, { id: string; flags: string }> }> {
  const c = await login(port);
  c.timeoutMs = 30_000;
  const sel = await c.cmd('SELECT INBOX');
  const validity = Number(/UIDVALIDITY (\d+)/.exec(sel.join('\n'))?.[1]);
  const lines = await c.cmd('UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])');
  c.close();
  const messages = new Map<number, { id: string; flags: string }>();
  let current: { uid: number; flags: string } | null = null;
  for (const l of lines) {
    const m = /^\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\)/.exec(l);
    if (m) current = { uid: Number(m[1]), flags: m[2] as string };
    const s = /^Subject: (\S+)/.exec(l);
    if (s && current) {
      assert.ok(!messages.has(current.uid), `UID ${current.uid} twice`);
      messages.set(current.uid, { id: s[1] as string, flags: current.flags });
      current = null;
    }
  }
  return { validity, messages };
}

test('kill -9 while clients APPEND and STORE: every acknowledged message and flag survives under its UID', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-crash-'));
  dirs.push(dir);
  const config = join(dir, 'arcline.toml');
  await provisionAlice(config, TEST_CONFIG(dir).replace('level = "debug"', 'level = "info"'), PASSWORD);
  const rnd = prng(11);
  const appended = new Map<number, string>();
  const flagged = new Set<number>();
  let validity = 0;
  let srv: ServerProcess | null = null;
  t.after(() => srv?.child.kill('SIGKILL'));
  for (let round = 0; round < ROUNDS; round++) {
    srv = await spawnServer(config);
    const port = srv.ports.imap?.[0] as number;
    const seen = await contents(port);
    validity ||= seen.validity;
    assert.equal(seen.validity, validity, 'UIDVALIDITY unchanged across crashes');
    const before = appended.size;
    const writers = Array.from({ length: CLIENTS }, (_, n) => writer(port, `r${round}c${n}`, appended, flagged));
    // Killed at a random moment once the writers are well under way.
    await new Promise((r) => setTimeout(r, 300 + rnd() * 700));
    srv.child.kill('SIGKILL');
    await srv.exited;
    await Promise.all(writers);
    assert.ok(appended.size > before, `round ${round}: the writers got APPENDs through before the kill`);
  }
  srv = await spawnServer(config);
  const { validity: last, messages } = await contents(srv.ports.imap?.[0] as number);
  assert.equal(last, validity, 'UIDVALIDITY unchanged across crashes');
  for (const [uid, id] of appended) {
    assert.equal(messages.get(uid)?.id, id, `UID ${uid} is still ${id}`);
  }
  for (const uid of flagged) assert.match(messages.get(uid)?.flags ?? '', /\\Flagged/, `UID ${uid} kept \\Flagged`);
  t.diagnostic(
    `${appended.size} acknowledged APPENDs, ${flagged.size} flag changes, ${messages.size} messages after ${ROUNDS} kills`,
  );
  srv.child.kill('SIGTERM');
  await srv.exited;
});
