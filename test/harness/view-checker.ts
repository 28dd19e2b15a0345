// What one IMAP client has been told about its selected mailbox, rebuilt from every untagged
// response it received, and the rules those responses must keep (the checks imaptest's state
// tracking makes): no sequence number above EXISTS, EXISTS never shrinking without EXPUNGE, a
// sequence number keeping its UID and UIDs ascending, MODSEQ per message never going back and
// one MODSEQ meaning one flag state, every keyword in FETCH announced by FLAGS first and never
// dropped from FLAGS again.
// Only the responses a test of flags and numbers asks for are parsed (no literals).

export class ViewChecker {
  readonly name: string;
  exists = 0;
  /** seq - 1 -> UID, null while this client has not been told the UID. */
  uids: (number | null)[] = [];
  /** Keywords announced by the last `* FLAGS`. */
  keywords = new Set<string>();
  /** UID -> the last MODSEQ and flags (without \Recent) reported for it. */
  readonly states = new Map<number, { modseq: number; flags: string | null }>();
  /** UIDs reported \Recent in this session. */
  readonly recent = new Set<number>();
  readonly errors: string[] = [];
  #last: string[] = [];

  constructor(name: string) {
    this.name = name;
  }

  /** Records a broken rule; false, so a check can `return this.#fail(...)`. */
  #fail(what: string, line: string): false {
    if (this.errors.length < 20) {
      this.errors.push(`${this.name}: ${what}: ${line}\n    after: ${this.#last.join(' | ')}`);
    }
    return false;
  }

  /** The SELECT response, then every untagged line the session receives, in order. */
  feed(line: string): void {
    this.#check(line);
    this.#last.push(line);
    if (this.#last.length > 8) this.#last.shift();
  }

  #check(line: string): boolean {
    let m = /^\* (\d+) (EXISTS|EXPUNGE|RECENT)$/.exec(line);
    if (m) {
      const n = Number(m[1]);
      if (m[2] === 'EXISTS') {
        if (n < this.exists) this.#fail(`EXISTS went from ${this.exists} down to ${n}`, line);
        while (this.uids.length < n) this.uids.push(null);
        this.exists = n;
      } else if (m[2] === 'EXPUNGE') {
        if (n < 1 || n > this.exists) return this.#fail(`EXPUNGE of ${n} with EXISTS ${this.exists}`, line);
        this.uids.splice(n - 1, 1);
        this.exists--;
      } else if (n > this.exists) this.#fail(`RECENT ${n} above EXISTS ${this.exists}`, line);
      return true;
    }
    m = /^\* FLAGS \(([^)]*)\)$/.exec(line);
    if (m) {
      const now = new Set(words(m[1] ?? '').filter((f) => !f.startsWith('\\')));
      for (const k of this.keywords) if (!now.has(k)) this.#fail(`FLAGS dropped keyword ${k}`, line);
      this.keywords = now;
      return true;
    }
    m = /^\* SEARCH((?: \d+)*)/.exec(line);
    if (m) {
      // Sequence numbers (the tests send SEARCH, not UID SEARCH).
      for (const n of words(m[1] ?? '').map(Number)) {
        if (n > this.exists) this.#fail(`SEARCH result ${n} above EXISTS ${this.exists}`, line);
      }
      return true;
    }
    m = /^\* (\d+) FETCH \((.*)\)$/.exec(line);
    return m ? this.#fetch(Number(m[1]), m[2] ?? '', line) : true;
  }

  #fetch(seq: number, items: string, line: string): boolean {
    if (seq < 1 || seq > this.exists) return this.#fail(`FETCH of ${seq} with EXISTS ${this.exists}`, line);
    const uidItem = /(?:^| )UID (\d+)/.exec(items);
    const flagsItem = /(?:^| )FLAGS \(([^)]*)\)/.exec(items);
    const modseqItem = /(?:^| )MODSEQ \((\d+)\)/.exec(items);
    let uid = this.uids[seq - 1] ?? null;
    if (uidItem) {
      const told = Number(uidItem[1]);
      if (uid !== null && uid !== told) return this.#fail(`sequence ${seq} was UID ${uid}, now ${told}`, line);
      uid = told;
      this.uids[seq - 1] = uid;
      this.#checkOrder(seq, uid, line);
    }
    let flags: string | null = null;
    if (flagsItem) {
      const list = words(flagsItem[1] ?? '');
      for (const k of list.filter((f) => !f.startsWith('\\'))) {
        if (!this.keywords.has(k)) this.#fail(`keyword ${k} not announced in FLAGS`, line);
      }
      if (uid !== null && list.includes('\\Recent')) this.recent.add(uid);
      flags = list
        .filter((f) => f !== '\\Recent')
        .sort()
        .join(' ');
    }
    if (!modseqItem || uid === null) return true;
    const modseq = Number(modseqItem[1]);
    const before = this.states.get(uid);
    if (before && modseq < before.modseq) {
      return this.#fail(`UID ${uid} MODSEQ went back from ${before.modseq} to ${modseq}`, line);
    }
    if (before && modseq === before.modseq && flags !== null && before.flags !== null && flags !== before.flags) {
      return this.#fail(`UID ${uid} MODSEQ ${modseq} with flags (${before.flags}) then (${flags})`, line);
    }
    this.states.set(uid, { modseq, flags: flags ?? (before?.modseq === modseq ? before.flags : null) });
    return true;
  }

  /** UIDs ascend with sequence numbers: the nearest known neighbours must bracket this one. */
  #checkOrder(seq: number, uid: number, line: string): void {
    for (let i = seq - 2; i >= 0; i--) {
      const u = this.uids[i];
      if (u == null) continue;
      if (u >= uid) this.#fail(`UID ${uid} at ${seq} not above UID ${u} at ${i + 1}`, line);
      break;
    }
    for (let i = seq; i < this.uids.length; i++) {
      const u = this.uids[i];
      if (u == null) continue;
      if (u <= uid) this.#fail(`UID ${uid} at ${seq} not below UID ${u} at ${i + 1}`, line);
      break;
    }
  }
}

function words(s: string): string[] {
  return s.split(' ').filter((w) => w !== '');
}
