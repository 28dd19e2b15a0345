// The domain a list is about: any domain for admin and readonly (from GET /domains), the own
// domain for a domain token.
import { useEffect } from 'preact/hooks';
import type { Domain, Me } from '../api.ts';
import { Field, useList } from '../ui.tsx';

export function DomainSelect(props: { me: Me; value: string; onChange: (d: string) => void }) {
  const own = props.me.role === 'domain' ? props.me.domain : null;
  const list = useList<Domain>(own ? null : '/domains');
  const { value, onChange } = props;
  const first = list.items[0]?.name;
  useEffect(() => {
    if (own && value !== own) onChange(own);
    else if (!own && value === '' && first) onChange(first);
  }, [own, value, first, onChange]);
  if (own) return <p>Domain: {own}</p>;
  return (
    <Field label="Domain">
      <select name="domain" value={value} onChange={(e) => onChange(e.currentTarget.value)}>
        {list.items.length === 0 ? <option value="">no domain</option> : null}
        {list.items.map((d) => (
          <option key={d.name} value={d.name}>
            {d.name}
          </option>
        ))}
      </select>
    </Field>
  );
}
