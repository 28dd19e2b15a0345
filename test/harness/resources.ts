// What a process holds, read from /proc: resident memory and open file descriptors. The
// hostile-client tests read them for a spawned server before and after an attack, so a leak
// (memory kept after the attackers closed, sockets never closed) fails the test.

import { readdir, readFile } from 'node:fs/promises';

export interface Resources {
  /** Resident set size in bytes (VmRSS). */
  readonly rss: number;
  /** Open file descriptors. */
  readonly fds: number;
}

export async function resourcesOf(pid: number = process.pid): Promise<Resources> {
  const status = await readFile(`/proc/${pid}/status`, 'latin1');
  const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? Number.NaN);
  const fds = (await readdir(`/proc/${pid}/fd`)).length;
  return { rss: kb * 1024, fds };
}

/** Reads the process every 100 ms until it holds at most `maxFds` descriptors or `ms` have
 *  passed; returns the last reading either way, for the caller to assert on and report. */
export async function settledResources(pid: number, maxFds: number, ms = 15_000): Promise<Resources> {
  const deadline = Date.now() + ms;
  let r = await resourcesOf(pid);
  while (r.fds > maxFds && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    r = await resourcesOf(pid);
  }
  return r;
}
