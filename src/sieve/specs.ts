// The commands and tests the validator knows (RFC 5228 and the extensions of issue #16), as
// data: the capability each needs, its tagged arguments, positional shapes, tests and block.

/** Capabilities accepted by `require` (RFC 5228 §3.2). */
export const CAPABILITIES: ReadonlySet<string> = new Set([
  'fileinto', // RFC 5228 §4.1
  'reject', // RFC 5429 §2.2
  'ereject', // RFC 5429 §2.1
  'envelope', // RFC 5228 §5.4
  'encoded-character', // RFC 5228 §2.4.2.4
  'imap4flags', // RFC 5232
  'copy', // RFC 3894
  'body', // RFC 5173
  'variables', // RFC 5229
  'vacation', // RFC 5230
  'vacation-seconds', // RFC 6131
  'relational', // RFC 5231
  'subaddress', // RFC 5233
  'date', // RFC 5260 §4
  'index', // RFC 5260 §6
  'duplicate', // RFC 7352
  'include', // RFC 6609
  'mailbox', // RFC 5490 §3
  'comparator-i;octet', // RFC 4790 §9.3
  'comparator-i;ascii-casemap', // RFC 4790 §9.2
  'comparator-i;ascii-numeric', // RFC 4790 §9.1
]);

export type Shape = 'string' | 'stringlist' | 'number';

export interface TagSpec {
  /** Capability the tag needs. */
  readonly ext?: string;
  /** The argument that follows the tag, if any. */
  readonly arg?: Shape;
  /** Tags of one group exclude each other. */
  readonly group?: string;
}

export interface Spec {
  readonly ext?: string;
  readonly tags?: Readonly<Record<string, TagSpec>>;
  /** Comparator and match type (RFC 5228 §2.7, RFC 5231). */
  readonly match?: boolean;
  /** Address part (RFC 5228 §2.7.4, RFC 5233). */
  readonly addressPart?: boolean;
  /** :index and :last (RFC 5260 §6). */
  readonly index?: boolean;
  /** Allowed sequences of positional arguments. */
  readonly positional: readonly (readonly Shape[])[];
  readonly tests?: 'one' | 'list';
  readonly block?: boolean;
  /** A tag group one member of which must be given. */
  readonly requiredGroup?: string;
}

const SL: Shape = 'stringlist';
const S: Shape = 'string';
const FLAGS: TagSpec = { ext: 'imap4flags', arg: SL };

export const COMMANDS: Readonly<Record<string, Spec>> = {
  require: { positional: [[SL]] }, // RFC 5228 §3.2
  if: { positional: [[]], tests: 'one', block: true }, // RFC 5228 §3.1
  elsif: { positional: [[]], tests: 'one', block: true },
  else: { positional: [[]], block: true },
  stop: { positional: [[]] }, // RFC 5228 §3.3
  keep: { positional: [[]], tags: { flags: FLAGS } }, // RFC 5228 §4.3, RFC 5232 §5
  discard: { positional: [[]] }, // RFC 5228 §4.4
  fileinto: {
    ext: 'fileinto', // RFC 5228 §4.1
    positional: [[S]],
    tags: { copy: { ext: 'copy' }, create: { ext: 'mailbox' }, flags: FLAGS },
  },
  redirect: { positional: [[S]], tags: { copy: { ext: 'copy' } } }, // RFC 5228 §4.2, RFC 3894
  reject: { ext: 'reject', positional: [[S]] }, // RFC 5429 §2.2
  ereject: { ext: 'ereject', positional: [[S]] }, // RFC 5429 §2.1
  // RFC 5232 §3: [<variablename: string>] <list-of-flags: string-list>
  setflag: { ext: 'imap4flags', positional: [[SL], [S, SL]] },
  addflag: { ext: 'imap4flags', positional: [[SL], [S, SL]] },
  removeflag: { ext: 'imap4flags', positional: [[SL], [S, SL]] },
  set: {
    ext: 'variables', // RFC 5229 §4
    positional: [[S, S]],
    tags: {
      lower: { group: 'case' },
      upper: { group: 'case' },
      lowerfirst: { group: 'first' },
      upperfirst: { group: 'first' },
      quotewildcard: {},
      length: {},
    },
  },
  vacation: {
    ext: 'vacation', // RFC 5230 §4, RFC 6131 §2
    positional: [[S]],
    tags: {
      days: { arg: 'number', group: 'period' },
      seconds: { ext: 'vacation-seconds', arg: 'number', group: 'period' },
      subject: { arg: S },
      from: { arg: S },
      addresses: { arg: SL },
      mime: {},
      handle: { arg: S },
    },
  },
  include: {
    ext: 'include', // RFC 6609 §3.2
    positional: [[S]],
    tags: { personal: { group: 'location' }, global: { group: 'location' }, once: {}, optional: {} },
  },
  return: { ext: 'include', positional: [[]] }, // RFC 6609 §3.3
  global: { ext: 'include', positional: [[SL]] }, // RFC 6609 §3.4
};

export const TESTS: Readonly<Record<string, Spec>> = {
  address: { positional: [[SL, SL]], match: true, addressPart: true, index: true }, // RFC 5228 §5.1
  envelope: { ext: 'envelope', positional: [[SL, SL]], match: true, addressPart: true }, // §5.4
  header: { positional: [[SL, SL]], match: true, index: true }, // §5.7
  exists: { positional: [[SL]] }, // §5.5
  size: {
    positional: [['number']],
    tags: { over: { group: 'size' }, under: { group: 'size' } },
    requiredGroup: 'size',
  }, // §5.9
  allof: { positional: [[]], tests: 'list' }, // §5.2
  anyof: { positional: [[]], tests: 'list' }, // §5.3
  not: { positional: [[]], tests: 'one' }, // §5.8
  true: { positional: [[]] }, // §5.10
  false: { positional: [[]] }, // §5.6
  body: {
    ext: 'body', // RFC 5173 §5
    positional: [[SL]],
    match: true,
    tags: { raw: { group: 'transform' }, content: { arg: SL, group: 'transform' }, text: { group: 'transform' } },
  },
  string: { ext: 'variables', positional: [[SL, SL]], match: true }, // RFC 5229 §5
  hasflag: { ext: 'imap4flags', positional: [[SL], [SL, SL]], match: true }, // RFC 5232 §4
  date: {
    ext: 'date', // RFC 5260 §4.2
    positional: [[S, S, SL]],
    match: true,
    index: true,
    tags: { zone: { arg: S, group: 'zone' }, originalzone: { group: 'zone' } },
  },
  currentdate: { ext: 'date', positional: [[S, SL]], match: true, tags: { zone: { arg: S } } }, // RFC 5260 §5
  duplicate: {
    ext: 'duplicate', // RFC 7352 §3
    positional: [[]],
    tags: {
      handle: { arg: S },
      header: { arg: S, group: 'id' },
      uniqueid: { arg: S, group: 'id' },
      seconds: { arg: 'number' },
      last: {},
    },
  },
  mailboxexists: { ext: 'mailbox', positional: [[SL]] }, // RFC 5490 §3.1
};

/** RFC 5231 §4 relational operators. */
export const RELATIONS: ReadonlySet<string> = new Set(['gt', 'ge', 'lt', 'le', 'eq', 'ne']);
