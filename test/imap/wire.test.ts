// The IMAP wire layer: framing (literals, LITERAL+, bounds) and command parsing, with tables of
// tricky input, every-byte-boundary splits, and a property test that parsing never throws.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { Command } from '../../src/imap/wire/command.ts';
import { astr, seqSet } from '../../src/imap/wire/encode.ts';
import { CommandFramer, DEFAULT_FRAMER_LIMITS, type FramerEvent } from '../../src/imap/wire/framer.ts';
import { parseCommand } from '../../src/imap/wire/parse.ts';

function frames(input: string | Buffer, limits = DEFAULT_FRAMER_LIMITS, chunkAt: number[] = []): FramerEvent[] {
  const f = new CommandFramer(limits);
  const buf = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const events: FramerEvent[] = [];
  let prev = 0;
  for (const cut of [...chunkAt, buf.length]) {
    events.push(...f.push(buf.subarray(prev, cut)));
    prev = cut;
  }
  return events;
}

function parse(line: string): Command {
  const events = frames(line);
  const cmd = events.find((e) => e.type === 'command');
  assert.ok(cmd && cmd.type === 'command', `no command in ${JSON.stringify(events)}`);
  const r = parseCommand(cmd.frame);
  assert.ok(r.ok, `parse failed: ${!r.ok && r.text} for ${JSON.stringify(line)}`);
  return r.command;
}

function parseFails(line: string): { tag: string | null; text: string } {
  const events = frames(line);
  const cmd = events.find((e) => e.type === 'command');
  assert.ok(cmd && cmd.type === 'command');
  const r = parseCommand(cmd.frame);
  assert.ok(!r.ok, `parsed but should not: ${line}`);
  return r;
}

describe('framer', () => {
  test('plain commands, CRLF or bare LF, several per chunk', () => {
    const ev = frames('a1 NOOP\r\na2 CAPABILITY\na3 LOGOUT\r\n');
    assert.deepEqual(
      ev.map((e) => e.type),
      ['command', 'command', 'command'],
    );
  });

  test('a synchronizing literal asks for continuation; LITERAL+ does not', () => {
    const ev = frames('a LOGIN {5}\r\nalice {6}\r\nsecret\r\nb LOGIN {5+}\r\nalice "x"\r\n');
    assert.deepEqual(
      ev.map((e) => e.type),
      ['continue', 'continue', 'command', 'command'],
    );
    const [, , a, b] = ev;
    assert.ok(a?.type === 'command' && b?.type === 'command');
    assert.deepEqual(
      a.frame.literals.map((l) => l.toString()),
      ['alice', 'secret'],
    );
    assert.equal(parse('a LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n').name, 'LOGIN');
  });

  test('the same input split at every byte boundary gives the same commands', () => {
    const input =
      'a1 LOGIN {5}\r\nalice "pw \\"q\\""\r\na2 APPEND INBOX (\\Seen) {11+}\r\nhello\r\nbye!\r\na3 NOOP\r\n';
    const whole = JSON.stringify(frames(input));
    const len = Buffer.byteLength(input);
    for (let i = 0; i <= len; i++)
      assert.equal(JSON.stringify(frames(input, DEFAULT_FRAMER_LIMITS, [i])), whole, `split at ${i}`);
    const everyByte = Array.from({ length: len - 1 }, (_, k) => k + 1);
    assert.equal(JSON.stringify(frames(input, DEFAULT_FRAMER_LIMITS, everyByte)), whole, 'byte by byte');
  });

  test('bounds: long line fatal; oversized sync literal refused before reading; oversized LITERAL+ fatal', () => {
    const limits = { ...DEFAULT_FRAMER_LIMITS, maxLine: 100, maxLiteral: 10, maxAppend: 50, streamAbove: 20 };
    const long = frames(`a ${'x'.repeat(200)}\r\nb NOOP\r\n`, limits);
    assert.deepEqual(long, [{ type: 'error', tag: 'a', fatal: true, text: 'Command line too long' }]);
    const big = frames('a LOGIN {11}\r\nb NOOP\r\n', limits);
    assert.deepEqual(
      big.map((e) => e.type),
      ['error', 'command'],
    );
    assert.deepEqual(big[0], { type: 'error', tag: 'a', fatal: false, text: 'Literal too large' });
    const plus = frames('a LOGIN {11+}\r\nhello world\r\n', limits);
    assert.deepEqual(plus, [{ type: 'error', tag: 'a', fatal: true, text: 'Literal too large' }]);
    const append = frames('t APPEND INBOX {51}\r\n', limits);
    assert.deepEqual(append, [{ type: 'error', tag: 't', fatal: false, text: 'Message too large', code: 'TOOBIG' }]);
    const many = frames(`a X${' {0+}\r\n'.repeat(3)}\r\n`, { ...limits, maxLiterals: 2 });
    assert.equal(many.at(-1)?.type, 'error');
  });

  test('a large APPEND literal streams out in chunks and never sits whole in the frame', () => {
    const limits = { ...DEFAULT_FRAMER_LIMITS, streamAbove: 8 };
    const ev = frames('t APPEND INBOX {20}\r\n0123456789abcdefghij\r\n', limits, [25, 30]);
    const data = ev.flatMap((e) => (e.type === 'literal-data' ? [e] : []));
    assert.equal(Buffer.concat(data.map((e) => e.chunk)).toString(), '0123456789abcdefghij');
    assert.deepEqual(
      data.map((e) => e.end),
      [false, false, true],
    );
    const cmd = ev.find((e) => e.type === 'command');
    assert.ok(cmd?.type === 'command');
    assert.deepEqual(cmd.frame.literals, [{ streamed: true, index: 0, size: 20, binary: false }]);
    const parsed = parseCommand(cmd.frame);
    assert.ok(parsed.ok && parsed.command.name === 'APPEND');
  });

  test('a streamed literal8 (~{n}, RFC 3516) says so in its events and its marker; a collected one is bytes', () => {
    const limits = { ...DEFAULT_FRAMER_LIMITS, streamAbove: 8 };
    const bin = Buffer.from('\x00\n\r\x00bin\n\xff\r', 'latin1');
    const bytes = Buffer.concat([
      Buffer.from(`t APPEND INBOX ~{${bin.length}}\r\n`),
      bin,
      Buffer.from('\r\nu APPEND INBOX {9+}\r\nplain\ntx!\r\nv APPEND INBOX ~{3+}\r\n\x00\n\x00\r\n', 'latin1'),
    ]);
    // The literal-data events joined per literal, and the commands: the same for any split.
    const summary = (ev: FramerEvent[]) => {
      const out: unknown[] = [];
      for (const e of ev) {
        const last = out.at(-1) as { data?: string; binary?: boolean; ended?: boolean } | undefined;
        if (e.type === 'literal-data' && last?.data !== undefined && !last.ended) {
          assert.equal(e.binary, last.binary);
          last.data += e.chunk.toString('latin1');
          last.ended = e.end;
        } else if (e.type === 'literal-data') {
          out.push({ data: e.chunk.toString('latin1'), binary: e.binary, ended: e.end });
        } else out.push(e.type === 'command' ? e.frame.literals : e.type);
      }
      return out;
    };
    const whole = summary(frames(bytes, limits));
    assert.deepEqual(whole, [
      'continue',
      { data: bin.toString('latin1'), binary: true, ended: true },
      [{ streamed: true, index: 0, size: bin.length, binary: true }],
      { data: 'plain\ntx!', binary: false, ended: true },
      [{ streamed: true, index: 0, size: 9, binary: false }],
      [Buffer.from('\x00\n\x00', 'latin1')], // small: collected, whatever its kind
    ]);
    for (let i = 0; i <= bytes.length; i++)
      assert.deepEqual(summary(frames(bytes, limits, [i])), whole, `split at ${i}`);
    const everyByte = Array.from({ length: bytes.length - 1 }, (_, k) => k + 1);
    assert.deepEqual(summary(frames(bytes, limits, everyByte)), whole, 'byte by byte');
  });
});

describe('parser', () => {
  test('LOGIN with atoms, quoted strings with escapes, literals; AUTHENTICATE with SASL-IR', () => {
    assert.deepEqual(parse('a1 LOGIN alice "p a\\"s\\\\s"\r\n'), {
      tag: 'a1',
      name: 'LOGIN',
      user: 'alice',
      password: 'p a"s\\s',
    });
    assert.deepEqual(parse('a1 login {5}\r\nalice {3}\r\npw!\r\n'), {
      tag: 'a1',
      name: 'LOGIN',
      user: 'alice',
      password: 'pw!',
    });
    assert.deepEqual(parse('x AUTHENTICATE PLAIN AGFsaWNlAHB3\r\n'), {
      tag: 'x',
      name: 'AUTHENTICATE',
      mechanism: 'PLAIN',
      initial: 'AGFsaWNlAHB3',
    });
    assert.deepEqual(parse('x AUTHENTICATE plain =\r\n'), {
      tag: 'x',
      name: 'AUTHENTICATE',
      mechanism: 'PLAIN',
      initial: '=',
    });
    assert.equal(parse('x authenticate PLAIN\r\n').name, 'AUTHENTICATE');
  });

  test('mailbox commands, LIST-EXTENDED, STATUS, CREATE with USE', () => {
    assert.deepEqual(parse('a SELECT INBOX\r\n'), {
      tag: 'a',
      name: 'SELECT',
      mailbox: 'INBOX',
      condstore: false,
      qresync: null,
    });
    assert.deepEqual(parse('a EXAMINE "Sent Items" (CONDSTORE)\r\n'), {
      tag: 'a',
      name: 'EXAMINE',
      mailbox: 'Sent Items',
      condstore: true,
      qresync: null,
    });
    // RFC 7162 §3.2.5: QRESYNC (uidvalidity modseq [known-uids [(seqs uids)]])
    assert.deepEqual(parse('a SELECT INBOX (QRESYNC (67890007 2005071519404 41,43:211,214:541))\r\n'), {
      tag: 'a',
      name: 'SELECT',
      mailbox: 'INBOX',
      condstore: false,
      qresync: {
        uidValidity: 67890007,
        modseq: 2005071519404,
        knownUids: {
          ranges: [
            [41, 41],
            [43, 211],
            [214, 541],
          ],
        },
        seqMatch: null,
      },
    });
    const full = parse('a SELECT INBOX (QRESYNC (1 2 1:100 (1,5,9 10,50,90)))\r\n') as { qresync: unknown };
    assert.deepEqual(full.qresync, {
      uidValidity: 1,
      modseq: 2,
      knownUids: { ranges: [[1, 100]] },
      seqMatch: {
        seqs: {
          ranges: [
            [1, 1],
            [5, 5],
            [9, 9],
          ],
        },
        uids: {
          ranges: [
            [10, 10],
            [50, 50],
            [90, 90],
          ],
        },
      },
    });
    parseFails('a SELECT INBOX (QRESYNC (1))\r\n');
    parseFails('a SELECT INBOX (QRESYNC (0 5))\r\n');
    assert.deepEqual(
      parse('a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n') as { vanished: boolean; changedSince: number },
      {
        tag: 'a',
        name: 'FETCH',
        uid: true,
        set: { ranges: [[1, '*']] },
        items: [{ kind: 'FLAGS' }],
        changedSince: 12345,
        vanished: true,
      },
    );
    parseFails('a FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n');
    assert.deepEqual(parse('a RENAME old new\r\n'), { tag: 'a', name: 'RENAME', from: 'old', to: 'new' });
    assert.deepEqual(parse('a LIST "" *\r\n'), {
      tag: 'a',
      name: 'LIST',
      reference: '',
      patterns: ['*'],
      select: [],
      return: [],
      statusItems: [],
    });
    assert.deepEqual(parse('a LIST (SUBSCRIBED) "" (INBOX "Lists.%") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n'), {
      tag: 'a',
      name: 'LIST',
      reference: '',
      patterns: ['INBOX', 'Lists.%'],
      select: ['SUBSCRIBED'],
      return: ['CHILDREN', 'STATUS'],
      statusItems: ['MESSAGES', 'UNSEEN'],
    });
    assert.deepEqual(parse('a LSUB "" %\r\n'), { tag: 'a', name: 'LSUB', reference: '', pattern: '%' });
    assert.deepEqual(parse('a STATUS INBOX (MESSAGES UIDNEXT uidvalidity)\r\n'), {
      tag: 'a',
      name: 'STATUS',
      mailbox: 'INBOX',
      items: ['MESSAGES', 'UIDNEXT', 'UIDVALIDITY'],
    });
    assert.deepEqual(parse('a CREATE Archive (USE (\\Archive))\r\n'), {
      tag: 'a',
      name: 'CREATE',
      mailbox: 'Archive',
      specialUse: ['\\Archive'],
    });
    assert.deepEqual(parse('a CREATE &AMk-t&AOk-\r\n'), {
      tag: 'a',
      name: 'CREATE',
      mailbox: '&AMk-t&AOk-',
      specialUse: [],
    });
  });

  test('FETCH items, macros, sections, partials, CHANGEDSINCE; UID variants', () => {
    const f = parse(
      'a FETCH 1:*,5 (FLAGS BODY.PEEK[HEADER.FIELDS (From To "Subject")]<0.100> BODY[1.2.MIME] BODY[] RFC822.SIZE UID)\r\n',
    );
    assert.ok(f.name === 'FETCH');
    assert.deepEqual(f.set.ranges, [
      [1, '*'],
      [5, 5],
    ]);
    assert.deepEqual(f.items, [
      { kind: 'FLAGS' },
      {
        kind: 'BODY[]',
        part: [],
        text: { kind: 'HEADER.FIELDS', fields: ['From', 'To', 'Subject'], not: false },
        partial: { offset: 0, length: 100 },
        peek: true,
      },
      { kind: 'BODY[]', part: [1, 2], text: { kind: 'MIME' }, partial: null, peek: false },
      { kind: 'BODY[]', part: [], text: null, partial: null, peek: false },
      { kind: 'RFC822.SIZE' },
      { kind: 'UID' },
    ]);
    const all = parse('a FETCH 1 ALL\r\n');
    assert.ok(all.name === 'FETCH' && all.items.length === 4);
    const u = parse('a UID FETCH 100:200 (UID FLAGS) (CHANGEDSINCE 12345)\r\n');
    assert.ok(u.name === 'FETCH' && u.uid && u.changedSince === 12345);
    const b = parse(
      'a FETCH 2 (BODY BODYSTRUCTURE ENVELOPE RFC822 RFC822.HEADER RFC822.TEXT BODY[2.TEXT] BODY[HEADER.FIELDS.NOT (X-Spam)])\r\n',
    );
    assert.ok(b.name === 'FETCH' && b.items.length === 8);
    assert.equal(parse('a uid expunge 1:3\r\n').name, 'EXPUNGE');
    assert.deepEqual(parse('a UID MOVE 4:5 Trash\r\n'), {
      tag: 'a',
      name: 'MOVE',
      uid: true,
      set: { ranges: [[4, 5]] },
      mailbox: 'Trash',
    });
  });

  test('STORE forms', () => {
    assert.deepEqual(parse('a STORE 1:3 +FLAGS.SILENT (\\Deleted $Label1)\r\n'), {
      tag: 'a',
      name: 'STORE',
      uid: false,
      set: { ranges: [[1, 3]] },
      mode: 'add',
      silent: true,
      flags: ['\\Deleted', '$Label1'],
      unchangedSince: null,
    });
    const s = parse('a UID STORE 7 (UNCHANGEDSINCE 9) -FLAGS \\Seen \\Flagged\r\n');
    assert.ok(s.name === 'STORE' && s.mode === 'remove' && s.unchangedSince === 9 && s.flags.length === 2);
    assert.ok(parse('a STORE 1 FLAGS ()\r\n').name === 'STORE');
  });

  test('SEARCH: every key kind, nesting, OR/NOT, charset, sequence sets, ESEARCH RETURN', () => {
    const s = parse(
      'a UID SEARCH RETURN (MIN COUNT) CHARSET UTF-8 OR (FROM "bob" SUBJECT {5}\r\nhallo) NOT SEEN 1:5,*  \r\n'.replace(
        '  ',
        '',
      ),
    );
    assert.ok(s.name === 'SEARCH' && s.uid && s.charset === 'UTF-8');
    assert.deepEqual(s.return, ['MIN', 'COUNT']);
    assert.deepEqual(s.key, {
      kind: 'and',
      keys: [
        {
          kind: 'or',
          a: {
            kind: 'and',
            keys: [
              { kind: 'from', value: 'bob' },
              { kind: 'subject', value: 'hallo' },
            ],
          },
          b: { kind: 'not', key: { kind: 'seen' } },
        },
        {
          kind: 'seq',
          set: {
            ranges: [
              [1, 5],
              ['*', '*'],
            ],
          },
        },
      ],
    });
    const all = parse(
      'a SEARCH ALL ANSWERED BCC x BEFORE 1-Feb-2024 BODY y CC z DELETED DRAFT FLAGGED FROM a HEADER X-A b KEYWORD $k LARGER 10 NEW OLD ON 2-Mar-2024 RECENT SEEN SENTBEFORE 1-Jan-2020 SENTON 1-Jan-2020 SENTSINCE 1-Jan-2020 SINCE 1-Jan-2020 SMALLER 5 SUBJECT s TEXT t TO u UID 1:2 UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD $j UNSEEN MODSEQ 5\r\n',
    );
    assert.ok(all.name === 'SEARCH' && all.key.kind === 'and' && all.key.keys.length === 34);
  });

  test('APPEND with flags, date and literal; MULTIAPPEND; ENABLE, ID, IDLE, NAMESPACE', () => {
    const a = parse('a APPEND Drafts (\\Draft \\Seen) " 4-Jul-2024 10:00:00 +0200" {5+}\r\nHello\r\n');
    assert.ok(a.name === 'APPEND');
    assert.deepEqual(a.messages[0]?.flags, ['\\Draft', '\\Seen']);
    assert.equal(a.messages[0]?.date, ' 4-Jul-2024 10:00:00 +0200');
    assert.equal(a.messages[0]?.data.toString(), 'Hello');
    const m = parse('a APPEND INBOX {1+}\r\nA {1+}\r\nB\r\n');
    assert.ok(m.name === 'APPEND' && m.messages.length === 2);
    assert.deepEqual(parse('a ENABLE CONDSTORE utf8=accept\r\n'), {
      tag: 'a',
      name: 'ENABLE',
      capabilities: ['CONDSTORE', 'UTF8=ACCEPT'],
    });
    assert.deepEqual(parse('a ID ("name" "Thunderbird" "version" NIL)\r\n'), {
      tag: 'a',
      name: 'ID',
      params: { name: 'Thunderbird', version: null },
    });
    assert.deepEqual(parse('a ID NIL\r\n'), { tag: 'a', name: 'ID', params: null });
    assert.equal(parse('a idle\r\n').name, 'IDLE');
    assert.equal(parse('a NAMESPACE\r\n').name, 'NAMESPACE');
  });

  test('bad syntax is a parse error with the tag when it can be read', () => {
    assert.deepEqual(parseFails('a1 FROBNICATE\r\n'), { ok: false, tag: 'a1', text: 'Unknown command FROBNICATE' });
    for (const bad of [
      'a SELECT\r\n',
      'a LOGIN alice\r\n',
      'a FETCH 0 FLAGS\r\n',
      'a FETCH 1:x FLAGS\r\n',
      'a FETCH 1 (FLAGS\r\n',
      'a FETCH 1 BODY[1.0]\r\n',
      'a FETCH 1 BODY[MIME]\r\n',
      'a FETCH 1 BODY.PEEK\r\n',
      'a FETCH 1 BODY[]<5.0>\r\n',
      'a STORE 1 FLAGZ (\\Seen)\r\n',
      'a SEARCH BEFORE yesterday\r\n',
      'a SEARCH (((((((((((((((((((((ALL)))))))))))))))))))))\r\n',
      'a LOGIN "unterminated\r\n',
      'a NOOP extra\r\n',
      'a APPEND INBOX "bad date" {1+}\r\nx\r\n',
      'a+ NOOP\r\n',
    ]) {
      assert.equal(parseFails(bad).tag, bad.startsWith('a+') ? 'a+' : 'a', bad);
    }
    assert.equal(parseFails('\r\n').tag, null);
    assert.equal(parseFails('(bad NOOP\r\n').tag, null);
  });

  test('property: any input frames and parses to a command or an error, never a throw', () => {
    const alphabet = fc.constantFrom(
      ...'a1 FETCH UID SEARCH OR NOT LOGIN APPEND STORE BODY[ ] ( ) { } + " \\ * % < > . : , 0 1 9 \r \n \0 ~ HEADER.FIELDS'.split(
        ' ',
      ),
      ' ',
      '{3}\r\n',
      '{2+}\r\n',
    );
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 60 }), fc.nat(200), (parts, cut) => {
        const input = `${parts.join('')}\r\n`;
        const buf = Buffer.from(input);
        for (const ev of frames(buf, { ...DEFAULT_FRAMER_LIMITS, maxLine: 200, maxLiteral: 50 }, [
          Math.min(cut, buf.length),
        ])) {
          if (ev.type === 'command') {
            const r = parseCommand(ev.frame);
            assert.ok(typeof r.ok === 'boolean');
          }
        }
      }),
      { numRuns: 3000 },
    );
  });

  test('round trip: any set of numbers -> sequence-set text -> parsed back -> the same set', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 0xffffffff }), { minLength: 1, maxLength: 60 }), (nums) => {
        const r = parseCommand({ parts: [Buffer.from(`a UID FETCH ${seqSet(nums)} FLAGS`)], literals: [] });
        assert.ok(r.ok && r.command.name === 'FETCH');
        const back = new Set<number>();
        for (const [x, y] of r.command.set.ranges) {
          assert.ok(typeof x === 'number' && typeof y === 'number');
          for (let n = x; n <= y; n++) back.add(n);
        }
        assert.deepEqual(
          [...back].sort((a, b) => a - b),
          [...nums].sort((a, b) => a - b),
        );
      }),
      { numRuns: 2000 },
    );
  });

  test('round trip: any string encoded as an astring frames and parses back to itself', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40 }), (text) => {
        // Responses and commands share the string syntax (RFC 9051 §4.3): quoted or literal.
        const cmd = frames(`a LOGIN ${astr(text)} pw\r\n`).find((e) => e.type === 'command');
        assert.ok(cmd?.type === 'command');
        const r = parseCommand(cmd.frame);
        assert.ok(r.ok && r.command.name === 'LOGIN', JSON.stringify(text));
        assert.equal(r.command.user, text);
      }),
      { numRuns: 2000 },
    );
  });
});
