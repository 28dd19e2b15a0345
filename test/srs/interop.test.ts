// SRS against an independent implementation: Mail::SRS (Debian's libmail-srs-perl, the library
// behind the `srs` command of its upstream distribution, which Debian does not install). One perl
// process answers a batch of requests on stdin, one line each:
//   F <unix time> <separator> <secret,secret...> <sender> <alias domain>   -> forward
//   R <unix time> <separator> <secret,secret...> <address>                 -> reverse
// and prints "OK <address>" or "ERR <message>". The time is Mail::SRS's time() (overridden), so
// both sides compute the same day and the expiry boundary can be tried.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import fc from 'fast-check';
import { Srs, type SrsSeparator } from '../../src/srs/srs.ts';

const PERL = `
use strict; use warnings;
BEGIN { *CORE::GLOBAL::time = sub () { defined $main::NOW ? $main::NOW : CORE::time() }; }
our $NOW;
use Mail::SRS;
$SIG{__WARN__} = sub {};
$| = 1;
my %srs;
while (my $line = <STDIN>) {
  chomp $line;
  my ($op, $now, $sep, $secrets, @args) = split / /, $line;
  $main::NOW = $now;
  my $srs = $srs{"$sep $secrets"} //= Mail::SRS->new(Secret => [split /,/, $secrets], Separator => $sep, AlwaysRewrite => 1);
  my $out = eval { $op eq 'F' ? $srs->forward(@args) : $srs->reverse($args[0]) };
  if (defined $out) { print "OK $out\\n" } else { my $e = $@; $e =~ s/\\s+/ /g; print "ERR $e\\n" }
}
`;

interface Req {
  op: 'F' | 'R';
  now: number;
  sep?: SrsSeparator;
  secrets: string[];
  args: string[];
}

async function mailSrs(reqs: readonly Req[]): Promise<{ ok: boolean; value: string }[]> {
  const child = spawn('/usr/bin/perl', ['-e', PERL], { stdio: ['pipe', 'pipe', 'inherit'] });
  const chunks: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const lines = reqs.map((r) =>
    [r.op, Math.floor(r.now / 1000), r.sep ?? '=', r.secrets.join(','), ...r.args].join(' '),
  );
  child.stdin.end(`${lines.join('\n')}\n`);
  assert.equal(await done, 0);
  const out = Buffer.concat(chunks).toString('utf8').split('\n').slice(0, -1);
  assert.equal(out.length, reqs.length);
  return out.map((l) => ({ ok: l.startsWith('OK '), value: l.slice(l.indexOf(' ') + 1) }));
}

const SECRET_A = 'interop-secret-a-0123456789';
const SECRET_B = 'interop-secret-b-abcdefghij';
const NOW = Date.now();
const DAY = 86_400_000;

/** Senders of dot-atom characters (no spaces: the request line is split on them). */
const SENDERS = [
  'alice@orig.example',
  'Bob.Smith@Mixed.Case.Example',
  'a=b=c@eq.example',
  'user+tag@plus.example',
  'x-y_z@sub.domain.example',
  ...fc
    .sample(fc.tuple(fc.stringMatching(/^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,40}$/), fc.domain()), {
      numRuns: 150,
      seed: 16,
    })
    .map(([l, d]) => `${l}@${d}`),
].filter((s) => !s.toLowerCase().endsWith('@fwd.example') && !s.toLowerCase().endsWith('@two.example'));

function ours(secrets: string[], sep: SrsSeparator = '=', now = NOW): Srs {
  return new Srs({ secrets, separator: sep, alwaysRewrite: true, now: () => now });
}

test('SRS0: Mail::SRS reverses ours, we reverse its own, and both make the same address', async () => {
  const seps: SrsSeparator[] = ['=', '+', '-'];
  const cases = SENDERS.map((s, i) => ({ sender: s, sep: seps[i % 3] as SrsSeparator }));
  const made = cases.map((c) => ours([SECRET_A], c.sep).forward(c.sender, 'fwd.example'));
  const answers = await mailSrs([
    ...made.map((a) => ({ op: 'R' as const, now: NOW, secrets: [SECRET_A], args: [a] })),
    ...cases.map((c) => ({
      op: 'F' as const,
      now: NOW,
      sep: c.sep,
      secrets: [SECRET_A],
      args: [c.sender, 'fwd.example'],
    })),
  ]);
  cases.forEach((c, i) => {
    const back = answers[i];
    const theirs = answers[cases.length + i];
    assert.deepEqual(back, { ok: true, value: c.sender }, made[i]);
    assert.ok(theirs?.ok, theirs?.value);
    assert.equal(theirs.value, made[i]);
    assert.equal(ours([SECRET_A]).reverse(theirs.value), c.sender);
  });
});

test('SRS1: a third hop of either kind reverses the other, back to the first hop and the sender', async () => {
  // First hop: Mail::SRS with secret A makes SRS0; second hop (secret B): both make SRS1 from it.
  const first = await mailSrs(
    SENDERS.map((s) => ({ op: 'F' as const, now: NOW, secrets: [SECRET_A], args: [s, 'fwd.example'] })),
  );
  const srs0 = first.map((r) => {
    assert.ok(r.ok, r.value);
    return r.value;
  });
  const b = ours([SECRET_B], '-');
  const ourSrs1 = srs0.map((a) => b.forward(a, 'two.example'));
  const answers = await mailSrs([
    ...ourSrs1.map((a) => ({ op: 'R' as const, now: NOW, secrets: [SECRET_B], args: [a] })),
    ...srs0.map((a) => ({
      op: 'F' as const,
      now: NOW,
      sep: '-' as const,
      secrets: [SECRET_B],
      args: [a, 'two.example'],
    })),
    // A third hop re-wrapping an SRS1 (Guarded: stays SRS1 naming the first hop).
    ...ourSrs1.map((a) => ({ op: 'F' as const, now: NOW, secrets: [SECRET_A], args: [a, 'three.example'] })),
  ]);
  const n = SENDERS.length;
  for (let i = 0; i < n; i++) {
    assert.deepEqual(answers[i], { ok: true, value: srs0[i] });
    assert.deepEqual(answers[n + i], { ok: true, value: ourSrs1[i] });
    assert.equal(b.reverse(answers[n + i]?.value as string), srs0[i]);
    const third = answers[2 * n + i];
    assert.ok(third?.ok, third?.value);
    assert.equal(third.value, ours([SECRET_A]).forward(ourSrs1[i] as string, 'three.example'));
    assert.equal(ours([SECRET_A]).reverse(third.value), srs0[i]);
    assert.equal(ours([SECRET_A]).reverse(srs0[i] as string), SENDERS[i]);
  }
});

test('both refuse the same forged, expired and case-smashed addresses, and accept older secrets', async () => {
  const a = ours([SECRET_A]);
  const good = a.forward('carol@orig.example', 'fwd.example');
  const old = ours([SECRET_A], '=', NOW - 22 * DAY).forward('carol@orig.example', 'fwd.example');
  const edge = ours([SECRET_A], '=', NOW - 21 * DAY).forward('carol@orig.example', 'fwd.example');
  const [tag, hash, ...rest] = good.split('=');
  const forged = [tag, hash === 'AAAA' ? 'BBBB' : 'AAAA', ...rest].join('=');
  const srs1 = a.forward(ours([SECRET_B]).forward('dan@orig.example', 'one.example'), 'fwd.example');
  const cases: { addr: string; secrets: string[]; ok: boolean }[] = [
    { addr: good, secrets: [SECRET_A], ok: true },
    { addr: good.toLowerCase(), secrets: [SECRET_A], ok: true },
    { addr: good.toUpperCase(), secrets: [SECRET_A], ok: true },
    { addr: good, secrets: [SECRET_B, SECRET_A], ok: true },
    { addr: good, secrets: [SECRET_B], ok: false },
    { addr: forged, secrets: [SECRET_A], ok: false },
    { addr: old, secrets: [SECRET_A], ok: false },
    { addr: edge, secrets: [SECRET_A], ok: true },
    { addr: srs1, secrets: [SECRET_A], ok: true },
    { addr: srs1.toLowerCase(), secrets: [SECRET_A], ok: true },
    { addr: srs1.replace('one.example', 'evil.example'), secrets: [SECRET_A], ok: false },
  ];
  const answers = await mailSrs(cases.map((c) => ({ op: 'R' as const, now: NOW, secrets: c.secrets, args: [c.addr] })));
  cases.forEach((c, i) => {
    const theirs = answers[i];
    assert.equal(theirs?.ok, c.ok, `Mail::SRS on ${c.addr}: ${theirs?.value}`);
    let mine: string | null = null;
    try {
      mine = ours(c.secrets).reverse(c.addr);
    } catch {}
    assert.equal(mine !== null, c.ok, `arcline on ${c.addr}`);
    if (c.ok) assert.equal(mine?.toLowerCase(), theirs?.value.toLowerCase());
  });
});
