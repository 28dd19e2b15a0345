// "My account" for a user login: the mailbox's use against its quota, and a new password.
import { useState } from 'preact/hooks';
import { api, type Me, seg, type User } from '../api.ts';
import { bytes, Loading, NewPasswordField, ProblemBox, useLoad, useSubmit } from '../ui.tsx';

export function AccountPage(props: { me: Me }) {
  const address = props.me.user;
  const { data, problem } = useLoad<User>(address ? `/users/${seg(address)}` : null);
  const [password, setPassword] = useState('');
  const [again, setAgain] = useState('');
  const [done, setDone] = useState(false);
  const save = useSubmit();
  if (!address) return <p>This token belongs to no user.</p>;
  const mismatch = again !== '' && again !== password;
  return (
    <section>
      <h1>My account</h1>
      <p>{address}</p>
      <ProblemBox problem={problem} />
      {!data && !problem ? <Loading what="your mailbox" /> : null}
      {data ? (
        <p>
          Mailbox: {bytes(data.usedBytes)} used
          {data.quotaBytes === null ? ', no quota.' : ` of ${bytes(data.quotaBytes)}.`}
          {data.quotaBytes ? (
            <meter min={0} max={data.quotaBytes} value={data.usedBytes} aria-label="Quota used" />
          ) : null}
        </p>
      ) : null}
      <form
        aria-labelledby="change-password"
        onSubmit={(e) => {
          e.preventDefault();
          if (mismatch) return;
          setDone(false);
          void save.run(async () => {
            await api('PUT', `/users/${seg(address)}/password`, { password });
            setPassword('');
            setAgain('');
            setDone(true);
          });
        }}
      >
        <h2 id="change-password">Change password</h2>
        <NewPasswordField
          label="New password"
          name="new-password"
          value={password}
          set={setPassword}
          error={save.fieldError('password')}
        />
        <NewPasswordField
          label="New password again"
          name="new-password-again"
          value={again}
          set={setAgain}
          error={mismatch ? 'The two passwords differ' : undefined}
        />
        <ProblemBox problem={save.problem} fields={['password']} />
        {done ? (
          <p class="notice" role="status">
            Your password was changed.
          </p>
        ) : null}
        <button type="submit" disabled={save.busy || mismatch}>
          Change password
        </button>
      </form>
    </section>
  );
}
