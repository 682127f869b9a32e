/**
 * The trace-context core every runtime imports (browser, edge functions,
 * Temporal workers, the OTLP server and the CLI): W3C Trace Context ids,
 * traceparent and tracestate, extraction of an incoming request's context,
 * spans, the header names and the span record that tracing.record_spans
 * takes. Web-standard code only, one concern per module.
 */
export * from './headers.ts';
export * from './ids.ts';
export * from './traceparent.ts';
export * from './tracestate.ts';
export * from './extract.ts';
export * from './span.ts';
export * from './span-record.ts';
export * from './postgres-json.ts';
