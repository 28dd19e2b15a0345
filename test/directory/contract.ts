// The Directory contract: every backend (SQLite now, PostgreSQL later) runs this suite.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseAddress } from '../../src/core/address.ts';
import { type ErrorCode, isArclineError } from '../../src/core/errors.ts';
import type { AccountId } from '../../src/core/ids.ts';
import { verifyPasswordHash } from '../../src/directory/password.ts';
import type { Directory, DirectoryAdmin } from '../../src/directory/types.ts';

/** What the login path (auth/authenticator.ts) asks of a directory: the canonical account of a
 *  name, then its stored hash, verified. The account, or null. */
async function checkPassword(dir: Directory, name: string, password: string): Promise<AccountId | null> {
  const account = dir.loginName(name);
  const stored = account ? await dir.passwordHash(account) : null;
  return account && stored !== null && (await verifyPasswordHash(stored, password)) ? account : null;
}

type Dir = Directory & DirectoryAdmin;

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, pattern?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isArclineError(e, code), `expected ${code}, got ${String(e)}`);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

async function resolve(d: Dir, addr: string) {
  const a = parseAddress(addr);
  assert.ok(a, addr);
  return d.resolveRecipient(a);
}

async function accountsOf(d: Dir, addr: string): Promise<string[]> {
  const r = await resolve(d, addr);
  assert.equal(r.kind, 'deliver', `${addr}: ${r.kind}`);
  return r.kind === 'deliver' ? [...r.accounts].sort() : [];
}

/** `caughtUp(d)`, when given, resolves once `d` sees what other handles committed (PostgreSQL:
 *  its in-memory copy follows NOTIFY, directory/pg-snapshot.ts); without it, at once (SQLite). */
export function runDirectoryContract(
  name: string,
  open: () => Promise<{ dir: Dir; reopen: () => Promise<Dir>; caughtUp?: (d: Dir) => Promise<void> }>,
) {
  describe(`${name}: directory contract`, () => {
    test('domains: IDN in punycode, case-insensitive, duplicates and bad names refused', async () => {
      const { dir } = await open();
      assert.equal((await dir.addDomain('Bücher.Example')).name, 'xn--bcher-kva.example');
      await rejectsWith(dir.addDomain('xn--bcher-kva.example'), 'EXISTS');
      await rejectsWith(dir.addDomain('BÜCHER.example.'), 'EXISTS');
      for (const bad of ['', 'nodot', 'a..b', '-a.example', 'a b.example', '1.2.3.4'])
        await rejectsWith(dir.addDomain(bad), 'INVALID');
      assert.ok(await dir.isLocalDomain('xn--bcher-kva.example' as never));
      assert.deepEqual(
        (await dir.listDomains()).map((d) => d.name),
        ['xn--bcher-kva.example'],
      );
      await dir.deleteDomain('bücher.example');
      assert.deepEqual(await dir.listDomains(), []);
      await rejectsWith(dir.deleteDomain('bücher.example'), 'NOT_FOUND');
      dir.close();
    });

    test('users: validation changes nothing on error; paths tricks and duplicates refused', async () => {
      const { dir } = await open();
      await dir.addDomain('example.test');
      const u = await dir.addUser('Alice@Example.TEST', { password: 'pw-1', quotaBytes: 1024 });
      assert.equal(u.accountId, 'alice@example.test');
      assert.equal(u.quotaBytes, 1024);
      await rejectsWith(dir.addUser('alice@example.test', { password: 'x' }), 'EXISTS');
      await rejectsWith(dir.addUser('ALICE@example.test', { password: 'x' }), 'EXISTS');
      await rejectsWith(dir.addUser('bob@nowhere.test', { password: 'x' }), 'NOT_FOUND', /no domain nowhere\.test/);
      await rejectsWith(dir.addUser('bob', { password: 'x' }), 'INVALID');
      for (const bad of [
        '../x@example.test',
        'a/b@example.test',
        '..@example.test',
        '.x@example.test',
        'a+b@example.test',
        'a\0b@example.test',
        '"a b"@example.test',
      ]) {
        await rejectsWith(dir.addUser(bad, { password: 'x' }), 'INVALID');
      }
      await rejectsWith(dir.addUser('bob@example.test', { password: '' }), 'INVALID');
      await rejectsWith(dir.addUserWithHash('bob@example.test', { passwordHash: '{PLAIN}x' }), 'INVALID');
      await rejectsWith(dir.setQuota('alice@example.test', -5), 'INVALID');
      await rejectsWith(dir.deleteUser('nobody@example.test'), 'NOT_FOUND');
      assert.deepEqual(
        (await dir.listUsers()).map((x) => x.address),
        ['alice@example.test'],
      );
      await rejectsWith(dir.deleteDomain('example.test'), 'CONFLICT', /1 user/);
      await dir.setQuota('alice@example.test', null);
      assert.equal((await dir.getUser('alice@example.test'))?.quotaBytes, null);
      await dir.deleteUser('alice@example.test');
      assert.equal(await dir.getUser('alice@example.test'), null);
      dir.close();
    });

    test('passwords: right, wrong, unknown user; changed password; imported hashes', async () => {
      const { dir } = await open();
      await dir.addDomain('example.test');
      await dir.addUser('alice@example.test', { password: 'first-pw' });
      assert.equal(await checkPassword(dir, 'Alice@example.test', 'first-pw'), 'alice@example.test');
      assert.equal(await checkPassword(dir, 'alice@example.test', 'wrong'), null);
      assert.equal(await checkPassword(dir, 'nobody@example.test', 'first-pw'), null);
      assert.equal(await checkPassword(dir, 'not an address', 'first-pw'), null);
      await dir.setPassword('alice@example.test', 'second-pw');
      assert.equal(await checkPassword(dir, 'alice@example.test', 'first-pw'), null);
      assert.ok(await checkPassword(dir, 'alice@example.test', 'second-pw'));
      await dir.addUserWithHash('dove@example.test', {
        passwordHash:
          '{SHA512-CRYPT}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1',
      });
      assert.ok(await checkPassword(dir, 'dove@example.test', 'Hello world!'));
      dir.close();
    });

    test('disabled users: no login, mail still resolves; enabled again: login', async () => {
      const { dir } = await open();
      await dir.addDomain('example.test');
      await dir.addUser('alice@example.test', { password: 'pw' });
      await dir.setEnabled('Alice@example.test', false);
      assert.equal((await dir.getUser('alice@example.test'))?.enabled, false);
      assert.equal((await dir.listUsers('example.test'))[0]?.enabled, false);
      assert.equal(await checkPassword(dir, 'alice@example.test', 'pw'), null);
      assert.deepEqual(await accountsOf(dir, 'alice@example.test'), ['alice@example.test']);
      await dir.setEnabled('alice@example.test', true);
      assert.equal(await checkPassword(dir, 'alice@example.test', 'pw'), 'alice@example.test');
      await rejectsWith(dir.setEnabled('nobody@example.test', false), 'NOT_FOUND');
      dir.close();
    });

    test('loginName: one canonical form for every spelling of an account; passwordHash reads the row now', async () => {
      const { dir } = await open();
      await dir.addDomain('example.test');
      await dir.addUser('t@example.test', { password: 'pw' });
      for (const s of [
        't@example.test',
        'T@Example.TEST',
        ' t@example.test ',
        't@example.test.',
        '"t"@example.test',
        '"\\t"@example.test',
      ]) {
        assert.equal(dir.loginName(s), 't@example.test', s);
      }
      for (const s of [
        't',
        '',
        't@',
        '@example.test',
        't@example..test',
        `${'x'.repeat(400)}@example.test`,
        't\u0000@example.test',
      ]) {
        assert.equal(dir.loginName(s), null, s);
      }
      const before = await dir.passwordHash('t@example.test' as AccountId);
      assert.ok(before);
      await dir.setPassword('t@example.test', 'pw2');
      const after = await dir.passwordHash('t@example.test' as AccountId);
      assert.ok(after && after !== before);
      await dir.deleteUser('t@example.test');
      assert.equal(await dir.passwordHash('t@example.test' as AccountId), null);
      dir.close();
    });

    test('resolution: unknown domain/user, plus-addressing, aliases, self-reference, loops, catch-all', async () => {
      const { dir } = await open();
      await dir.addDomain('example.test');
      await dir.addDomain('other.test');
      for (const u of ['alice', 'bob', 'carol']) await dir.addUser(`${u}@example.test`, { password: 'pw' });
      assert.equal((await resolve(dir, 'x@elsewhere.test')).kind, 'unknown-domain');
      assert.equal((await resolve(dir, 'nobody@example.test')).kind, 'unknown-user');
      assert.deepEqual(await accountsOf(dir, 'ALICE+news@Example.test'), ['alice@example.test']);
      // aliases: several destinations, nested, remote, self-reference keeps a copy
      await dir.addAlias('team@example.test', ['alice@example.test', 'sub@example.test']);
      await dir.addAlias('sub@example.test', ['bob@example.test', 'friend@remote.test']);
      const team = await resolve(dir, 'team+x@example.test');
      assert.equal(team.kind, 'deliver');
      if (team.kind === 'deliver') {
        assert.deepEqual([...team.accounts].sort(), ['alice@example.test', 'bob@example.test']);
        assert.deepEqual(
          team.remote.map((a) => `${a.local}@${a.domain}`),
          ['friend@remote.test'],
        );
      }
      await dir.addAlias('carol@example.test', ['carol@example.test', 'bob@example.test']);
      assert.deepEqual(await accountsOf(dir, 'carol@example.test'), ['bob@example.test', 'carol@example.test']);
      await dir.addAlias('alice@example.test', ['bob@example.test']); // alias wins over the user
      assert.deepEqual(await accountsOf(dir, 'alice@example.test'), ['bob@example.test']);
      await dir.deleteAlias('alice@example.test');
      // loops end, and deliver to what real mailboxes they reach
      await dir.addAlias('loop1@example.test', ['loop2@example.test']);
      await dir.addAlias('loop2@example.test', ['loop1@example.test', 'alice@example.test']);
      assert.deepEqual(await accountsOf(dir, 'loop1@example.test'), ['alice@example.test']);
      await dir.addAlias('solo1@example.test', ['solo2@example.test']);
      await dir.addAlias('solo2@example.test', ['solo1@example.test']);
      assert.equal((await resolve(dir, 'solo1@example.test')).kind, 'unknown-user');
      // duplicates collapse
      await dir.addAlias('twice@example.test', ['alice@example.test', 'ALICE@example.test', 'alice+x@example.test']);
      assert.deepEqual(await accountsOf(dir, 'twice@example.test'), ['alice@example.test']);
      // catch-all: after users and aliases; removable; a catch-all pointing to itself ends
      await dir.setCatchAll('example.test', 'carol@example.test');
      assert.deepEqual(await accountsOf(dir, 'random@example.test'), ['bob@example.test', 'carol@example.test']);
      assert.deepEqual(await accountsOf(dir, 'alice@example.test'), ['alice@example.test']);
      await dir.setCatchAll('example.test', 'ghost@example.test');
      assert.equal((await resolve(dir, 'random@example.test')).kind, 'unknown-user');
      await dir.setCatchAll('example.test', null);
      assert.equal((await resolve(dir, 'random@example.test')).kind, 'unknown-user');
      await rejectsWith(dir.setCatchAll('nowhere.test', 'a@example.test'), 'NOT_FOUND');
      await rejectsWith(dir.setCatchAll('example.test', 'not an address'), 'INVALID');
      // catch-all of another domain reaches a remote address
      await dir.setCatchAll('other.test', 'someone@remote.test');
      const o = await resolve(dir, 'x@other.test');
      assert.ok(o.kind === 'deliver' && o.accounts.length === 0 && o.remote.length === 1);
      dir.close();
    });

    test('alias management: bad input changes nothing', async () => {
      const { dir } = await open();
      await dir.addDomain('example.test');
      await rejectsWith(dir.addAlias('a@remote.test', ['b@example.test']), 'NOT_FOUND');
      await rejectsWith(dir.addAlias('a/b@example.test', ['b@example.test']), 'INVALID');
      await rejectsWith(dir.addAlias('a@example.test', []), 'INVALID');
      await rejectsWith(dir.addAlias('a@example.test', ['ok@example.test', 'not an address']), 'INVALID');
      assert.deepEqual(await dir.listAliases(), []);
      await dir.addAlias('a@example.test', ['x@remote.test', 'y@remote.test']);
      await rejectsWith(dir.deleteAlias('a@example.test', ['z@remote.test']), 'NOT_FOUND');
      await rejectsWith(dir.deleteAlias('b@example.test'), 'NOT_FOUND');
      await dir.deleteAlias('a@example.test', ['x@remote.test']);
      assert.deepEqual(await dir.listAliases('example.test'), [
        { source: 'a@example.test', destinations: ['y@remote.test'] },
      ]);
      dir.close();
    });

    test('the first user of a domain gets postmaster@ and abuse@ aliases unless those addresses exist', async () => {
      const { dir } = await open();
      await dir.addDomain('example.test');
      await dir.addDomain('other.test');
      await dir.addUser('first@example.test', { password: 'pw' });
      await dir.addUser('second@example.test', { password: 'pw' });
      assert.deepEqual(await dir.listAliases('example.test'), [
        { source: 'abuse@example.test', destinations: ['first@example.test'] },
        { source: 'postmaster@example.test', destinations: ['first@example.test'] },
      ]);
      assert.deepEqual(await accountsOf(dir, 'Postmaster@example.test'), ['first@example.test']);
      // A user named postmaster comes first: no alias hides it.
      await dir.addUser('postmaster@other.test', { password: 'pw' });
      assert.deepEqual(await dir.listAliases('other.test'), [
        { source: 'abuse@other.test', destinations: ['postmaster@other.test'] },
      ]);
      assert.equal(await dir.postmasterDomain(['nowhere.test', 'other.test']), 'other.test');
      assert.equal(await dir.postmasterDomain(['nowhere.test']), 'example.test');
      dir.close();
    });

    test('maySendAs: own address, sub-address, explicit alias; never through a catch-all', async () => {
      const { dir } = await open();
      await dir.addDomain('example.test');
      await dir.addUser('alice@example.test', { password: 'pw' });
      await dir.addUser('bob@example.test', { password: 'pw' });
      await dir.addAlias('sales@example.test', ['alice@example.test']);
      await dir.setCatchAll('example.test', 'alice@example.test');
      const alice = { accountId: 'alice@example.test' as AccountId, address: parseAddress('alice@example.test')! };
      assert.ok(await dir.maySendAs(alice, parseAddress('alice@example.test')!));
      assert.ok(await dir.maySendAs(alice, parseAddress('Alice+x@example.test')!));
      assert.ok(await dir.maySendAs(alice, parseAddress('sales@example.test')!));
      assert.equal(await dir.maySendAs(alice, parseAddress('bob@example.test')!), false);
      assert.equal(await dir.maySendAs(alice, parseAddress('anything@example.test')!), false);
      dir.close();
    });

    test('sender allowlist: addresses and domains (with subdomains), per user, gone with the user', async () => {
      const { dir } = await open();
      await dir.addDomain('example.test');
      await dir.addUser('alice@example.test', { password: 'pw' });
      await dir.addUser('bob@example.test', { password: 'pw' });
      const alice = 'alice@example.test' as AccountId;
      assert.equal(await dir.addAllowedSender('alice@example.test', 'News@Shop.TEST'), 'news@shop.test');
      assert.equal(await dir.addAllowedSender('alice@example.test', '@bank.test'), 'bank.test');
      assert.deepEqual(await dir.listAllowedSenders('alice@example.test'), ['bank.test', 'news@shop.test']);
      assert.ok(await dir.allowsSender(alice, ['news@shop.test']));
      assert.equal(await dir.allowsSender(alice, ['other@shop.test']), false);
      assert.ok(await dir.allowsSender(alice, ['', 'x@mail.bank.test']), 'a subdomain of an allowed domain');
      assert.equal(await dir.allowsSender(alice, ['x@notbank.test']), false);
      assert.equal(await dir.allowsSender('bob@example.test' as AccountId, ['news@shop.test']), false, 'per user');
      await assert.rejects(dir.addAllowedSender('nobody@example.test', 'x.test'), (e) =>
        isArclineError(e, 'NOT_FOUND'),
      );
      await assert.rejects(dir.addAllowedSender('alice@example.test', 'not a domain!'), (e) =>
        isArclineError(e, 'INVALID'),
      );
      await dir.deleteAllowedSender('alice@example.test', 'bank.test');
      await assert.rejects(dir.deleteAllowedSender('alice@example.test', 'bank.test'), (e) =>
        isArclineError(e, 'NOT_FOUND'),
      );
      await dir.deleteUser('alice@example.test');
      await dir.addUser('alice@example.test', { password: 'pw' });
      assert.deepEqual(
        await dir.listAllowedSenders('alice@example.test'),
        [],
        'a new user with the old name starts empty',
      );
      dir.close();
    });

    test('a second connection sees changes at once (the CLI while the server runs)', async () => {
      const { dir, reopen, caughtUp } = await open();
      const other = await reopen();
      await dir.addDomain('example.test');
      await caughtUp?.(other);
      assert.ok(await other.isLocalDomain('example.test' as never));
      await other.addUser('late@example.test', { password: 'pw' });
      await caughtUp?.(dir);
      assert.deepEqual(await accountsOf(dir, 'late@example.test'), ['late@example.test']);
      other.close();
      dir.close();
    });
  });
}
