// A private Dovecot (Debian's dovecot-imapd) for tests: its own config, base_dir, state and mail
// in a temporary directory, plain IMAP on an ephemeral loopback port, users from a passwd-file,
// run in the foreground (`dovecot -F`) as a child of the test and stopped by its PID.
// Running as root (CI): Dovecot's own processes use its default_internal_user (`dovecot`) and the
// mail belongs to `nobody` (Dovecot refuses mail access as UID 0), so the directory is made
// traversable and the mail root is given to nobody.

import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface DovecotPeer {
  readonly dir: string;
  readonly port: number;
  /** The Maildir of a user (`{mail}/{domain}/{local}`, Maildir++ with "." as separator). */
  maildir(address: string): string;
  stop(): Promise<void>;
}

const NOBODY = 65534;

/** A free loopback port (bound, read and released: the window in which another process could
 *  take it is as short as it can be without Dovecot telling its port). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/** A Dovecot 2.3 config for a private instance in `dir` (base_dir `dir`/run, log `dir`/dovecot.log,
 *  users from `dir`/users, plain IMAP on 127.0.0.1:`port`, mail owned by nobody): the settings
 *  tests and benches share (test/import, bench/login.ts); `extra` adds to them. */
export function dovecotConfig(o: {
  dir: string;
  stateDir: string;
  name: string;
  port: number;
  mailLocation: string;
  home: string;
  extra?: string;
}): string {
  return `protocols = imap
listen = 127.0.0.1
base_dir = ${o.dir}/run
state_dir = ${o.stateDir}
instance_name = ${o.name}
log_path = ${o.dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = username_format=%u ${o.dir}/users
}
userdb {
  driver = static
  args = uid=${NOBODY} gid=${NOBODY} home=${o.home}
}
first_valid_uid = 1
first_valid_gid = 1
mail_location = ${o.mailLocation}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${o.port}
  }
  inet_listener imaps {
    port = 0
  }
}
${o.extra ?? ''}`;
}

/** `passwd` is the passwd-file text (`user@domain:{SCHEME}hash::::::` lines); `layout`: Dovecot's
 *  Maildir++ (the default) or LAYOUT=fs folders. */
export async function startDovecot(passwd: string, opts: { layout?: 'maildir++' | 'fs' } = {}): Promise<DovecotPeer> {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-dovecot-'));
  await chmod(dir, 0o755);
  const mail = join(dir, 'mail');
  for (const d of [join(dir, 'run'), join(dir, 'state'), mail]) await mkdir(d, { recursive: true, mode: 0o755 });
  if (process.getuid?.() === 0) await chown(mail, NOBODY, NOBODY);
  await writeFile(join(dir, 'users'), passwd, { mode: 0o644 });
  const port = await freePort();
  const conf = join(dir, 'dovecot.conf');
  await writeFile(
    conf,
    dovecotConfig({
      dir,
      stateDir: join(dir, 'state'),
      name: `arcline-test-${process.pid}-${port}`,
      port,
      mailLocation: `maildir:${mail}/%d/%n${opts.layout === 'fs' ? ':LAYOUT=fs' : ''}`,
      home: `${mail}/%d/%n`,
      extra: `mail_privileged_group =
namespace inbox {
  inbox = yes
  separator = .
}
service pop3-login {
  inet_listener pop3 {
    port = 0
  }
}
service submission-login {
  inet_listener submission {
    port = 0
  }
}
`,
    }),
  );
  const child: ChildProcess = spawn('/usr/sbin/dovecot', ['-c', conf, '-F'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d) => {
    output += d;
  });
  child.stderr?.on('data', (d) => {
    output += d;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let running = true;
  exited.then(() => {
    running = false;
  });
  // Ready when the login service accepts connections (about 100 ms); a Dovecot that exits
  // (a config error) ends the wait at once with its output.
  const deadline = Date.now() + 10_000;
  while (!(await canConnect(port))) {
    if (!running || Date.now() > deadline) {
      const log = await readFile(join(dir, 'dovecot.log'), 'utf8').catch(() => '');
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
      throw new Error(`dovecot did not start: ${output}${log}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    dir,
    port,
    maildir: (address) => {
      const [local, domain] = address.split('@');
      return join(mail, domain as string, local as string);
    },
    async stop() {
      if (running) {
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
