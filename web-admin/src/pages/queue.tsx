// The outbound queue: every message with its recipients' states; retry now, hold, release,
// delete.
import { api, type Me, type QueueItem, seg } from '../api.ts';
import { bytes, ConfirmButton, Loading, MoreButton, ProblemBox, Table, useList, useSubmit, when } from '../ui.tsx';

export function QueuePage(props: { me: Me }) {
  const canWrite = props.me.role === 'admin';
  const list = useList<QueueItem>('/queue');
  const act = useSubmit();
  const post = (id: string, what: 'retry' | 'hold' | 'release') =>
    void act.run(() => api<QueueItem>('POST', `/queue/${seg(id)}/${what}`)).then(list.reload);
  return (
    <section>
      <h1>Queue</h1>
      <p class="muted">
        Outgoing mail waiting for delivery.{' '}
        <button type="button" class="secondary" onClick={list.reload}>
          Refresh
        </button>
      </p>
      <ProblemBox problem={list.problem ?? act.problem} />
      {!list.loaded && !list.problem ? <Loading what="the queue" /> : null}
      {list.loaded && list.items.length === 0 ? <p class="muted">The queue is empty.</p> : null}
      {list.items.length > 0 ? (
        <Table
          caption="Queued messages"
          columns={['Message', 'Recipients', 'Attempts', 'Next attempt']}
          actions={canWrite}
        >
          {list.items.map((m) => (
            <tr key={m.id} class={m.held ? 'disabled' : ''}>
              <th scope="row">
                <code>{m.id}</code>
                <br />
                from {m.sender || '<>'}, {bytes(m.size)}, {when(m.created)}
              </th>
              <td>
                <ul class="plain">
                  {m.recipients.map((r) => (
                    <li key={r.address}>
                      {r.address} <span class="badge">{r.state}</span>
                      {r.lastError ? <div class="muted">{r.lastError}</div> : null}
                    </li>
                  ))}
                </ul>
              </td>
              <td>{m.attempts}</td>
              <td>{m.held ? 'held' : when(m.nextAttempt)}</td>
              {canWrite ? (
                <td class="actions">
                  <button type="button" onClick={() => post(m.id, 'retry')}>
                    Retry now
                  </button>
                  <button type="button" class="secondary" onClick={() => post(m.id, m.held ? 'release' : 'hold')}>
                    {m.held ? 'Release' : 'Hold'}
                  </button>
                  <ConfirmButton
                    label="Delete"
                    confirm="Delete, not delivered?"
                    onConfirm={() => void act.run(() => api('DELETE', `/queue/${seg(m.id)}`)).then(list.reload)}
                  />
                </td>
              ) : null}
            </tr>
          ))}
        </Table>
      ) : null}
      <MoreButton next={list.next} onMore={() => void list.loadMore()} />
    </section>
  );
}
