// The admin API v1 client: JSON over fetch to /api/v1 on the same origin, the token as a Bearer
// header. Errors arrive as RFC 9457 problem details (application/problem+json) and are thrown as
// ApiError, whose `errors` name the fields they belong to.

export interface FieldError {
  readonly field: string;
  readonly message: string;
}

export interface Problem {
  readonly type?: string;
  readonly title: string;
  readonly status: number;
  readonly detail?: string;
  readonly errors?: readonly FieldError[];
}

export class ApiError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail ?? problem.title);
  }
}

export type Role = 'admin' | 'domain' | 'user' | 'readonly';

export interface Me {
  readonly role: Role;
  readonly domain: string | null;
  readonly user: string | null;
  readonly tokenId: string;
}

export interface Page<T> {
  readonly items: T[];
  readonly next: string | null;
}

export interface Summary {
  readonly domains: number;
  readonly users: number;
  readonly aliases: number;
  readonly queue: { total: number; deferred: number; held: number };
  readonly disk: { mailBytes: number };
  readonly since: string;
  readonly smtp: { accepted: number; rejected: number };
  readonly delivered: number;
}

export interface Domain {
  readonly name: string;
  readonly users: number;
  readonly aliases: number;
  readonly catchAll: string | null;
}

export interface DnsRecord {
  readonly name: string;
  readonly type: string;
  readonly value: string;
  readonly purpose: string;
  readonly published: boolean | null;
  readonly found: string[];
}

export interface DkimKey {
  readonly selector: string;
  readonly algorithm: string;
  readonly created: string;
  readonly record: string;
  /** active: signs; pending: made by a rotation, signs once activated (after DNS publication). */
  readonly state: 'active' | 'pending';
}

export interface NetworkEntry {
  readonly cidr: string;
  readonly list: 'allow' | 'deny';
  readonly comment: string;
  readonly created: string;
  readonly createdBy: string;
}

export interface Ban {
  readonly network: string;
  readonly offence: string;
  readonly detail: string;
  readonly banned: string;
  readonly expires: string;
  readonly level: number;
}

export interface User {
  readonly address: string;
  readonly quotaBytes: number | null;
  readonly usedBytes: number;
  readonly enabled: boolean;
}

export interface Alias {
  readonly source: string;
  readonly destinations: string[];
}

export interface QueueRecipient {
  readonly address: string;
  readonly state: string;
  readonly lastError: string | null;
}

export interface QueueItem {
  readonly id: string;
  readonly sender: string;
  readonly recipients: QueueRecipient[];
  readonly attempts: number;
  readonly nextAttempt: string | null;
  readonly held: boolean;
  readonly created: string;
  readonly size: number;
}

export interface LoginAnswer {
  readonly token: string;
  readonly role: Role;
  readonly user: string;
  readonly expiresAt: string;
}

const BASE = '/api/v1';
const KEY = 'arcline.admin.token';

/** The token lives in sessionStorage: gone with the tab, never in a cookie. */
export const session = {
  get token(): string | null {
    return sessionStorage.getItem(KEY);
  },
  set(token: string): void {
    sessionStorage.setItem(KEY, token);
  },
  clear(): void {
    sessionStorage.removeItem(KEY);
  },
};

let onUnauthorized: () => void = () => {};
/** Called when a request answers 401 (the token expired or was deleted). */
export function setUnauthorizedHandler(f: () => void): void {
  onUnauthorized = f;
}

/** A path segment: addresses and names are always encoded. */
export const seg = encodeURIComponent;

export function toProblem(e: unknown): Problem {
  if (e instanceof ApiError) return e.problem;
  return { title: e instanceof Error ? e.message : String(e), status: 0 };
}

export async function api<T>(method: string, path: string, body?: unknown, token = session.token): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json, application/problem+json' };
  if (token) headers['authorization'] = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(BASE + path, {
      method,
      headers,
      body: body === undefined ? null : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new ApiError({ title: 'The server cannot be reached', status: 0 });
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const problem: Problem =
      data && typeof data === 'object' && 'title' in data
        ? { ...(data as Problem), status: res.status }
        : { title: `${res.status} ${res.statusText}`.trim(), status: res.status };
    if (res.status === 401 && token && path !== '/login') onUnauthorized();
    throw new ApiError(problem);
  }
  return data as T;
}

/** `?limit=&cursor=&q=&domain=` from the set values. */
export function query(params: Record<string, string | number | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
