// History routing under /admin/ (the server answers index.html for every route of the app).
import { useEffect, useState } from 'preact/hooks';

export const BASE = '/admin/';

function current(): string {
  const p = location.pathname;
  return p.startsWith(BASE) ? p.slice(BASE.length) : '';
}

const listeners = new Set<() => void>();
window.addEventListener('popstate', () => {
  for (const l of listeners) l();
});

export function navigate(route: string): void {
  history.pushState(null, '', BASE + route);
  for (const l of listeners) l();
}

/** The route: the path after /admin/, e.g. "domains/example.org". */
export function useRoute(): string {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const l = () => setRoute(current());
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, []);
  return route;
}

/** The query parameter `name` of the location (for state worth a link, e.g. ?domain=). */
export function param(name: string): string | null {
  return new URLSearchParams(location.search).get(name);
}
