/**
 * The edge-function toolkit: W3C trace context and spans (from the shared
 * core in ../trace-context), CORS and error responses, JSON input checks,
 * event emission and span recording (the Postgres writers in ../store), head
 * sampling, plus the withTracing wrapper that ties them together for one
 * request. The example functions live in ./functions and are imported from
 * there.
 */
export * from '../trace-context/index.ts';
export * from './error-response.ts';
export * from './json-input.ts';
export * from '../store/emit-event.ts';
export * from '../store/record-span.ts';
export * from './sampling.ts';
export * from './sampling-source.ts';
export * from './with-tracing.ts';
