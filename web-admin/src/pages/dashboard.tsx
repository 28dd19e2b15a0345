// The summary: mail accepted and rejected since the server started, deliveries, the queue and
// the disk used by mailboxes.
import type { Summary } from '../api.ts';
import { bytes, Link, Loading, ProblemBox, useLoad, when } from '../ui.tsx';

function Card(props: { label: string; value: string | number; to?: string }) {
  return (
    <div class="card">
      <span class="card-value">{props.value}</span>
      <span class="card-label">{props.to ? <Link to={props.to}>{props.label}</Link> : props.label}</span>
    </div>
  );
}

export function DashboardPage() {
  const { data, problem, reload } = useLoad<Summary>('/summary');
  return (
    <section>
      <h1>Dashboard</h1>
      <ProblemBox problem={problem} />
      {!data && !problem ? <Loading what="the summary" /> : null}
      {data ? (
        <>
          <p class="muted">
            Since the server started ({when(data.since)}).{' '}
            <button type="button" class="secondary" onClick={reload}>
              Refresh
            </button>
          </p>
          <h2>Mail</h2>
          <div class="cards">
            <Card label="Accepted (SMTP)" value={data.smtp.accepted} />
            <Card label="Rejected (SMTP)" value={data.smtp.rejected} />
            <Card label="Delivered" value={data.delivered} />
          </div>
          <h2>Queue</h2>
          <div class="cards">
            <Card label="Queued" value={data.queue.total} to="queue" />
            <Card label="Deferred" value={data.queue.deferred} to="queue" />
            <Card label="Held" value={data.queue.held} to="queue" />
          </div>
          <h2>Accounts and disk</h2>
          <div class="cards">
            <Card label="Domains" value={data.domains} to="domains" />
            <Card label="Users" value={data.users} to="users" />
            <Card label="Aliases" value={data.aliases} to="aliases" />
            <Card label="Mail on disk" value={bytes(data.disk.mailBytes)} />
          </div>
        </>
      ) : null}
    </section>
  );
}
