// The shell: the login gate, then the navigation and the page of the route, by role
// (admin and readonly see everything, domain its own domain, user only "my account").
import { useEffect, useState } from 'preact/hooks';
import { api, type Me, type Problem, session, setUnauthorizedHandler, toProblem } from './api.ts';
import { AccountPage } from './pages/account.tsx';
import { AliasesPage } from './pages/aliases.tsx';
import { DashboardPage } from './pages/dashboard.tsx';
import { DomainPage, DomainsPage } from './pages/domains.tsx';
import { LoginPage } from './pages/login.tsx';
import { NetworksPage } from './pages/networks.tsx';
import { QueuePage } from './pages/queue.tsx';
import { UsersPage } from './pages/users.tsx';
import { navigate, useRoute } from './router.ts';
import { Link, Loading, ProblemBox } from './ui.tsx';

interface NavItem {
  readonly route: string;
  readonly label: string;
}

function navFor(me: Me): NavItem[] {
  switch (me.role) {
    case 'admin':
    case 'readonly':
      return [
        { route: '', label: 'Dashboard' },
        { route: 'domains', label: 'Domains' },
        { route: 'users', label: 'Users' },
        { route: 'aliases', label: 'Aliases' },
        { route: 'queue', label: 'Queue' },
        { route: 'networks', label: 'Networks' },
      ];
    case 'domain':
      return [
        { route: `domains/${me.domain ?? ''}`, label: 'Domain' },
        { route: 'users', label: 'Users' },
        { route: 'aliases', label: 'Aliases' },
      ];
    case 'user':
      return [{ route: 'account', label: 'My account' }];
  }
}

function Page(props: { me: Me; route: string }) {
  const { me, route } = props;
  const [head = '', ...rest] = route.split('/');
  const tail = decodeURIComponent(rest.join('/'));
  if (me.role === 'user') return <AccountPage me={me} />;
  switch (head) {
    case '':
      if (me.role === 'domain') return <DomainPage me={me} name={me.domain ?? ''} />;
      return <DashboardPage />;
    case 'domains':
      return tail ? <DomainPage me={me} name={tail} /> : <DomainsPage me={me} />;
    case 'users':
      return <UsersPage me={me} />;
    case 'aliases':
      return <AliasesPage me={me} />;
    case 'queue':
      return <QueuePage me={me} />;
    case 'networks':
      return <NetworksPage me={me} />;
    case 'account':
      return <AccountPage me={me} />;
    default:
      return (
        <section>
          <h1>Not found</h1>
          <p>
            No such page. <Link to="">Back to the start</Link>
          </p>
        </section>
      );
  }
}

export function App() {
  const [token, setToken] = useState(session.token);
  const [me, setMe] = useState<Me | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const route = useRoute();

  const logout = (why: Problem | null) => {
    session.clear();
    setMe(null);
    setToken(null);
    setProblem(why);
  };

  useEffect(
    () => setUnauthorizedHandler(() => logout({ title: 'Your session has ended: log in again', status: 401 })),
    [],
  );

  useEffect(() => {
    if (!token) return;
    api<Me>('GET', '/me').then(setMe, (e: unknown) => logout(toProblem(e)));
  }, [token]);

  if (!token) {
    return (
      <LoginPage
        notice={problem}
        onLogin={(t) => {
          session.set(t);
          setProblem(null);
          setToken(t);
        }}
      />
    );
  }
  if (!me) return <Loading what="your account" />;

  const nav = navFor(me);
  const head = route.split('/')[0] ?? '';
  return (
    <>
      <header class="top">
        <span class="brand">arcline admin</span>
        <nav aria-label="Main">
          <ul>
            {nav.map((n) => (
              <li key={n.route}>
                <Link to={n.route} current={(n.route.split('/')[0] ?? '') === head}>
                  {n.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who">
          {me.user ?? (me.domain ? `${me.role} ${me.domain}` : me.role)}
          <button
            type="button"
            class="secondary"
            onClick={() => {
              // The server ends a login session (an API token stays valid: it is only forgotten here).
              void api('POST', '/logout').catch(() => undefined);
              logout(null);
              navigate('');
            }}
          >
            Log out
          </button>
        </span>
      </header>
      <main>
        <ProblemBox problem={problem} />
        <Page me={me} route={route} />
      </main>
    </>
  );
}
