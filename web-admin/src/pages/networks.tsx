// IP allow and deny lists and the automatic bans (docs/spam.md): add a network to a list, remove
// it, lift a ban. Admins only; readonly sees the lists without the buttons.
import { useState } from 'preact/hooks';
import { api, type Ban, type Me, type NetworkEntry } from '../api.ts';
import {
  ConfirmButton,
  Field,
  Input,
  Loading,
  MoreButton,
  ProblemBox,
  Table,
  useList,
  useSubmit,
  when,
} from '../ui.tsx';

/** "192.0.2.0/24" -> "/networks/192.0.2.0/24"; a bare address gets its full prefix. */
function networkPath(cidr: string): string {
  const t = cidr.trim();
  if (t.includes('/')) return `/networks/${t}`;
  return `/networks/${t}/${t.includes(':') ? 128 : 32}`;
}

export function NetworksPage(props: { me: Me }) {
  const canWrite = props.me.role === 'admin';
  const lists = useList<NetworkEntry>('/networks');
  const bans = useList<Ban>('/bans');
  const [cidr, setCidr] = useState('');
  const [list, setList] = useState<'allow' | 'deny'>('deny');
  const [comment, setComment] = useState('');
  const save = useSubmit();
  const del = useSubmit();
  return (
    <section>
      <h1>Networks</h1>
      <p class="muted">
        Clients on the deny list are refused at connection on every port; the allow list wins over the deny list and
        over bans, and skips greylisting, rate limits and DNS blocklists. Changes apply within a second.
      </p>
      {canWrite ? (
        <form
          class="inline"
          aria-label="Add a network"
          onSubmit={(e) => {
            e.preventDefault();
            void save.run(async () => {
              await api<NetworkEntry>('PUT', networkPath(cidr), { list, ...(comment ? { comment } : {}) });
              setCidr('');
              setComment('');
              lists.reload();
            });
          }}
        >
          <Field label="Address or network" hint="192.0.2.0/24, 2001:db8::/48" error={save.fieldError('address')}>
            <Input name="cidr" required value={cidr} set={setCidr} />
          </Field>
          <Field label="List">
            <select
              name="list"
              value={list}
              onChange={(e) => setList((e.target as HTMLSelectElement).value as 'allow')}
            >
              <option value="deny">deny</option>
              <option value="allow">allow</option>
            </select>
          </Field>
          <Field label="Comment" hint="optional" error={save.fieldError('comment')}>
            <Input name="comment" value={comment} set={setComment} />
          </Field>
          <button type="submit" disabled={save.busy}>
            Add network
          </button>
          <ProblemBox problem={save.problem} fields={['address', 'prefix', 'comment']} />
        </form>
      ) : null}
      <ProblemBox problem={lists.problem ?? del.problem} />
      {!lists.loaded && !lists.problem ? <Loading what="networks" /> : null}
      <Table caption="Allow and deny lists" columns={['Network', 'List', 'Comment', 'Added']} actions={canWrite}>
        {lists.items.map((n) => (
          <tr key={n.cidr}>
            <th scope="row">{n.cidr}</th>
            <td>{n.list}</td>
            <td>{n.comment}</td>
            <td>
              {when(n.created)} by {n.createdBy || '-'}
            </td>
            {canWrite ? (
              <td class="actions">
                <ConfirmButton
                  label="Remove"
                  confirm={`Remove ${n.cidr} from the ${n.list} list?`}
                  onConfirm={() => void del.run(() => api('DELETE', networkPath(n.cidr))).then(lists.reload)}
                />
              </td>
            ) : null}
          </tr>
        ))}
      </Table>
      {lists.loaded && lists.items.length === 0 ? <p class="muted">No networks on either list.</p> : null}
      <MoreButton next={lists.next} onMore={() => void lists.loadMore()} />
      <h2>Bans</h2>
      <ProblemBox problem={bans.problem} />
      <Table caption="Bans in force" columns={['Network', 'Offence', 'Until', 'Ban']} actions={canWrite}>
        {bans.items.map((b) => (
          <tr key={b.network}>
            <th scope="row">{b.network}</th>
            <td>
              {b.offence}: {b.detail}
            </td>
            <td>{when(b.expires)}</td>
            <td>number {b.level}</td>
            {canWrite ? (
              <td class="actions">
                <ConfirmButton
                  label="Lift"
                  confirm={`Lift the ban of ${b.network}?`}
                  onConfirm={() =>
                    void del.run(() => api('DELETE', `/bans/${b.network.split('/')[0] ?? ''}`)).then(bans.reload)
                  }
                />
              </td>
            ) : null}
          </tr>
        ))}
      </Table>
      {bans.loaded && bans.items.length === 0 ? <p class="muted">No bans in force.</p> : null}
      <MoreButton next={bans.next} onMore={() => void bans.loadMore()} />
    </section>
  );
}
