// Aliases of a domain: list, add or replace (the whole set of destinations), delete.
import { useState } from 'preact/hooks';
import { type Alias, api, type Me, seg } from '../api.ts';
import { param } from '../router.ts';
import { ConfirmButton, Field, Input, Loading, MoreButton, ProblemBox, Table, useList, useSubmit } from '../ui.tsx';
import { DomainSelect } from './domain-select.tsx';

const split = (s: string) =>
  s
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter((x) => x !== '');

export function AliasesPage(props: { me: Me }) {
  const canWrite = props.me.role === 'admin' || props.me.role === 'domain';
  const [domain, setDomain] = useState(param('domain') ?? '');
  const list = useList<Alias>(domain ? '/aliases' : null, { domain });
  const [source, setSource] = useState('');
  const [destinations, setDestinations] = useState('');
  const save = useSubmit();
  const del = useSubmit();
  return (
    <section>
      <h1>Aliases</h1>
      <DomainSelect me={props.me} value={domain} onChange={setDomain} />
      {canWrite ? (
        <form
          class="inline"
          aria-label="Add or replace an alias"
          onSubmit={(e) => {
            e.preventDefault();
            const src = source.includes('@') ? source.trim() : `${source.trim()}@${domain}`;
            void save.run(async () => {
              await api<Alias>('PUT', `/aliases/${seg(src)}`, { destinations: split(destinations) });
              setSource('');
              setDestinations('');
              list.reload();
            });
          }}
        >
          <Field label="Alias" hint={`name@${domain || 'domain'}`} error={save.fieldError('source')}>
            <Input name="source" required value={source} set={setSource} />
          </Field>
          <Field
            label="Destinations"
            hint="addresses, separated by commas or spaces; replaces the alias's set"
            error={save.fieldError('destinations')}
          >
            <Input name="destinations" required value={destinations} set={setDestinations} />
          </Field>
          <button type="submit" disabled={save.busy || !domain}>
            Save alias
          </button>
          <ProblemBox problem={save.problem} fields={['source', 'destinations']} />
        </form>
      ) : null}
      <ProblemBox problem={list.problem ?? del.problem} />
      {domain && !list.loaded && !list.problem ? <Loading what="aliases" /> : null}
      <Table caption={`Aliases of ${domain}`} columns={['Alias', 'Destinations']} actions={canWrite}>
        {list.items.map((a) => (
          <tr key={a.source}>
            <th scope="row">{a.source}</th>
            <td>{a.destinations.join(', ')}</td>
            {canWrite ? (
              <td class="actions">
                <button
                  type="button"
                  class="secondary"
                  onClick={() => {
                    setSource(a.source);
                    setDestinations(a.destinations.join(', '));
                  }}
                >
                  Edit
                </button>
                <ConfirmButton
                  label="Delete"
                  confirm={`Delete ${a.source}?`}
                  onConfirm={() => void del.run(() => api('DELETE', `/aliases/${seg(a.source)}`)).then(list.reload)}
                />
              </td>
            ) : null}
          </tr>
        ))}
      </Table>
      {list.loaded && list.items.length === 0 ? <p class="muted">No aliases in {domain}.</p> : null}
      <MoreButton next={list.next} onMore={() => void list.loadMore()} />
    </section>
  );
}
