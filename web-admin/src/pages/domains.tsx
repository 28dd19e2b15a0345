// Domains: the list (add, delete), and one domain: its DNS records with whether each is
// published now, its catch-all address and its DKIM keys.
import { useState } from 'preact/hooks';
import { api, type DkimKey, type DnsRecord, type Domain, type Me, type Page, seg } from '../api.ts';
import { navigate } from '../router.ts';
import {
  ConfirmButton,
  Field,
  Input,
  Link,
  Loading,
  MoreButton,
  ProblemBox,
  Table,
  useList,
  useLoad,
  useSubmit,
  when,
} from '../ui.tsx';

export function DomainsPage(props: { me: Me }) {
  const admin = props.me.role === 'admin';
  const [q, setQ] = useState('');
  const list = useList<Domain>('/domains', { q });
  const [name, setName] = useState('');
  const add = useSubmit();
  const del = useSubmit();
  return (
    <section>
      <h1>Domains</h1>
      {admin ? (
        <form
          class="inline"
          aria-label="Add a domain"
          onSubmit={(e) => {
            e.preventDefault();
            void add.run(async () => {
              await api<Domain>('PUT', `/domains/${seg(name.trim().toLowerCase())}`, {});
              setName('');
              list.reload();
            });
          }}
        >
          <Field label="New domain" error={add.fieldError('name')}>
            <Input name="domain" required placeholder="example.org" value={name} set={setName} />
          </Field>
          <button type="submit" disabled={add.busy}>
            Add domain
          </button>
          <ProblemBox problem={add.problem} fields={['name']} />
        </form>
      ) : null}
      <Field label="Filter">
        <Input type="search" name="q" value={q} set={setQ} />
      </Field>
      <ProblemBox problem={list.problem ?? del.problem} />
      {!list.loaded && !list.problem ? <Loading what="domains" /> : null}
      <Table caption="Domains" columns={['Domain', 'Users', 'Aliases', 'Catch-all']} actions={admin}>
        {list.items.map((d) => (
          <tr key={d.name}>
            <th scope="row">
              <Link to={`domains/${seg(d.name)}`}>{d.name}</Link>
            </th>
            <td>{d.users}</td>
            <td>{d.aliases}</td>
            <td>{d.catchAll ?? '—'}</td>
            {admin ? (
              <td>
                <ConfirmButton
                  label="Delete"
                  confirm={`Delete ${d.name}?`}
                  onConfirm={() => void del.run(() => api('DELETE', `/domains/${seg(d.name)}`)).then(list.reload)}
                />
              </td>
            ) : null}
          </tr>
        ))}
      </Table>
      {list.loaded && list.items.length === 0 ? <p class="muted">No domains.</p> : null}
      <MoreButton next={list.next} onMore={() => void list.loadMore()} />
    </section>
  );
}

function Published(props: { r: DnsRecord }) {
  const { published, found } = props.r;
  if (published === null) return <span class="badge unknown">lookup failed</span>;
  if (published) return <span class="badge ok">published</span>;
  return (
    <span class="badge bad" title={found.length ? `found: ${found.join(' | ')}` : 'nothing found'}>
      not published
    </span>
  );
}

function DnsRecords(props: { name: string }) {
  const { data, problem, reload } = useLoad<{ records: DnsRecord[] }>(`/domains/${seg(props.name)}/dns`);
  return (
    <>
      <h2>DNS records</h2>
      <p class="muted">
        What the domain's zone should hold, and what the configured resolvers find now.{' '}
        <button type="button" class="secondary" onClick={reload}>
          Check again
        </button>
      </p>
      <ProblemBox problem={problem} />
      {!data && !problem ? <Loading what="DNS records" /> : null}
      {data ? (
        <Table caption="DNS records" columns={['Name', 'Type', 'Value', 'Purpose', 'Status']} actions={false}>
          {data.records.map((r) => (
            <tr key={`${r.name} ${r.type} ${r.value}`}>
              <td>
                <code>{r.name}</code>
              </td>
              <td>{r.type}</td>
              <td class="value">
                <code>{r.value}</code>
              </td>
              <td>{r.purpose}</td>
              <td>
                <Published r={r} />
              </td>
            </tr>
          ))}
        </Table>
      ) : null}
    </>
  );
}

function DkimKeys(props: { name: string; canWrite: boolean }) {
  const base = `/domains/${seg(props.name)}/dkim`;
  const { data, problem, reload } = useLoad<Page<DkimKey>>(base);
  const [selector, setSelector] = useState('');
  const [algorithm, setAlgorithm] = useState('');
  const add = useSubmit();
  const del = useSubmit();
  const rotation = useSubmit();
  return (
    <>
      <h2>DKIM keys</h2>
      <p class="muted">
        A rotation makes a pending key for each algorithm: publish its record, then activate it; the old key stops
        signing then.
      </p>
      <ProblemBox problem={problem ?? del.problem ?? rotation.problem} />
      {!data && !problem ? <Loading what="DKIM keys" /> : null}
      {data && data.items.length === 0 ? <p class="muted">No DKIM key: outgoing mail is not signed.</p> : null}
      {data && data.items.length > 0 ? (
        <Table
          caption="DKIM keys"
          columns={['Selector', 'Algorithm', 'State', 'Created', 'TXT record']}
          actions={props.canWrite}
        >
          {data.items.map((k) => (
            <tr key={k.selector}>
              <th scope="row">{k.selector}</th>
              <td>{k.algorithm}</td>
              <td>{k.state === 'pending' ? 'pending (not signing)' : 'signing'}</td>
              <td>{when(k.created)}</td>
              <td class="value">
                <code>{k.record}</code>
              </td>
              {props.canWrite ? (
                <td>
                  {k.state === 'pending' ? (
                    <button
                      type="button"
                      disabled={rotation.busy}
                      onClick={() =>
                        void rotation.run(() => api('POST', `${base}/${seg(k.selector)}/activate`, {})).then(reload)
                      }
                    >
                      Activate
                    </button>
                  ) : null}
                  <ConfirmButton
                    label="Delete"
                    confirm={`Delete ${k.selector}?`}
                    onConfirm={() => void del.run(() => api('DELETE', `${base}/${seg(k.selector)}`)).then(reload)}
                  />
                </td>
              ) : null}
            </tr>
          ))}
        </Table>
      ) : null}
      {props.canWrite ? (
        <p>
          <button
            type="button"
            disabled={rotation.busy}
            onClick={() => void rotation.run(() => api('POST', `${base}/rotate`)).then(reload)}
          >
            Rotate keys
          </button>
        </p>
      ) : null}
      {props.canWrite ? (
        <form
          class="inline"
          aria-label="New DKIM key"
          onSubmit={(e) => {
            e.preventDefault();
            void add.run(async () => {
              await api<DkimKey>('POST', base, {
                ...(selector.trim() ? { selector: selector.trim() } : {}),
                ...(algorithm ? { algorithm } : {}),
              });
              setSelector('');
              reload();
            });
          }}
        >
          <Field label="Selector" hint="empty: the server picks one" error={add.fieldError('selector')}>
            <Input name="selector" value={selector} set={setSelector} />
          </Field>
          <Field label="Algorithm" error={add.fieldError('algorithm')}>
            <select name="algorithm" value={algorithm} onChange={(e) => setAlgorithm(e.currentTarget.value)}>
              <option value="">server default</option>
              <option value="rsa">rsa</option>
              <option value="ed25519">ed25519</option>
            </select>
          </Field>
          <button type="submit" disabled={add.busy}>
            New DKIM key
          </button>
          <ProblemBox problem={add.problem} fields={['selector', 'algorithm']} />
        </form>
      ) : null}
    </>
  );
}

function CatchAll(props: { domain: Domain; canWrite: boolean; onChange: () => void }) {
  const [target, setTarget] = useState(props.domain.catchAll ?? '');
  const save = useSubmit();
  if (!props.canWrite) return <p>Catch-all: {props.domain.catchAll ?? 'none'}</p>;
  return (
    <form
      class="inline"
      aria-label="Catch-all"
      onSubmit={(e) => {
        e.preventDefault();
        void save.run(async () => {
          await api<Domain>('PUT', `/domains/${seg(props.domain.name)}/catchall`, {
            target: target.trim() === '' ? null : target.trim(),
          });
          props.onChange();
        });
      }}
    >
      <Field label="Catch-all address" hint="empty: none" error={save.fieldError('target')}>
        <Input name="catchall" type="email" value={target} set={setTarget} />
      </Field>
      <button type="submit" disabled={save.busy}>
        Save catch-all
      </button>
      <ProblemBox problem={save.problem} fields={['target']} />
    </form>
  );
}

export function DomainPage(props: { me: Me; name: string }) {
  const { me, name } = props;
  const canWrite = me.role === 'admin' || (me.role === 'domain' && me.domain === name);
  const { data, problem, reload } = useLoad<Domain>(`/domains/${seg(name)}`);
  const del = useSubmit();
  return (
    <section>
      <h1>{name}</h1>
      <ProblemBox problem={problem ?? del.problem} />
      {data ? (
        <>
          <p>
            <Link to={`users?domain=${seg(name)}`}>{data.users} users</Link>,{' '}
            <Link to={`aliases?domain=${seg(name)}`}>{data.aliases} aliases</Link>
          </p>
          <CatchAll key={data.catchAll ?? ''} domain={data} canWrite={canWrite} onChange={reload} />
        </>
      ) : null}
      <DnsRecords name={name} />
      <DkimKeys name={name} canWrite={canWrite} />
      {me.role === 'admin' ? (
        <>
          <h2>Delete</h2>
          <p class="muted">Only a domain without users and aliases can be deleted.</p>
          <ConfirmButton
            label="Delete domain"
            confirm={`Delete ${name}?`}
            onConfirm={() =>
              void del.run(() => api('DELETE', `/domains/${seg(name)}`)).then((ok) => ok && navigate('domains'))
            }
          />
        </>
      ) : null}
    </section>
  );
}
