import { useEffect, useState } from 'react';
import { ErrorWithCorrelation, copyText, type CopyState } from '../../ts/client/error-with-correlation.tsx';
import { TokenRejectedError } from './api.ts';

/** A copy-to-clipboard button for one id; the id itself stays selectable. */
export function CopyButton({ value, label }: { value: string; label: string }) {
  const [state, setState] = useState<CopyState>('idle');
  useEffect(() => {
    if (state === 'idle') return;
    const timer = setTimeout(() => setState('idle'), 2000);
    return () => clearTimeout(timer);
  }, [state]);
  return (
    <button
      type="button"
      className="copy"
      data-state={state}
      aria-label={`Copy ${label}`}
      title={`Copy ${label}`}
      onClick={(event) => {
        // Inside a clickable row, copying must not also open the row.
        event.stopPropagation();
        void copyText(value).then(setState);
      }}
    >
      {state === 'copied' ? 'Copied' : state === 'failed' ? 'Copy failed' : 'Copy'}
    </button>
  );
}

/** An id in monospace with its copy button; `href` makes it a link to its view. */
export function Id({ value, label, href, short }: { value: string | null | undefined; label: string; href?: string; short?: boolean }) {
  if (!value) return <span className="muted">–</span>;
  const text = short ? `${value.slice(0, 8)}…` : value;
  return (
    <span className="id">
      {href ? (
        <a href={href} data-id={value} title={value} onClick={(e) => e.stopPropagation()}>
          <code>{text}</code>
        </a>
      ) : (
        <code title={value}>{text}</code>
      )}
      <CopyButton value={value} label={label} />
    </span>
  );
}

/** What the dashboard shows when a query fails: the toolkit's error display. */
export function QueryFailure({ error }: { error: unknown }) {
  if (error instanceof TokenRejectedError) return null; // App signs out and says why.
  const e = error as { message?: string; correlationId?: string | null; traceId?: string | null; status?: number | null };
  return (
    <ErrorWithCorrelation
      className="query-error"
      // The dashboard's users are engineers: the trace id of the failed
      // request is worth showing them.
      environment="development"
      error={{
        message: e.message ?? String(error),
        correlationId: e.correlationId ?? null,
        traceId: e.traceId ?? null,
        status: e.status ?? null,
      }}
    />
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="loading" role="status">
      Loading {what}…
    </p>
  );
}
