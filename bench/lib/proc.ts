// Resource figures read from Linux's /proc (proc(5)), for the benches: the memory and CPU time of
// a process together with everything it started (worker threads are inside the process; child
// processes are its descendants), and of a Postfix instance (its master and the daemons under
// /usr/lib/postfix the master runs).

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Clock ticks per second of utime/stime in /proc/<pid>/stat (USER_HZ: 100 on Linux). */
const CLK_TCK = 100;

interface Stat {
  ppid: number;
  /** utime + stime + cutime + cstime, in ticks: the process's own time and that of its
   *  children that have exited and been waited for. */
  ticks: number;
}

/** Fields of /proc/<pid>/stat after the command name, which may itself contain ') '. */
function readStat(pid: number): Stat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null; // gone meanwhile
  }
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
  const n = (field: number) => Number(f[field - 3]);
  return { ppid: n(4), ticks: n(14) + n(15) + n(16) + n(17) };
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((d) => d.charCodeAt(0) >= 48 && d.charCodeAt(0) <= 57)
    .map(Number);
}

/** The process and all its live descendants. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const pid of allPids()) {
    const s = readStat(pid);
    if (!s) continue;
    const list = children.get(s.ppid) ?? [];
    list.push(pid);
    children.set(s.ppid, list);
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    const pid = todo.pop() as number;
    out.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** Sum of VmRSS over the pids, in kB (a pid that has gone counts 0). */
export function rssKb(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      total += m ? Number(m[1]) : 0;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

/** CPU milliseconds used so far by the pids, each with its reaped children. The difference of two
 *  readings over the same set, taken as a whole (a daemon that exits in between moves its time
 *  into its parent's cutime/cstime), is the CPU time used in between. */
export function cpuMs(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) ticks += readStat(pid)?.ticks ?? 0;
  return (ticks * 1000) / CLK_TCK;
}

/** CPU milliseconds of children this process has waited for (cutime + cstime of /proc/self):
 *  read before and after a child runs to get that child's CPU time. */
export function reapedChildrenCpuMs(): number {
  const f = readFileSync('/proc/self/stat', 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[16 - 3]) + Number(rest[17 - 3])) * 1000) / CLK_TCK;
}

/** The Postfix master whose pid file is under `queueDir` (e.g. /tmp/peer-smtp/spool), or null. */
export function postfixMaster(queueDir: string): number | null {
  try {
    const pid = Number(readFileSync(`${queueDir}/pid/master.pid`, 'utf8').trim());
    return readStat(pid) ? pid : null;
  } catch {
    return null;
  }
}

/** The Postfix master and its descendants that run a program under /usr/lib/postfix (smtpd,
 *  cleanup, qmgr, virtual, trivial-rewrite ...). */
export function postfixProcesses(master: number): number[] {
  return processTree(master).filter((pid) => {
    if (pid === master) return true;
    try {
      return readlinkSync(`/proc/${pid}/exe`).startsWith('/usr/lib/postfix/');
    } catch {
      return false;
    }
  });
}
