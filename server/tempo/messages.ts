// The trace-by-id answers of the Tempo query API, in protobuf
// (./proto/tracegres/tempo/trace_by_id.proto, which embeds OTLP's spans)
// and in JSON.
//
// JSON: v1 answers `{batches: [ResourceSpans]}` and v2
// `{trace: {resourceSpans: [...]}, status}`, both in OTLP/JSON's shape (hex
// ids, 64-bit integers as strings), as server/otlp/protocol.ts writes it.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadProtoRoot, withIdBytes, type OtlpResourceSpans } from '../otlp/protocol.ts';

const root = loadProtoRoot([path.join(path.dirname(fileURLToPath(import.meta.url)), 'proto', 'tracegres', 'tempo', 'trace_by_id.proto')]);
export const TempoTrace = root.lookupType('tracegres.tempo.Trace');
export const TraceByIDResponse = root.lookupType('tracegres.tempo.TraceByIDResponse');

export type TraceApiVersion = 'v1' | 'v2';

export interface FoundTrace {
  resourceSpans: OtlpResourceSpans[];
  /** Set when the answer holds only part of the trace's spans. */
  partial?: string;
}

export function encodeTraceProtobuf(trace: FoundTrace, version: TraceApiVersion): Uint8Array {
  const spans = { resourceSpans: withIdBytes(trace.resourceSpans) };
  if (version === 'v1') return TempoTrace.encode(TempoTrace.fromObject(spans)).finish();
  const response = {
    trace: spans,
    ...(trace.partial ? { status: 1, message: trace.partial } : {}),
  };
  return TraceByIDResponse.encode(TraceByIDResponse.fromObject(response)).finish();
}

export function traceJson(trace: FoundTrace, version: TraceApiVersion): unknown {
  if (version === 'v1') return { batches: trace.resourceSpans };
  return {
    trace: { resourceSpans: trace.resourceSpans },
    status: trace.partial ? 'PARTIAL' : 'COMPLETE',
    ...(trace.partial ? { message: trace.partial } : {}),
  };
}
