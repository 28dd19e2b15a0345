// Small building blocks shared by the pages: links, labelled fields with their error, the
// problem box, and hooks to load data and to run an action.
import { type ComponentChildren, cloneElement, type InputHTMLAttributes, type VNode } from 'preact';
import { useCallback, useEffect, useId, useState } from 'preact/hooks';
import { api, type Page, type Problem, query, toProblem } from './api.ts';
import { BASE, navigate } from './router.ts';

export function Link(props: { to: string; children: ComponentChildren; current?: boolean }) {
  return (
    <a
      href={BASE + props.to}
      aria-current={props.current ? 'page' : undefined}
      onClick={(e) => {
        if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
        e.preventDefault();
        navigate(props.to);
      }}
    >
      {props.children}
    </a>
  );
}

/** A labelled control; its hint and the server's message for the field are tied to it with
 *  aria-describedby (and aria-invalid), outside the label, so the control's name is the label. */
export function Field(props: { label: string; error?: string | undefined; hint?: string; children: VNode }) {
  const id = useId();
  const described = [props.hint ? `${id}-hint` : '', props.error ? `${id}-error` : ''].filter(Boolean).join(' ');
  return (
    <div class={props.error ? 'field invalid' : 'field'}>
      <label class="label" for={id}>
        {props.label}
      </label>
      {cloneElement(props.children, {
        id,
        'aria-describedby': described || undefined,
        'aria-invalid': props.error ? 'true' : undefined,
      })}
      {props.hint ? (
        <span class="hint" id={`${id}-hint`}>
          {props.hint}
        </span>
      ) : null}
      {props.error ? (
        <span class="field-error" id={`${id}-error`} role="alert">
          {props.error}
        </span>
      ) : null}
    </div>
  );
}

/** A text input bound to a state setter. */
export function Input(
  props: Omit<InputHTMLAttributes<HTMLInputElement>, 'value' | 'onInput'> & { value: string; set: (v: string) => void },
) {
  const { set, ...rest } = props;
  return <input {...rest} onInput={(e) => set(e.currentTarget.value)} />;
}

/** A new password, labelled, with the server's message for it. */
export function NewPasswordField(props: {
  label: string;
  name?: string;
  value: string;
  set: (v: string) => void;
  error?: string | undefined;
}) {
  return (
    <Field label={props.label} error={props.error}>
      <Input
        name={props.name ?? 'new-password'}
        type="password"
        autocomplete="new-password"
        required
        value={props.value}
        set={props.set}
      />
    </Field>
  );
}

/** A table with a caption for screen readers, its column headings, and an actions column. */
export function Table(props: { caption: string; columns: string[]; actions: boolean; children: ComponentChildren }) {
  return (
    <table>
      <caption class="sr-only">{props.caption}</caption>
      <thead>
        <tr>
          {props.columns.map((c) => (
            <th key={c} scope="col">
              {c}
            </th>
          ))}
          {props.actions ? <th scope="col">Actions</th> : null}
        </tr>
      </thead>
      <tbody>{props.children}</tbody>
    </table>
  );
}

/** The problem of a request: its title and detail, and field errors no field of the form showed. */
export function ProblemBox(props: { problem: Problem | null; fields?: readonly string[] }) {
  const p = props.problem;
  if (!p) return null;
  const shown = new Set(props.fields ?? []);
  const rest = (p.errors ?? []).filter((e) => !shown.has(e.field));
  return (
    <div class="problem" role="alert">
      <strong>{p.title}</strong>
      {p.detail && p.detail !== p.title ? <span> — {p.detail}</span> : null}
      {rest.length > 0 ? (
        <ul class="problem-list">
          {rest.map((e) => (
            <li key={e.field + e.message}>
              {e.field ? <code>{e.field}</code> : null} {e.message}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

/** Runs one action at a time and keeps its problem, with the message for each field. */
export function useSubmit() {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const run = useCallback(async (f: () => Promise<unknown>): Promise<boolean> => {
    setBusy(true);
    setProblem(null);
    try {
      await f();
      return true;
    } catch (e) {
      setProblem(toProblem(e));
      return false;
    } finally {
      setBusy(false);
    }
  }, []);
  const fieldError = (field: string) => problem?.errors?.find((e) => e.field === field)?.message;
  return { busy, problem, run, fieldError, clear: () => setProblem(null) };
}

/** GETs `path` when it changes; `reload()` fetches again. */
export function useLoad<T>(path: string | null) {
  const [data, setData] = useState<T | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [n, setN] = useState(0);
  useEffect(() => {
    if (path === null) return;
    let live = true;
    setProblem(null);
    api<T>('GET', path).then(
      (d) => live && setData(d),
      (e: unknown) => live && setProblem(toProblem(e)),
    );
    return () => {
      live = false;
    };
  }, [path, n]);
  return { data, problem, reload: () => setN((x) => x + 1) };
}

/** A list resource (`{ items, next }`): the first page, then more on demand. */
export function useList<T>(path: string | null, params: Record<string, string | null | undefined> = {}) {
  const key = path === null ? null : path + query({ ...params, limit: 100 });
  const first = useLoad<Page<T>>(key);
  const [more, setMore] = useState<{ items: T[]; next: string | null } | null>(null);
  // A new first page drops the pages loaded after it.
  useEffect(() => setMore(null), [first.data]);
  const items = [...(first.data?.items ?? []), ...(more?.items ?? [])];
  const next = more ? more.next : (first.data?.next ?? null);
  const loadMore = async () => {
    if (!next || path === null) return;
    const page = await api<Page<T>>('GET', path + query({ ...params, limit: 100, cursor: next }));
    setMore({ items: [...(more?.items ?? []), ...page.items], next: page.next });
  };
  return { items, loaded: first.data !== null, next, loadMore, problem: first.problem, reload: first.reload };
}

export function MoreButton(props: { next: string | null; onMore: () => void }) {
  return props.next ? (
    <button type="button" class="secondary" onClick={props.onMore}>
      Load more
    </button>
  ) : null;
}

/** A button that asks for a second click before doing something that cannot be undone. */
export function ConfirmButton(props: { label: string; confirm?: string; onConfirm: () => void; disabled?: boolean }) {
  const [armed, setArmed] = useState(false);
  useEffect(() => {
    if (!armed) return;
    const t = setTimeout(() => setArmed(false), 5000);
    return () => clearTimeout(t);
  }, [armed]);
  return (
    <button
      type="button"
      class={armed ? 'danger armed' : 'danger'}
      disabled={props.disabled}
      onClick={() => {
        if (armed) {
          setArmed(false);
          props.onConfirm();
        } else setArmed(true);
      }}
    >
      {armed ? (props.confirm ?? `Really ${props.label.toLowerCase()}?`) : props.label}
    </button>
  );
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** Quota in MiB from a form field: empty is "no quota" (null). */
export function quotaFromMiB(s: string): number | null {
  const t = s.trim();
  if (t === '') return null;
  return Math.round(Number(t) * 1024 * 1024);
}

export function Loading(props: { what: string }) {
  return <p class="muted">Loading {props.what}…</p>;
}
