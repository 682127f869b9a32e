/**
 * An error message with the reference id a user can give to support. The
 * reference id is the correlation id, which finds every event of the failed
 * action on the server; developers also see the trace context.
 */
import { type CSSProperties, useEffect, useState } from 'react';
import type { Environment } from './logger.ts';

/** What the component needs from an error; a TracedRequestError fits, so does a plain Error. */
export interface CorrelatedError {
  message: string;
  correlationId?: string | null;
  traceId?: string | null;
  /** HTTP status; null when no response arrived. */
  status?: number | null;
}

export interface ErrorWithCorrelationProps {
  error: CorrelatedError;
  /** Trace ids and statuses mean nothing to end users, so only development shows them. Defaults to production. */
  environment?: Environment;
  className?: string;
}

export type CopyState = 'idle' | 'copied' | 'failed';

/** How long "Copied" stays before the button reads "Copy" again. */
const COPIED_RESET_MS = 2000;

/**
 * Writes `text` to the clipboard. Resolves to "failed" rather than rejecting:
 * the Clipboard API is missing outside secure contexts and may be refused by
 * permissions, and the id stays selectable for copying by hand.
 */
export async function copyText(
  text: string,
  clipboard: Pick<Clipboard, 'writeText'> | undefined = globalThis.navigator?.clipboard,
): Promise<CopyState> {
  if (clipboard === undefined) return 'failed';
  try {
    await clipboard.writeText(text);
    return 'copied';
  } catch {
    return 'failed';
  }
}

const COPY_LABELS: Record<CopyState, string> = {
  idle: 'Copy reference ID',
  copied: 'Copied',
  failed: 'Copy failed, select the ID to copy it',
};

const styles = {
  root: { border: '1px solid #d33', borderRadius: 4, padding: '0.75rem', color: '#611' },
  message: { margin: 0, fontWeight: 600 },
  reference: { margin: '0.5rem 0 0', display: 'flex', gap: '0.5rem', alignItems: 'center', flexWrap: 'wrap' },
  // One click selects the whole id, for when the clipboard is unavailable.
  id: { userSelect: 'all', fontFamily: 'monospace' },
  trace: { margin: '0.5rem 0 0', fontSize: '0.85em', display: 'grid', gridTemplateColumns: 'auto 1fr', gap: '0 0.5rem' },
} satisfies Record<string, CSSProperties>;

export function ErrorWithCorrelation({ error, environment = 'production', className }: ErrorWithCorrelationProps) {
  const [copyState, setCopyState] = useState<CopyState>('idle');
  const referenceId = error.correlationId || null;

  useEffect(() => {
    if (copyState !== 'copied') return;
    const timer = setTimeout(() => setCopyState('idle'), COPIED_RESET_MS);
    return () => clearTimeout(timer);
  }, [copyState]);

  const showTrace = environment !== 'production';

  return (
    <div role="alert" className={['error-with-correlation', className].filter(Boolean).join(' ')} style={styles.root}>
      <p className="error-with-correlation__message" style={styles.message}>
        {error.message || 'Something went wrong.'}
      </p>
      {referenceId !== null && (
        <p className="error-with-correlation__reference" style={styles.reference}>
          <span>Reference ID:</span>
          <code className="error-with-correlation__id" style={styles.id}>
            {referenceId}
          </code>
          <button
            type="button"
            className="error-with-correlation__copy"
            data-state={copyState}
            onClick={() => {
              void copyText(referenceId).then(setCopyState);
            }}
          >
            {COPY_LABELS[copyState]}
          </button>
        </p>
      )}
      {showTrace && (
        <dl className="error-with-correlation__trace" style={styles.trace}>
          <dt>Trace ID</dt>
          <dd>
            <code>{error.traceId || 'unknown'}</code>
          </dd>
          <dt>Status</dt>
          <dd>{error.status == null ? 'no response' : error.status}</dd>
        </dl>
      )}
    </div>
  );
}
