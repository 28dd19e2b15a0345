// backup and restore run as root write as [server] user (run-as.ts planCli), like every command:
// the backup and everything restored belong to the server's account, files 0600, directories
// 0700; restore --force run as root moves the old directories aside. Needs root (CI runs as
// root) and nobody:nogroup, which Debian has.

import assert from 'node:assert/strict';
import { chmod, chown, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { notOwnedBy, notPrivate, walk } from '../harness/files.ts';
import { runCli } from '../harness/process.ts';
import { TEST_CONFIG } from '../harness/server.ts';

const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;

describe('backup and restore as root', { skip: !asRoot && 'needs root' }, () => {
  let dir: string;
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('the backup and the restored data belong to [server] user, private', async () => {
    dir = await mkdtemp(join(tmpdir(), 'arcline-backup-owner-'));
    await chmod(dir, 0o711); // as /var/lib: the service account may traverse it
    const config = async (name: string) => {
      await mkdir(join(dir, name), { mode: 0o711 });
      const file = join(dir, name, 'arcline.toml');
      await writeFile(file, TEST_CONFIG(join(dir, name), '[server]\nuser = "nobody"\ngroup = "nogroup"\n'));
      return file;
    };
    const cli = async (file: string, ...args: string[]) => {
      const r = await runCli(['--config', file, ...args], { stdin: 'pw-secret-1\n' });
      assert.equal(r.code, 0, r.stderr);
      return r;
    };
    const old = await config('old');
    await cli(old, 'domain', 'add', 'example.test');
    await cli(old, 'user', 'add', 'alice@example.test', '--password-stdin');
    const backups = join(dir, 'backups');
    await mkdir(backups, { mode: 0o700 });
    await chown(backups, NOBODY, NOBODY); // install -d -o nobody, as docs/backup.md says
    await cli(old, 'backup', join(backups, 'b'));
    const taken = await walk(join(backups, 'b'));
    assert.ok(taken.some((e) => e.path.endsWith('/dkim/example.test/arcline.ed25519.pem')));
    assert.deepEqual(notOwnedBy(taken, NOBODY, NOBODY), []);
    assert.deepEqual(notPrivate(taken), []);

    const fresh = await config('new');
    await cli(fresh, 'restore', join(backups, 'b'));
    const restored = [...(await walk(join(dir, 'new', 'state'))), ...(await walk(join(dir, 'new', 'mail')))];
    assert.ok(restored.some((e) => e.path.endsWith('/mail/example.test/alice/.Sent/cur')));
    assert.deepEqual(notOwnedBy(restored, NOBODY, NOBODY), []);
    assert.deepEqual(notPrivate(restored), []);
    await cli(fresh, 'user', 'list'); // the restored directory opens as nobody

    const forced = await cli(fresh, 'restore', '--force', join(backups, 'b'));
    assert.match(forced.stdout, /^moved .*\/new\/state aside to .*\/new\/state\.before-restore-\d{8}T\d{6}$/m);
    assert.equal((await readdir(join(dir, 'new'))).filter((n) => n.includes('.before-restore-')).length, 2);
    const again = [...(await walk(join(dir, 'new', 'state'))), ...(await walk(join(dir, 'new', 'mail')))];
    assert.deepEqual(notOwnedBy(again, NOBODY, NOBODY), []);
  });
});
