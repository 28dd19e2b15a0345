// Identity/get, /changes, /set (RFC 8621 §6), kept in JmapState. The account has one default
// Identity per address it may send as: its own address and every alias that delivers to it
// (Directory.maySendAs); those appear by themselves (made when first listed, gone when the
// alias goes) and cannot be destroyed (mayDelete false). A client may create more, each for an
// address the account may send as (else forbiddenFrom), and destroy those (§6.3).

import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { formatAddress, parseAddress } from '../../core/address.ts';
import type { AccountId } from '../../core/ids.ts';
import { LIMITS } from '../../core/limits.ts';
import { type Directory, type DirectoryAdmin, principalOf } from '../../directory/types.ts';
import type { JmapState } from '../../jmapstate/types.ts';
import { SetFailure } from '../core/errors.ts';
import { getResponse, parseGet } from '../core/get.ts';
import { applyPatch } from '../core/pointer.ts';
import type { MethodRegistry } from '../core/registry.ts';
import { checkSettable, runSet } from '../core/set.ts';
import type { PushHub } from '../push.ts';
import { objectChanges } from './object-changes.ts';

export const SUBMISSION_CAPABILITY = 'urn:ietf:params:jmap:submission';

const PROPERTIES = ['id', 'name', 'email', 'replyTo', 'bcc', 'textSignature', 'htmlSignature', 'mayDelete'] as const;
const SETTABLE = ['name', 'email', 'replyTo', 'bcc', 'textSignature', 'htmlSignature'];

/** RFC 8621 §4.1.2.3 EmailAddress. */
const emailAddress = z.strictObject({
  name: z.string().max(LIMITS.jmapState.maxNameChars).nullable(),
  email: z.string().max(LIMITS.srs.maxAddress),
});

const identitySchema = z.strictObject({
  id: z.string(),
  name: z.string().max(LIMITS.jmapState.maxNameChars),
  email: z.string(),
  replyTo: z.array(emailAddress).max(LIMITS.jmapState.maxSubmissionRecipients).nullable(),
  bcc: z.array(emailAddress).max(LIMITS.jmapState.maxSubmissionRecipients).nullable(),
  textSignature: z.string().max(LIMITS.jmapState.maxSignatureChars),
  htmlSignature: z.string().max(LIMITS.jmapState.maxSignatureChars),
  mayDelete: z.boolean(),
});
export type Identity = z.infer<typeof identitySchema>;

/** The directory as identities need it: who may send as what, and the aliases to look at. */
export type SendAsDirectory = Pick<Directory, 'maySendAs'> & Pick<DirectoryAdmin, 'listAliases'>;

/** May `account` send as `address` (its own address, or an alias that delivers to it)? */
export async function maySendAs(directory: SendAsDirectory, account: AccountId, address: string): Promise<boolean> {
  const a = parseAddress(address);
  return a !== null && (await directory.maySendAs(principalOf(account), a));
}

/** The addresses the account may send as: its own first, then its aliases, normalised. */
async function sendAddresses(directory: SendAsDirectory, account: AccountId): Promise<string[]> {
  const out = [account as string];
  const aliases = await directory.listAliases();
  // Only aliases that name the account, or another alias (a chain), can deliver to it: the
  // others are not asked about one by one.
  const sources = new Set(aliases.map((a) => a.source.toLowerCase()));
  const own = account.toLowerCase();
  for (const alias of aliases) {
    if (out.length >= LIMITS.jmapState.maxIdentities) break;
    if (!alias.destinations.some((d) => d.toLowerCase() === own || sources.has(d.toLowerCase()))) continue;
    const a = parseAddress(alias.source);
    if (!a || out.includes(formatAddress(a))) continue;
    if (await directory.maySendAs(principalOf(account), a)) out.push(formatAddress(a));
  }
  return out;
}

/** A default identity's id: stable for (account, address). */
const defaultId = (account: AccountId, address: string) =>
  `I${createHash('sha256').update(`${account}\0${address}`).digest('base64url').slice(0, 20)}`;

export class Identities {
  readonly #state: JmapState;
  readonly #directory: SendAsDirectory;

  constructor(state: JmapState, directory: SendAsDirectory) {
    this.#state = state;
    this.#directory = directory;
  }

  /** Every identity of the account, the defaults brought in line with the directory first. */
  async list(account: AccountId): Promise<Identity[]> {
    const addresses = await sendAddresses(this.#directory, account);
    const stored = (await this.#state.list(account, 'Identity')).map((o) => identitySchema.parse(o));
    for (const address of addresses) {
      const id = defaultId(account, address);
      if (stored.some((i) => i.id === id)) continue;
      const made: Identity = {
        id,
        name: '',
        email: address,
        replyTo: null,
        bcc: null,
        textSignature: '',
        htmlSignature: '',
        mayDelete: false,
      };
      await this.#state.put(account, 'Identity', id, made);
      stored.push(made);
    }
    const out: Identity[] = [];
    for (const i of stored) {
      // An identity of an address the account may no longer send as (an alias removed) goes.
      if (!addresses.includes(i.email) && !(await maySendAs(this.#directory, account, i.email))) {
        await this.#state.destroy(account, 'Identity', i.id);
      } else out.push(i);
    }
    return out;
  }

  async get(account: AccountId, id: string): Promise<Identity | null> {
    return (await this.list(account)).find((i) => i.id === id) ?? null;
  }

  state(account: AccountId): Promise<string> {
    return this.#state.state(account, 'Identity');
  }

  async create(account: AccountId, object: Record<string, unknown>): Promise<Identity> {
    checkSettable(object, SETTABLE);
    const parsed = identitySchema.safeParse({
      name: '',
      replyTo: null,
      bcc: null,
      textSignature: '',
      htmlSignature: '',
      ...object,
      id: `I${randomBytes(15).toString('base64url')}`,
      mayDelete: true,
    });
    if (!parsed.success) throw invalid(parsed.error);
    const address = parseAddress(parsed.data.email);
    // §6.3: "forbiddenFrom": the user may not send as this address.
    if (!address || !(await maySendAs(this.#directory, account, parsed.data.email)))
      throw new SetFailure('forbiddenFrom', `you may not send as ${parsed.data.email}`);
    if ((await this.list(account)).length >= LIMITS.jmapState.maxIdentities)
      throw new SetFailure('overQuota', `at most ${LIMITS.jmapState.maxIdentities} identities`);
    const made = { ...parsed.data, email: formatAddress(address) };
    await this.#state.put(account, 'Identity', made.id, made);
    return made;
  }

  async update(account: AccountId, id: string, patch: Record<string, unknown>): Promise<void> {
    const current = await this.get(account, id);
    if (!current) throw new SetFailure('notFound');
    const r = applyPatch(current, patch);
    if (!r.ok) throw new SetFailure('invalidPatch', r.description);
    // §6: email is immutable; id and mayDelete are server-set.
    const fixed = (['id', 'email', 'mayDelete'] as const).filter((p) => r.value[p] !== current[p]);
    if (fixed.length > 0) throw new SetFailure('invalidProperties', 'these properties cannot be changed', fixed);
    const parsed = identitySchema.safeParse(r.value);
    if (!parsed.success) throw invalid(parsed.error);
    await this.#state.put(account, 'Identity', id, parsed.data);
  }

  async destroy(account: AccountId, id: string): Promise<void> {
    const current = await this.get(account, id);
    if (!current) throw new SetFailure('notFound');
    if (!current.mayDelete) throw new SetFailure('forbidden', 'this identity is the account address or an alias of it');
    await this.#state.destroy(account, 'Identity', id);
  }
}

function invalid(error: z.ZodError): SetFailure {
  const props = [...new Set(error.issues.map((i) => String(i.path[0] ?? '')))];
  return new SetFailure('invalidProperties', error.issues[0]?.message, props);
}

export function registerIdentity(
  registry: MethodRegistry,
  deps: { identities: Identities; state: JmapState; hub: PushHub },
): void {
  const { identities } = deps;
  // §6.1: the standard /get (every identity fits: at most maxIdentities).
  registry.method(SUBMISSION_CAPABILITY, 'Identity/get', async (args, ctx) => {
    const req = parseGet(args, ctx, PROPERTIES);
    const all = await identities.list(ctx.account);
    const found = req.ids === null ? all : all.filter((i) => req.ids?.includes(i.id));
    return getResponse(req, ctx, await identities.state(ctx.account), found);
  });

  // §6.2: the standard /changes.
  registry.method(SUBMISSION_CAPABILITY, 'Identity/changes', async (args, ctx) => {
    await identities.list(ctx.account); // the defaults in line with the directory first
    return objectChanges(deps.state, 'Identity', args, ctx);
  });

  // §6.3: the standard /set.
  registry.method(SUBMISSION_CAPABILITY, 'Identity/set', async (args, ctx) => {
    await identities.list(ctx.account);
    const res = await runSet(args, ctx, {
      state: () => identities.state(ctx.account),
      create: async (object) => {
        const made = await identities.create(ctx.account, object);
        return { id: made.id, mayDelete: true };
      },
      update: async (id, patch) => {
        await identities.update(ctx.account, id, patch);
        return null;
      },
      destroy: (id) => identities.destroy(ctx.account, id),
    });
    if (res.oldState !== res.newState) deps.hub.publish(ctx.account, { Identity: String(res.newState) });
    return res;
  });
}
