import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { LIMITS } from '../../src/core/limits.ts';
import { loadSrsSecrets, parseSecrets, rotateSrsSecret, SrsSecretError } from '../../src/srs/secret.ts';
import { Srs, SrsError, srsTimestamp } from '../../src/srs/srs.ts';

const DAY = 86_400_000;
const SECRET = 'test-secret-0123456789';
/** A fixed day (not a cycle boundary) so that results are reproducible. */
const T0 = Date.UTC(2026, 11, 7, 12);

function srs(now = T0, extra: Partial<ConstructorParameters<typeof Srs>[0]> = {}): Srs {
  return new Srs({ secrets: [SECRET], now: () => now, ...extra });
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SrsError, `not an SrsError: ${String(err)}`);
    return err.code;
  }
  return 'none';
}

test('SRS0 round trip, the format of Mail::SRS and the values it computes', () => {
  // Reference values made by Mail::SRS 0.31 (AlwaysRewrite, secret 0123456789abcdef0123, day 'J2').
  const ref = new Srs({ secrets: ['0123456789abcdef0123'], now: () => T0 });
  assert.equal(srsTimestamp(T0), 'J2');
  const a = ref.forward('alice@orig.example', 'fwd.example');
  assert.equal(a, 'SRS0=NwHW=J2=orig.example=alice@fwd.example');
  const b = ref.forward(a, 'second.example');
  assert.equal(b, 'SRS1=pbZQ=fwd.example==NwHW=J2=orig.example=alice@second.example');
  assert.equal(ref.reverse(b), a);
  assert.equal(ref.reverse(a), 'alice@orig.example');
});

test('forward takes a domain or an address, keeps the sender for its own domain unless alwaysRewrite', () => {
  const s = srs();
  assert.equal(s.forward('bob@here.example', 'Here.Example'), 'bob@here.example');
  assert.match(srs(T0, { alwaysRewrite: true }).forward('bob@here.example', 'here.example'), /^SRS0=/);
  assert.equal(s.forward('bob@a.example', 'list@fwd.example').split('@')[1], 'fwd.example');
  // Local parts with '=' and '@'-less domains of the original survive (the 4th field keeps the rest).
  const odd = s.forward('a=b=c+d@orig.example', 'fwd.example');
  assert.equal(s.reverse(odd), 'a=b=c+d@orig.example');
});

test('SRS1 chains: a third hop re-hashes the first hop and reverses to the first hop SRS0 address', () => {
  const first = srs(T0, { secrets: ['first-hop-secret-0000'] });
  const second = srs();
  const third = srs(T0, { secrets: ['third-hop-secret-0000'] });
  const s0 = first.forward('carol@orig.example', 'one.example');
  const s1 = second.forward(s0, 'two.example');
  const s1b = third.forward(s1, 'three.example');
  assert.match(s1, /^SRS1=[^=]{4}=one\.example==/);
  assert.match(s1b, /^SRS1=[^=]{4}=one\.example==/);
  assert.equal(second.reverse(s1), s0);
  assert.equal(third.reverse(s1b), s0);
  assert.equal(first.reverse(third.reverse(s1b)), 'carol@orig.example');
  // Each hop checks only its own hash.
  assert.equal(
    code(() => second.reverse(s1b)),
    'forged',
  );
  assert.equal(
    code(() => second.reverse(s0)),
    'forged',
  );
});

test('separators: + and - after the tag are made and accepted, the first hop keeps its own', () => {
  const plus = srs(T0, { separator: '+' });
  const a = plus.forward('dave@orig.example', 'fwd.example');
  assert.match(a, /^SRS0\+/);
  assert.equal(plus.reverse(a), 'dave@orig.example');
  const minus = srs(T0, { separator: '-' });
  const b = minus.forward(a, 'two.example');
  assert.match(b, /^SRS1-[^=]{4}=fwd\.example=\+/);
  assert.equal(minus.reverse(b), a);
  assert.equal(srs().reverse(a.replace('SRS0+', 'SRS0-')), 'dave@orig.example');
});

test('case folding: tag, time stamp and hash compare case-insensitively, as Mail::SRS does', () => {
  const s = srs();
  const a = s.forward('Eve@Orig.Example', 'fwd.example');
  assert.equal(s.reverse(a), 'Eve@Orig.Example');
  assert.equal(s.reverse(a.toLowerCase()), 'eve@orig.example');
  assert.equal(s.reverse(a.toUpperCase()), 'EVE@ORIG.EXAMPLE');
  const b = s.forward(a, 'two.example');
  assert.equal(s.reverse(b.toLowerCase()), a.toLowerCase().replace(/^srs0/, 'SRS0'));
});

test('expiry boundary: valid for maxAge days after the day written, refused the day after', () => {
  const a = srs().forward('frank@orig.example', 'fwd.example');
  const max = LIMITS.srs.defaultMaxAgeDays;
  assert.equal(srs(T0 + max * DAY).reverse(a), 'frank@orig.example');
  assert.equal(
    code(() => srs(T0 + (max + 1) * DAY).reverse(a)),
    'expired',
  );
  assert.equal(
    code(() => srs(T0 - DAY).reverse(a)),
    'expired',
  ); // from the future
  assert.equal(srs(T0 + 1024 * DAY).reverse(a), 'frank@orig.example'); // the cycle wraps
  assert.equal(srs(T0 + 30 * DAY, { maxAgeDays: 30 }).reverse(a), 'frank@orig.example');
  // Across the 1024-day wrap of the time stamp.
  const wrapDay = Math.ceil(T0 / DAY / 1024) * 1024 * DAY;
  const late = srs(wrapDay - 2 * DAY).forward('g@orig.example', 'fwd.example');
  assert.equal(srs(wrapDay + 5 * DAY).reverse(late), 'g@orig.example');
});

test('forged: a wrong hash, a changed field, another secret, a short hash, a hashless SRS1', () => {
  const s = srs();
  const a = s.forward('henry@orig.example', 'fwd.example');
  const [tag, hash, ...rest] = a.split('=');
  const flipped = `${hash?.[0] === 'A' ? 'B' : 'A'}${hash?.slice(1)}`;
  assert.equal(
    code(() => s.reverse([tag, flipped, ...rest].join('='))),
    'forged',
  );
  assert.equal(
    code(() => s.reverse(a.replace('henry', 'henri'))),
    'forged',
  );
  assert.equal(
    code(() => s.reverse(a.replace('orig.example', 'evil.example'))),
    'forged',
  );
  assert.equal(
    code(() => srs(T0, { secrets: ['another-secret-00000'] }).reverse(a)),
    'forged',
  );
  assert.equal(
    code(() => s.reverse([tag, hash?.slice(0, 3), ...rest].join('='))),
    'forged',
  );
  assert.equal(
    code(() => s.reverse('SRS1=one.example==xxxx=J2=orig.example=x@fwd.example')),
    'forged',
  );
  // A character that only a lossy 8-bit conversion would turn into the right one.
  const lookAlike = String.fromCharCode((hash?.charCodeAt(0) ?? 0) + 256) + hash?.slice(1);
  assert.equal(
    code(() => s.reverse([tag, lookAlike, ...rest].join('='))),
    'forged',
  );
  // A forged hash is reported before an expired stamp (the stamp is only read once signed).
  assert.equal(
    code(() => srs(T0 + 100 * DAY).reverse([tag, flipped, ...rest].join('='))),
    'forged',
  );
  // A longer prefix of the real HMAC passes, as in Mail::SRS.
  const h = createHmac('sha1', SECRET);
  for (const f of rest.slice(0, 3)) h.update(f.replace(/@.*/, '').toLowerCase());
  const full = h.digest('base64').slice(0, 10);
  assert.equal(full.slice(0, 4), hash);
  assert.equal(s.reverse([tag, full, ...rest].join('=')), 'henry@orig.example');
});

test('rotation: the first secret signs, older ones are still accepted', () => {
  const old = srs(T0, { secrets: ['old-secret-0000000000'] });
  const a = old.forward('ivy@orig.example', 'fwd.example');
  const rotated = srs(T0, { secrets: ['new-secret-0000000000', 'old-secret-0000000000'] });
  assert.equal(rotated.reverse(a), 'ivy@orig.example');
  const b = rotated.forward('ivy@orig.example', 'fwd.example');
  assert.notEqual(a, b);
  assert.equal(
    code(() => old.reverse(b)),
    'forged',
  );
});

test('malformed input: distinct codes, never anything but SrsError', () => {
  const s = srs();
  assert.equal(
    code(() => s.reverse('alice@orig.example')),
    'not-srs',
  );
  assert.equal(
    code(() => s.reverse('SRS0=abcd=J2=orig.example')),
    'not-srs',
  );
  assert.equal(
    code(() => s.reverse('SRS2=abcd=J2=orig.example=a@x')),
    'not-srs',
  );
  assert.equal(
    code(() => s.reverse('SRS0=abcd=J2=orig.example@x')),
    'malformed',
  );
  assert.equal(
    code(() => s.reverse('SRS0=abcd=J2==a@x')),
    'malformed',
  );
  assert.equal(
    code(() => s.reverse('SRS0=abcd=J!=o.example=a@x')),
    'malformed',
  );
  assert.equal(
    code(() => s.reverse('SRS0=abcd=JJJ=o.example=a@x')),
    'malformed',
  );
  assert.equal(
    code(() => s.reverse('SRS1=abcd=o.example@x')),
    'malformed',
  );
  assert.equal(
    code(() => s.reverse(`SRS0=abcd=J2=o.example=${'a'.repeat(400)}@x`)),
    'too-long',
  );
  assert.equal(
    code(() => s.forward('', 'fwd.example')),
    'malformed',
  );
  assert.equal(
    code(() => s.forward('nodomain', 'fwd.example')),
    'malformed',
  );
  assert.equal(
    code(() => s.forward('@orig.example', 'fwd.example')),
    'malformed',
  );
  assert.equal(
    code(() => s.forward('a@b@orig.example', 'fwd.example')),
    'malformed',
  );
  assert.equal(
    code(() => s.forward('a@orig.example', '')),
    'malformed',
  );
  assert.equal(
    code(() => s.forward(`${'a'.repeat(65)}@orig.example`, 'fwd.example')),
    'too-long',
  );
  assert.equal(
    code(() => s.forward(`a@${'b'.repeat(300)}.example`, `${'c'.repeat(60)}.example`)),
    'too-long',
  );
  assert.throws(() => new Srs({ secrets: [] }), SrsError);
  assert.throws(() => new Srs({ secrets: [SECRET], maxAgeDays: 0 }), SrsError);
  const chars = fc.constantFrom('S', 'R', 's', '0', '1', '=', '+', '-', '@', '.', 'a', 'Z', '2', 'é', '\0');
  fc.assert(
    fc.property(fc.array(chars, { maxLength: 60 }), fc.array(chars, { maxLength: 10 }), (a, b) => {
      const input = a.join('');
      for (const fn of [() => s.reverse(input), () => s.forward(input, b.join('') || 'x.example')]) {
        try {
          fn();
        } catch (err) {
          assert.ok(err instanceof SrsError, String(err));
        }
      }
    }),
    { numRuns: 2000 },
  );
});

test('property: any sender with a local part and domain round-trips through SRS0 and SRS1', () => {
  const s = srs();
  const local = fc.stringMatching(/^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}$/);
  const domain = fc.domain();
  fc.assert(
    fc.property(local, domain, fc.constantFrom('=', '+', '-'), (l, d, sep) => {
      const t = srs(T0, { separator: sep as '=' | '+' | '-' });
      const sender = `${l}@${d}`;
      const a = t.forward(sender, 'fwd.example');
      if (d.toLowerCase() === 'fwd.example') return;
      assert.equal(s.reverse(a), sender);
      const b = t.forward(a, 'two.example');
      assert.equal(s.reverse(b), a);
    }),
    { numRuns: 500 },
  );
});

test('secret file: created 0600 with one hex secret, read back, rotated, bounded', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-srs-'));
  try {
    const [first, again] = await Promise.all([loadSrsSecrets(dir), loadSrsSecrets(dir)]);
    assert.deepEqual(first, again); // two creators at once agree on one secret
    assert.equal(first.length, 1);
    assert.match(first[0] as string, /^[0-9a-f]{64}$/);
    const path = join(dir, 'srs.secret');
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual(await loadSrsSecrets(dir), first);
    const rotated = await rotateSrsSecret(dir);
    assert.equal(rotated.length, 2);
    assert.equal(rotated[1], first[0]);
    assert.deepEqual(await loadSrsSecrets(dir), rotated);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    for (let i = 0; i < LIMITS.srs.maxSecrets + 2; i++) await rotateSrsSecret(dir);
    assert.equal((await loadSrsSecrets(dir)).length, LIMITS.srs.maxSecrets);
    await writeFile(path, '# comment\n\n  Mail-SRS-style secret line  \nolder-secret-0123456789\n');
    assert.deepEqual(await loadSrsSecrets(dir), ['Mail-SRS-style secret line', 'older-secret-0123456789']);
    await writeFile(path, 'short\n');
    await assert.rejects(loadSrsSecrets(dir), SrsSecretError);
    await writeFile(path, '# nothing\n');
    await assert.rejects(loadSrsSecrets(dir), SrsSecretError);
    await writeFile(path, 'x'.repeat(LIMITS.srs.maxSecretFileBytes + 1));
    await assert.rejects(loadSrsSecrets(dir), SrsSecretError);
    assert.ok((await readFile(path, 'utf8')).length > 0);
    assert.throws(() => parseSecrets(Array.from({ length: 17 }, (_, i) => `secret-number-${i}-0000`).join('\n')));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
