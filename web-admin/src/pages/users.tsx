// Users of a domain: list, add (password and quota), change password, enable/disable, delete.
import { useState } from 'preact/hooks';
import { api, type Me, seg, type User } from '../api.ts';
import { param } from '../router.ts';
import {
  bytes,
  ConfirmButton,
  Field,
  Input,
  Loading,
  MoreButton,
  NewPasswordField,
  ProblemBox,
  quotaFromMiB,
  Table,
  useList,
  useSubmit,
} from '../ui.tsx';
import { DomainSelect } from './domain-select.tsx';

function PasswordForm(props: { address: string; onDone: (saved: boolean) => void }) {
  const [password, setPassword] = useState('');
  const save = useSubmit();
  return (
    <form
      class="inline"
      aria-label={`Change the password of ${props.address}`}
      onSubmit={(e) => {
        e.preventDefault();
        void save.run(async () => {
          await api('PUT', `/users/${seg(props.address)}/password`, { password });
          props.onDone(true);
        });
      }}
    >
      <Field label={`New password for ${props.address}`} error={save.fieldError('password')}>
        <Input
          name="new-password"
          type="password"
          autocomplete="new-password"
          required
          value={password}
          set={setPassword}
        />
      </Field>
      <button type="submit" disabled={save.busy}>
        Set password
      </button>
      <button type="button" class="secondary" onClick={() => props.onDone(false)}>
        Cancel
      </button>
      <ProblemBox problem={save.problem} fields={['password']} />
    </form>
  );
}

function AddUser(props: { domain: string; onAdded: () => void }) {
  const [local, setLocal] = useState('');
  const [password, setPassword] = useState('');
  const [quota, setQuota] = useState('');
  const add = useSubmit();
  return (
    <form
      class="inline"
      aria-label="Add a user"
      onSubmit={(e) => {
        e.preventDefault();
        const address = local.includes('@') ? local.trim() : `${local.trim()}@${props.domain}`;
        void add.run(async () => {
          await api<User>('PUT', `/users/${seg(address)}`, { password, quotaBytes: quotaFromMiB(quota) });
          setLocal('');
          setPassword('');
          setQuota('');
          props.onAdded();
        });
      }}
    >
      <Field label="New user" hint={`name@${props.domain || 'domain'}`} error={add.fieldError('address')}>
        <Input name="address" required value={local} set={setLocal} />
      </Field>
      <NewPasswordField
        label="Password"
        name="password"
        value={password}
        set={setPassword}
        error={add.fieldError('password')}
      />
      <Field label="Quota (MiB)" hint="empty: no quota" error={add.fieldError('quotaBytes')}>
        <Input name="quota" type="number" min="1" step="any" value={quota} set={setQuota} />
      </Field>
      <button type="submit" disabled={add.busy || !props.domain}>
        Add user
      </button>
      <ProblemBox problem={add.problem} fields={['address', 'password', 'quotaBytes']} />
    </form>
  );
}

export function UsersPage(props: { me: Me }) {
  const canWrite = props.me.role === 'admin' || props.me.role === 'domain';
  const [domain, setDomain] = useState(param('domain') ?? '');
  const list = useList<User>(domain ? '/users' : null, { domain });
  const [editing, setEditing] = useState<string | null>(null);
  const [notice, setNotice] = useState('');
  const act = useSubmit();
  const update = (u: User, body: Record<string, unknown>) =>
    void act.run(() => api('PUT', `/users/${seg(u.address)}`, body)).then(list.reload);
  return (
    <section>
      <h1>Users</h1>
      <DomainSelect me={props.me} value={domain} onChange={setDomain} />
      {canWrite ? <AddUser domain={domain} onAdded={list.reload} /> : null}
      <ProblemBox problem={list.problem ?? act.problem} />
      {notice ? (
        <p class="notice" role="status">
          {notice}
        </p>
      ) : null}
      {domain && !list.loaded && !list.problem ? <Loading what="users" /> : null}
      <Table caption={`Users of ${domain}`} columns={['Address', 'Used', 'Quota', 'State']} actions={canWrite}>
        {list.items.map((u) => (
          <tr key={u.address} class={u.enabled ? '' : 'disabled'}>
            <th scope="row">{u.address}</th>
            <td>{bytes(u.usedBytes)}</td>
            <td>{u.quotaBytes === null ? 'none' : bytes(u.quotaBytes)}</td>
            <td>{u.enabled ? 'enabled' : 'disabled'}</td>
            {canWrite ? (
              <td class="actions">
                {editing === u.address ? (
                  <PasswordForm
                    address={u.address}
                    onDone={(saved) => {
                      setEditing(null);
                      if (saved) setNotice(`The password of ${u.address} was changed.`);
                    }}
                  />
                ) : (
                  <button
                    type="button"
                    aria-label={`Change password of ${u.address}`}
                    onClick={() => {
                      setNotice('');
                      setEditing(u.address);
                    }}
                  >
                    Change password
                  </button>
                )}
                <button
                  type="button"
                  class="secondary"
                  aria-label={`${u.enabled ? 'Disable' : 'Enable'} ${u.address}`}
                  onClick={() => update(u, { enabled: !u.enabled })}
                >
                  {u.enabled ? 'Disable' : 'Enable'}
                </button>
                <ConfirmButton
                  label="Delete"
                  confirm={`Delete ${u.address}? (its mail stays on disk)`}
                  onConfirm={() =>
                    void act.run(() => api('DELETE', `/users/${seg(u.address)}?purge=false`)).then(list.reload)
                  }
                />
              </td>
            ) : null}
          </tr>
        ))}
      </Table>
      {list.loaded && list.items.length === 0 ? <p class="muted">No users in {domain}.</p> : null}
      <MoreButton next={list.next} onMore={() => void list.loadMore()} />
    </section>
  );
}
