/**
 * What the example edge functions share: their dependencies, the tracing
 * options built from them, and the responses for a wrong method or bad input.
 */
import type { Sql } from 'postgres';
import { errorResponse } from '../error-response.ts';
import { InputChecker, readJsonObject, type InputIssue } from '../json-input.ts';
import type { Span } from '../../trace-context/span.ts';
import type { WithTracingOptions } from '../with-tracing.ts';

export interface FunctionDependencies {
  /** postgres.js client for events (and, unless recordSpans is false, spans). */
  sql: Sql;
  /** Record the server span through tracing.record_spans; defaults to true. */
  recordSpans?: boolean;
  /** Extra withTracing options (waitUntil, onSpanEnd, cors, ...). */
  tracing?: Omit<WithTracingOptions, 'service' | 'sql'>;
}

export function tracingOptions(service: string, deps: FunctionDependencies): WithTracingOptions {
  return {
    // Every request to one function is one operation; the function's name
    // keeps span names low-cardinality.
    operationName: (request) => `${request.method} ${service}`,
    ...deps.tracing,
    service,
    ...(deps.recordSpans === false ? {} : { sql: deps.sql }),
  };
}

export function badInput(span: Span, issues: InputIssue[], status: 400 | 413 | 415 = 400): Response {
  span.attributes['tracegres.input_issues'] = issues.length;
  return errorResponse(span, status, 'Invalid input', { issues });
}

/**
 * Reads a POST body as a JSON object and hands it to `read`, which pulls the
 * fields out through an InputChecker. Returns the fields, or the error
 * response to send.
 */
export async function readInput<T>(
  request: Request,
  span: Span,
  read: (input: InputChecker) => T,
): Promise<{ ok: true; value: T } | { ok: false; response: Response }> {
  if (request.method !== 'POST') {
    return { ok: false, response: errorResponse(span, 405, 'Method not allowed', undefined, { headers: { allow: 'POST, OPTIONS' } }) };
  }
  const body = await readJsonObject(request);
  if (!body.ok) return { ok: false, response: badInput(span, body.issues, body.status) };
  const checker = new InputChecker(body.value);
  const value = read(checker);
  if (!checker.ok) return { ok: false, response: badInput(span, checker.issues) };
  return { ok: true, value };
}
