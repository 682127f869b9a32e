import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it, vi } from 'vitest';
import { type ErrorWithCorrelationProps, ErrorWithCorrelation, copyText } from './error-with-correlation.tsx';
import { TracedRequestError } from './traced-fetch.ts';

const CORRELATION_ID = '0f8e2d4c-6b1a-4c3e-9d5f-7a8b9c0d1e2f';
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

const failure = new TracedRequestError('Email already invited', {
  status: 409,
  correlationId: CORRELATION_ID,
  traceId: TRACE_ID,
  url: 'https://example.test/functions/v1/invite-user',
});

function render(props: ErrorWithCorrelationProps): string {
  return renderToStaticMarkup(createElement(ErrorWithCorrelation, props));
}

describe('ErrorWithCorrelation', () => {
  it('announces the message as an alert', () => {
    const html = render({ error: failure });
    expect(html).toMatch(/^<div role="alert"/);
    expect(html).toContain('Email already invited');
  });

  it('shows the correlation id as the reference id, with a copy button', () => {
    const html = render({ error: failure });
    expect(html).toContain('Reference ID:');
    expect(html).toContain(`>${CORRELATION_ID}</code>`);
    expect(html).toMatch(/<button type="button"[^>]*>Copy reference ID<\/button>/);
  });

  it('hides the trace context in production, which is the default', () => {
    for (const html of [render({ error: failure }), render({ error: failure, environment: 'production' })]) {
      expect(html).not.toContain(TRACE_ID);
      expect(html).not.toContain('409');
      expect(html).not.toContain('Trace ID');
    }
  });

  it('shows trace id and status in development', () => {
    const html = render({ error: failure, environment: 'development' });
    expect(html).toContain('Trace ID');
    expect(html).toContain(TRACE_ID);
    expect(html).toMatch(/<dt>Status<\/dt><dd>409<\/dd>/);
    expect(html).toContain(CORRELATION_ID);
  });

  it("says 'no response' for a network failure in development", () => {
    const networkFailure = new TracedRequestError('Network request failed: fetch failed', {
      status: null,
      correlationId: CORRELATION_ID,
      traceId: TRACE_ID,
      url: 'https://example.test/',
    });
    expect(render({ error: networkFailure, environment: 'development' })).toMatch(/<dt>Status<\/dt><dd>no response<\/dd>/);
  });

  it('shows a plain error without a reference id or copy button', () => {
    const html = render({ error: new Error('Something broke') });
    expect(html).toContain('Something broke');
    expect(html).not.toContain('Reference ID');
    expect(html).not.toContain('<button');
  });

  it('falls back to a generic message when the error has none', () => {
    expect(render({ error: { message: '', correlationId: CORRELATION_ID } })).toContain('Something went wrong.');
  });

  it("escapes the server's message", () => {
    const html = render({ error: { message: '<img src=x onerror=alert(1)>', correlationId: CORRELATION_ID } });
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;img');
  });

  it("adds the caller's class name", () => {
    expect(render({ error: failure, className: 'toast' })).toContain('class="error-with-correlation toast"');
  });
});

describe('copyText', () => {
  it('writes the id to the clipboard and reports copied', async () => {
    const writeText = vi.fn(async (_text: string) => {});
    await expect(copyText(CORRELATION_ID, { writeText })).resolves.toBe('copied');
    expect(writeText).toHaveBeenCalledWith(CORRELATION_ID);
  });

  it('reports failed when the clipboard refuses', async () => {
    const writeText = vi.fn(async () => {
      throw new DOMException('Write permission denied.', 'NotAllowedError');
    });
    await expect(copyText(CORRELATION_ID, { writeText })).resolves.toBe('failed');
  });

  it('reports failed where there is no clipboard (insecure contexts)', async () => {
    await expect(copyText(CORRELATION_ID, undefined)).resolves.toBe('failed');
  });
});
