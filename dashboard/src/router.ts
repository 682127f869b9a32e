// A few lines of history routing: the server answers every page path with
// index.html (SPA fallback), so each view has a URL a support engineer can
// paste into a ticket.
import { useEffect, useState } from 'react';

export function navigate(to: string): void {
  if (to === location.pathname + location.search) return;
  history.pushState(null, '', to);
  dispatchEvent(new PopStateEvent('popstate'));
}

export function useLocation(): { path: string; params: URLSearchParams } {
  const [current, setCurrent] = useState(() => location.pathname + location.search);
  useEffect(() => {
    const update = () => setCurrent(location.pathname + location.search);
    addEventListener('popstate', update);
    return () => removeEventListener('popstate', update);
  }, []);
  const url = new URL(current, location.origin);
  return { path: url.pathname, params: url.searchParams };
}

/** Props for an <a> that navigates in the app but still opens in a new tab on ctrl/middle click. */
export function linkProps(to: string) {
  return {
    href: to,
    onClick(event: { ctrlKey: boolean; metaKey: boolean; shiftKey: boolean; button: number; preventDefault(): void }) {
      if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      navigate(to);
    },
  };
}

/** The page at `path` with its parameters kept and the `live` flag set or cleared: how a page's Live toggle navigates. */
export function liveToggleLink(path: string, params: URLSearchParams, live: boolean): string {
  const next = new URLSearchParams(params);
  if (live) next.set('live', '1');
  else next.delete('live');
  return next.size ? `${path}?${next}` : path;
}
