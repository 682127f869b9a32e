/**
 * The edge-function toolkit: W3C trace context, spans, CORS and error
 * responses, event emission and span recording, plus the withTracing
 * wrapper that ties them together for one request.
 */
export * from './tracing-context.ts';
export * from './error-response.ts';
export * from './emit-event.ts';
export * from './record-span.ts';
export * from './with-tracing.ts';
