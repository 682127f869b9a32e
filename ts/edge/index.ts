/**
 * The edge-function toolkit: W3C trace context, spans, CORS and error
 * responses, JSON input checks, event emission, span recording and head
 * sampling, plus the withTracing wrapper that ties them together for one
 * request. The example functions live in ./functions and are imported from
 * there.
 */
export * from './tracing-context.ts';
export * from './error-response.ts';
export * from './json-input.ts';
export * from './emit-event.ts';
export * from './record-span.ts';
export * from './sampling.ts';
export * from './sampling-source.ts';
export * from './with-tracing.ts';
