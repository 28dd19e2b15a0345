// Log in with an API token (checked with GET /me) or with a user's address and password
// (POST /login: a 12-hour session token for self-service).
import { useState } from 'preact/hooks';
import { api, type LoginAnswer, type Me, type Problem } from '../api.ts';
import { Field, Input, ProblemBox, useSubmit } from '../ui.tsx';

export function LoginPage(props: { notice: Problem | null; onLogin: (token: string) => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [token, setToken] = useState('');
  const pw = useSubmit();
  const tk = useSubmit();
  return (
    <main class="login">
      <h1>arcline admin</h1>
      <ProblemBox problem={props.notice} />
      <form
        aria-labelledby="login-user"
        onSubmit={(e) => {
          e.preventDefault();
          void pw.run(async () => {
            const r = await api<LoginAnswer>('POST', '/login', { username, password }, null);
            props.onLogin(r.token);
          });
        }}
      >
        <h2 id="login-user">Log in with your mail account</h2>
        <Field label="Address" error={pw.fieldError('username')}>
          <Input name="username" type="email" autocomplete="username" required value={username} set={setUsername} />
        </Field>
        <Field label="Password" error={pw.fieldError('password')}>
          <Input
            name="password"
            type="password"
            autocomplete="current-password"
            required
            value={password}
            set={setPassword}
          />
        </Field>
        <ProblemBox problem={pw.problem} fields={['username', 'password']} />
        <button type="submit" disabled={pw.busy}>
          Log in
        </button>
      </form>
      <form
        aria-labelledby="login-token"
        onSubmit={(e) => {
          e.preventDefault();
          void tk.run(async () => {
            const t = token.trim();
            await api<Me>('GET', '/me', undefined, t);
            props.onLogin(t);
          });
        }}
      >
        <h2 id="login-token">Log in with an API token</h2>
        <Field label="API token" hint="From `arcline token add --role admin`" error={tk.fieldError('token')}>
          <Input
            name="token"
            type="password"
            autocomplete="off"
            spellcheck={false}
            required
            value={token}
            set={setToken}
          />
        </Field>
        <ProblemBox problem={tk.problem} fields={['token']} />
        <button type="submit" disabled={tk.busy}>
          Log in with token
        </button>
      </form>
    </main>
  );
}
