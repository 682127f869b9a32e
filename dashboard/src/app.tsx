import { useEffect, useState, type FormEvent } from 'react';
import { Alerts } from './alerts.tsx';
import { graphql, tokenStore, TOKEN_REJECTED_EVENT, TokenRejectedError, type ApiEvent } from './api.ts';
import { Loading, QueryFailure } from './common.tsx';
import { CompareTraces } from './compare.tsx';
import { recogniseId } from './ids.ts';
import { linkProps, navigate, useLocation } from './router.ts';
import { OperationFlameGraph } from './operation-flame-graph.tsx';
import { ReplayRunView, ReplayView } from './replay.tsx';
import { Services } from './services.tsx';
import { TraceSearch } from './trace-search.tsx';
import { CorrelationView, FailedEvents, SessionView, TraceView } from './views.tsx';

export function App() {
  const [token, setToken] = useState<string | null>(() => tokenStore.get());
  const [denied, setDenied] = useState<string | null>(null);

  // A query answered 401 (token expired or replaced): back to sign-in, saying why.
  useEffect(() => {
    const onRejected = (event: Event) => signOut(`Signed out: ${(event as CustomEvent<string>).detail}`);
    addEventListener(TOKEN_REJECTED_EVENT, onRejected);
    return () => removeEventListener(TOKEN_REJECTED_EVENT, onRejected);
  });
  const signOut = (reason: string | null = null) => {
    tokenStore.clear();
    setToken(null);
    setDenied(reason);
  };

  if (!token) {
    return (
      <SignIn
        denied={denied}
        onSignedIn={(value) => {
          tokenStore.set(value);
          setDenied(null);
          setToken(value);
        }}
        onDenied={setDenied}
      />
    );
  }
  return <Shell onSignOut={() => signOut()} onRejected={(message) => signOut(message)} />;
}

function SignIn({
  denied,
  onSignedIn,
  onDenied,
}: {
  denied: string | null;
  onSignedIn(token: string): void;
  onDenied(message: string): void;
}) {
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const [devToken, setDevToken] = useState<string | null>(null);
  const [failure, setFailure] = useState<unknown>(null);

  // The embedded default (npm start without a configured secret) offers its
  // local admin token, so the page works on first start.
  useEffect(() => {
    fetch('/dev-token', { headers: { accept: 'application/json' } })
      .then((response) => (response.ok && response.headers.get('content-type')?.includes('json') ? response.json() : null))
      .then((body: { token?: string } | null) => setDevToken(body?.token ?? null))
      .catch(() => setDevToken(null));
  }, []);

  const tryToken = async (token: string) => {
    setBusy(true);
    setFailure(null);
    try {
      // Any query checks the token: the server answers 401 when it does not verify.
      await graphql<{ __typename: string }>('{ __typename }', {}, token);
      onSignedIn(token);
    } catch (error) {
      if (error instanceof TokenRejectedError) onDenied(`Access denied: ${error.message}`);
      else setFailure(error);
    } finally {
      setBusy(false);
    }
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const token = value.trim().replace(/^Bearer\s+/i, '');
    if (token) void tryToken(token);
  };

  return (
    <main className="sign-in">
      <h1>tracegres trace explorer</h1>
      <form onSubmit={submit} aria-labelledby="sign-in-heading">
        <h2 id="sign-in-heading">Sign in</h2>
        <p>
          Paste an access token (a JWT with role <code>reader</code> or <code>admin</code>). It is kept in this tab only.
        </p>
        <label htmlFor="token">Access token</label>
        <textarea
          id="token"
          name="token"
          rows={4}
          value={value}
          onChange={(e) => setValue(e.target.value)}
          spellCheck={false}
          autoComplete="off"
          required
        />
        {denied && (
          <p className="denied" role="alert">
            {denied}
          </p>
        )}
        {failure ? <QueryFailure error={failure} /> : null}
        <div className="actions">
          <button type="submit" disabled={busy}>
            Sign in
          </button>
          {devToken && (
            <button type="button" className="secondary" disabled={busy} onClick={() => void tryToken(devToken)}>
              Use the local development token
            </button>
          )}
        </div>
        {devToken && <p className="muted">This server runs the embedded development database; its local admin token is offered here.</p>}
      </form>
    </main>
  );
}

function Shell({ onSignOut, onRejected }: { onSignOut(): void; onRejected(message: string): void }) {
  const { path, params } = useLocation();
  const [demoAvailable, setDemoAvailable] = useState(false);
  const [demoState, setDemoState] = useState<string | null>(null);

  useEffect(() => {
    // The demo button exists where the development routes do (see SignIn).
    fetch('/dev-token', { headers: { accept: 'application/json' } }).then(
      (r) => setDemoAvailable(r.ok && r.headers.get('content-type')?.includes('json') === true),
      () => {},
    );
  }, []);

  const loadDemo = async () => {
    setDemoState('Loading demo data…');
    try {
      const response = await fetch('/dev/demo-data', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      if (!response.ok) throw new Error(`the server answered ${response.status}`);
      const demo = (await response.json()) as { failedRequest: { correlationId: string }; requests: unknown[] };
      setDemoState(`Loaded ${demo.requests.length} requests. Try the failed one: correlation id ${demo.failedRequest.correlationId}`);
      navigate(`/correlation/${demo.failedRequest.correlationId}`);
    } catch (error) {
      setDemoState(`Could not load the demo data: ${(error as Error).message}`);
    }
  };

  let page;
  const [, section, id] = path.split('/');
  if (path === '/' || path === '') page = <FailedEvents params={params} />;
  else if (section === 'traces') page = <TraceSearch key={params.toString()} params={params} />;
  else if (section === 'services') page = <Services />;
  else if (section === 'compare') page = <CompareTraces key={params.toString()} params={params} />;
  else if (section === 'flame') page = <OperationFlameGraph key={params.toString()} params={params} />;
  else if (section === 'replay' && id === 'run' && path.split('/')[3]) page = <ReplayRunView key={path} runId={path.split('/')[3]!} />;
  else if (section === 'replay') page = <ReplayView key={params.toString()} params={params} />;
  else if (section === 'alerts') page = <Alerts />;
  else if (section === 'trace' && id) page = <TraceView key={id} traceId={id.toLowerCase()} />;
  else if (section === 'session' && id) page = <SessionView key={id} sessionId={id} />;
  else if (section === 'correlation' && id) page = <CorrelationView key={id} correlationId={id} />;
  else if (section === 'search') page = <SearchResult key={params.get('q') ?? ''} query={params.get('q') ?? ''} onRejected={onRejected} />;
  else
    page = (
      <p className="empty">
        There is no page at {path}. <a {...linkProps('/')}>Failed events</a>
      </p>
    );

  return (
    <>
      <header className="top">
        <a className="brand" {...linkProps('/')}>
          tracegres
        </a>
        <nav aria-label="Main">
          <a {...linkProps('/')} aria-current={path === '/' ? 'page' : undefined}>
            Failed events
          </a>
          <a {...linkProps('/traces')} aria-current={section === 'traces' ? 'page' : undefined}>
            Find traces
          </a>
          <a {...linkProps('/services')} aria-current={section === 'services' ? 'page' : undefined}>
            Services
          </a>
          <a {...linkProps('/replay')} aria-current={section === 'replay' ? 'page' : undefined}>
            Replay
          </a>
          <a {...linkProps('/alerts')} aria-current={section === 'alerts' ? 'page' : undefined}>
            Alerts
          </a>
        </nav>
        <SearchBox initial={section === 'search' ? (params.get('q') ?? '') : ''} />
        <div className="top-actions">
          {demoAvailable && (
            <button type="button" className="secondary" onClick={() => void loadDemo()}>
              Load demo data
            </button>
          )}
          <button type="button" className="secondary" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      {demoState && (
        <p className="banner" role="status">
          {demoState}
        </p>
      )}
      <main className="page">{page}</main>
    </>
  );
}

/** One box for any id, plus a field per id kind. */
function SearchBox({ initial }: { initial: string }) {
  const [value, setValue] = useState(initial);
  const [message, setMessage] = useState<string | null>(null);
  useEffect(() => setValue(initial), [initial]);
  const go = (event: FormEvent) => {
    event.preventDefault();
    const found = recogniseId(value);
    if (found.kind === 'invalid') return setMessage(found.reason);
    setMessage(null);
    navigate(found.kind === 'trace' ? `/trace/${found.id}` : `/search?q=${found.id}`);
  };
  const field = (kind: 'correlation' | 'session' | 'trace') => (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const raw = String(new FormData(event.currentTarget).get('id') ?? '');
    const found = recogniseId(raw);
    const ok = kind === 'trace' ? found.kind === 'trace' : found.kind === 'uuid';
    if (!ok) return setMessage(kind === 'trace' ? 'A trace id is 32 hex digits.' : `A ${kind} id is a uuid.`);
    setMessage(null);
    navigate(`/${kind}/${found.kind === 'invalid' ? '' : found.id}`);
  };
  return (
    <div className="search">
      <form role="search" onSubmit={go}>
        <label htmlFor="search-any" className="visually-hidden">
          Correlation, session or trace id
        </label>
        <input
          id="search-any"
          type="search"
          value={value}
          onChange={(e) => setValue(e.target.value)}
          placeholder="Correlation, session or trace id"
          spellCheck={false}
          autoComplete="off"
        />
        <button type="submit">Search</button>
      </form>
      <details className="search-fields">
        <summary>Search by field</summary>
        {(['correlation', 'session', 'trace'] as const).map((kind) => (
          <form key={kind} onSubmit={field(kind)} className="search-field">
            <label>
              {kind[0]!.toUpperCase() + kind.slice(1)} id
              <input
                name="id"
                type="text"
                spellCheck={false}
                autoComplete="off"
                placeholder={kind === 'trace' ? '32 hex digits' : 'uuid'}
                data-field={kind}
              />
            </label>
            <button type="submit">Find</button>
          </form>
        ))}
      </details>
      {message && (
        <p className="search-message" role="alert">
          {message}
        </p>
      )}
    </div>
  );
}

/** A uuid is a correlation id or a session id; the data says which. */
function SearchResult({ query, onRejected }: { query: string; onRejected(message: string): void }) {
  const [state, setState] = useState<{ error?: unknown; none?: boolean }>({});
  useEffect(() => {
    const found = recogniseId(query);
    if (found.kind === 'trace') return navigate(`/trace/${found.id}`);
    if (found.kind === 'invalid') return setState({ error: new Error(found.reason) });
    let cancelled = false;
    graphql<{ byCorrelation: { nodes: Pick<ApiEvent, 'rowId'>[] }; bySession: { nodes: Pick<ApiEvent, 'rowId'>[] } }>(
      `
        query Recognise($id: UUID!) {
          byCorrelation: getEventsByCorrelation(pCorrelationId: $id, pFirst: 1) {
            nodes {
              rowId
            }
          }
          bySession: getEventsBySession(pSessionId: $id, pFirst: 1) {
            nodes {
              rowId
            }
          }
        }
      `,
      { id: found.id },
    ).then(
      (data) => {
        if (cancelled) return;
        // replaceState: Back should skip this in-between page.
        const to = data.byCorrelation.nodes.length
          ? `/correlation/${found.id}`
          : data.bySession.nodes.length
            ? `/session/${found.id}`
            : null;
        if (to) {
          history.replaceState(null, '', to);
          dispatchEvent(new PopStateEvent('popstate'));
        } else setState({ none: true });
      },
      (error) => {
        if (cancelled) return;
        if (error instanceof TokenRejectedError) onRejected(error.message);
        else setState({ error });
      },
    );
    return () => {
      cancelled = true;
    };
  }, [query, onRejected]);
  if (state.error) return <QueryFailure error={state.error} />;
  if (state.none)
    return (
      <p className="empty">
        Nothing found: no events have <code>{query}</code> as their correlation id or session id (or none you may see).
      </p>
    );
  return <Loading what="search results" />;
}
