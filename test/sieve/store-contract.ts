// The Sieve script and state contract (src/sieve/store-types.ts): every implementation of
// SieveScripts and SieveState (SQLite now, PostgreSQL with issue #18) runs this suite, through
// the interfaces only. `make` gives a fresh, empty store with the quota asked for.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import {
  isSieveStoreError,
  type SieveQuota,
  type SieveScripts,
  type SieveState,
  type SieveStoreErrorCode,
} from '../../src/sieve/store-types.ts';

export interface SieveStoreUnderTest {
  readonly scripts: SieveScripts;
  readonly state: SieveState;
  close(): Promise<void>;
}

export type MakeSieveStore = (quota?: SieveQuota) => Promise<SieveStoreUnderTest>;

const A = 'alice@example.org' as AccountId;
const B = 'bob@example.org' as AccountId;
const b = (s: string) => Buffer.from(s, 'utf8');

async function rejectsCode(p: Promise<unknown>, code: SieveStoreErrorCode): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isSieveStoreError(e), `not a SieveStoreError: ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  });
}

export function sieveStoreContract(name: string, make: MakeSieveStore): void {
  const withStore = (quota: SieveQuota | undefined, fn: (s: SieveStoreUnderTest) => Promise<void>) => async () => {
    const s = await make(quota);
    try {
      await fn(s);
    } finally {
      await s.close();
    }
  };

  describe(`${name}: sieve scripts contract`, () => {
    test(
      'put and get byte for byte: CRLF, bare LF, NUL-free binary, non-ASCII, a Roundcube block',
      withStore(undefined, async ({ scripts }) => {
        const roundcube = Buffer.concat([
          b('require ["fileinto"];\r\n# rule:[Spam]\r\nif header :contains "subject" "[SPAM]"\r\n'),
          b('{\r\n\tfileinto "Junk";\r\n}\n# rule:[Ümlaut — ☃]  \r\n'),
          Buffer.from([0xe2, 0x82, 0xac, 0x0d, 0x0a, 0x20, 0x09]),
        ]);
        await scripts.put(A, 'roundcube', roundcube);
        const got = await scripts.get(A, 'roundcube');
        assert.ok(got);
        assert.ok(got.equals(roundcube));
        assert.equal(await scripts.get(A, 'missing'), null);
        assert.equal(await scripts.get(B, 'roundcube'), null, 'accounts are separate');
        const empty = Buffer.alloc(0);
        await scripts.put(A, 'empty', empty);
        assert.equal((await scripts.get(A, 'empty'))?.length, 0);
      }),
    );

    test(
      'list by name with the active mark and sizes; replacing keeps the active mark',
      withStore(undefined, async ({ scripts }) => {
        assert.deepEqual(await scripts.list(A), []);
        await scripts.put(A, 'b', b('keep;'));
        await scripts.put(A, 'a', b('discard;'));
        await scripts.setActive(A, 'b');
        assert.deepEqual(await scripts.list(A), [
          { name: 'a', active: false, size: 8 },
          { name: 'b', active: true, size: 5 },
        ]);
        await scripts.put(A, 'b', b('stop;\r\n'));
        assert.deepEqual(await scripts.active(A), { name: 'b', content: b('stop;\r\n') });
        await scripts.setActive(A, 'a');
        assert.equal((await scripts.active(A))?.name, 'a');
        assert.deepEqual(
          (await scripts.list(A)).map((s) => s.active),
          [true, false],
          'only one active',
        );
        await scripts.setActive(A, null);
        assert.equal(await scripts.active(A), null);
        await rejectsCode(scripts.setActive(A, 'nope'), 'NONEXISTENT');
      }),
    );

    test(
      'list orders names by code point, whatever the database collation',
      withStore(undefined, async ({ scripts }) => {
        for (const n of ['é', 'a', 'Z', 'b ', 'B', '☃']) await scripts.put(A, n, b('keep;'));
        assert.deepEqual(
          (await scripts.list(A)).map((s) => s.name),
          ['B', 'Z', 'a', 'b ', 'é', '☃'],
        );
      }),
    );

    test(
      'delete refuses the active script (RFC 5804 §2.10) and a missing one',
      withStore(undefined, async ({ scripts }) => {
        await scripts.put(A, 'x', b('keep;'));
        await scripts.setActive(A, 'x');
        await rejectsCode(scripts.delete(A, 'x'), 'ACTIVE');
        await rejectsCode(scripts.delete(A, 'y'), 'NONEXISTENT');
        await scripts.setActive(A, null);
        await scripts.delete(A, 'x');
        assert.deepEqual(await scripts.list(A), []);
      }),
    );

    test(
      'rename (RFC 5804 §2.11.1): active stays active, target taken, source missing',
      withStore(undefined, async ({ scripts }) => {
        await scripts.put(A, 'one', b('keep;'));
        await scripts.put(A, 'two', b('discard;'));
        await scripts.setActive(A, 'one');
        await scripts.rename(A, 'one', 'uno');
        assert.deepEqual(await scripts.active(A), { name: 'uno', content: b('keep;') });
        await rejectsCode(scripts.rename(A, 'uno', 'two'), 'ALREADYEXISTS');
        await rejectsCode(scripts.rename(A, 'none', 'x'), 'NONEXISTENT');
        await rejectsCode(scripts.rename(A, 'uno', 'bad\nname'), 'BADNAME');
        assert.deepEqual(
          (await scripts.list(A)).map((s) => s.name),
          ['two', 'uno'],
        );
      }),
    );

    test(
      'names: RFC 5804 §1.6 control characters, separators, NFC, empty',
      withStore(undefined, async ({ scripts }) => {
        for (const bad of ['', 'a\u0000b', 'tab\there', 'x\u007f', 'c1\u0085', 'ls\u2028', 'ps\u2029', 'e\u0301']) {
          await rejectsCode(scripts.put(A, bad, b('keep;')), 'BADNAME');
        }
        await scripts.put(A, 'Ürlaub ☃ é', b('keep;'));
        assert.ok(await scripts.get(A, 'Ürlaub ☃ é'));
        await rejectsCode(scripts.put(A, 'x'.repeat(5000), b('keep;')), 'BADNAME');
      }),
    );

    test(
      'quotas: scripts, size of one, total; replacing counts the new size only; haveSpace agrees',
      withStore({ maxScripts: 2, maxScriptBytes: 10, maxStorageBytes: 15 }, async ({ scripts }) => {
        await scripts.put(A, 'a', b('12345678'));
        assert.equal(await scripts.haveSpace(A, 'z', 11).then((e) => e?.code), 'QUOTA/MAXSIZE');
        await rejectsCode(scripts.put(A, 'z', b('12345678901')), 'QUOTA/MAXSIZE');
        assert.equal(await scripts.haveSpace(A, 'b', 8).then((e) => e?.code), 'QUOTA');
        await rejectsCode(scripts.put(A, 'b', b('12345678')), 'QUOTA');
        await scripts.put(A, 'b', b('1234567'));
        assert.equal(await scripts.haveSpace(A, 'c', 1).then((e) => e?.code), 'QUOTA/MAXSCRIPTS');
        await rejectsCode(scripts.put(A, 'c', b('1')), 'QUOTA/MAXSCRIPTS');
        // Replacing `a` (8 octets) by 8 others fits: the old version does not count.
        assert.equal(await scripts.haveSpace(A, 'a', 8), null);
        await scripts.put(A, 'a', b('abcdefgh'));
        assert.equal((await scripts.get(A, 'a'))?.toString(), 'abcdefgh');
        // Another account has its own quota.
        await scripts.put(B, 'c', b('1'));
      }),
    );

    test(
      'unlimited (0) quotas',
      withStore({ maxScripts: 0, maxScriptBytes: 0, maxStorageBytes: 0 }, async ({ scripts }) => {
        for (let i = 0; i < 120; i++) await scripts.put(A, `s${i}`, b('keep;'));
        assert.equal((await scripts.list(A)).length, 120);
      }),
    );

    test(
      'deleteAccount removes the scripts and the state of that account only',
      withStore(undefined, async ({ scripts, state }) => {
        const now = new Date('2026-01-01T00:00:00Z');
        await scripts.put(A, 'a', b('keep;'));
        await scripts.setActive(A, 'a');
        await scripts.put(B, 'b', b('keep;'));
        await state.vacationRecord(A, 'h', 'x@example.com', 3600, now);
        await state.vacationRecord(B, 'h', 'x@example.com', 3600, now);
        assert.equal(await scripts.deleteAccount(A), 1);
        assert.deepEqual(await scripts.list(A), []);
        assert.equal(await scripts.active(A), null);
        assert.equal(await state.vacationRecent(A, 'h', 'x@example.com', 3600, now), false);
        assert.equal(await state.vacationRecent(B, 'h', 'x@example.com', 3600, now), true);
        assert.equal((await scripts.list(B)).length, 1);
      }),
    );
  });

  describe(`${name}: sieve state contract`, () => {
    const t0 = new Date('2026-03-01T12:00:00Z');
    const at = (s: number) => new Date(t0.getTime() + s * 1000);

    test(
      'vacation: recent within the period, per handle, per sender (case-insensitive), per account',
      withStore(undefined, async ({ state }) => {
        assert.equal(await state.vacationRecent(A, 'h1', 'bob@example.com', 86400, t0), false);
        await state.vacationRecord(A, 'h1', 'bob@example.com', 86400, t0);
        assert.equal(await state.vacationRecent(A, 'h1', 'bob@example.com', 86400, at(3600)), true);
        assert.equal(await state.vacationRecent(A, 'h1', 'BOB@example.com', 86400, at(3600)), true);
        assert.equal(await state.vacationRecent(A, 'h2', 'bob@example.com', 86400, at(3600)), false);
        assert.equal(await state.vacationRecent(A, 'h1', 'carol@example.com', 86400, at(3600)), false);
        assert.equal(await state.vacationRecent(B, 'h1', 'bob@example.com', 86400, at(3600)), false);
        assert.equal(await state.vacationRecent(A, 'h1', 'bob@example.com', 86400, at(86401)), false);
        // A shorter period asked later (RFC 6131 :seconds) is honoured.
        assert.equal(await state.vacationRecent(A, 'h1', 'bob@example.com', 60, at(3600)), false);
      }),
    );

    test(
      'duplicate: seen within the period; tracking again restarts it; sweep forgets ended entries',
      withStore(undefined, async ({ state }) => {
        await state.duplicateTrack(A, '', '<m1@example.com>', 600, t0);
        assert.equal(await state.duplicateSeen(A, '', '<m1@example.com>', 600, at(599)), true);
        assert.equal(await state.duplicateSeen(A, 'other', '<m1@example.com>', 600, at(1)), false);
        assert.equal(await state.duplicateSeen(A, '', '<m1@example.com>', 600, at(601)), false);
        await state.duplicateTrack(A, '', '<m1@example.com>', 600, at(500));
        assert.equal(await state.duplicateSeen(A, '', '<m1@example.com>', 600, at(1000)), true);
        await state.duplicateTrack(A, '', '<m2@example.com>', 10, t0);
        assert.equal(await state.sweep(at(20)), 1);
        assert.equal(await state.duplicateSeen(A, '', '<m1@example.com>', 600, at(1000)), true);
        assert.equal(await state.sweep(at(100_000)), 1);
        assert.equal(await state.duplicateSeen(A, '', '<m1@example.com>', 600, at(1000)), false);
      }),
    );
  });
}
