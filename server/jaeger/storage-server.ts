// Jaeger remote storage (Jaeger's storage API v2 over gRPC): Jaeger's query
// service and UI, and Grafana's Jaeger data source through it, read
// tracegres. TraceReader serves traces, services, operations and searches;
// DependencyReader the service map. Writes come as OTLP (ingest-grpc.ts).
//
// Each call runs in a read-only transaction as the role of its caller
// (callers.ts), so row-level security keeps organizations apart exactly as
// for GraphQL.
import * as grpc from '@grpc/grpc-js';
import { listenGrpc } from '../grpc-listen.ts';
import type postgres from 'postgres';
import { spansToOtlpRequest, type StoredSpan } from '../otlp/mapping.ts';
import { encodeRequestProtobuf } from '../otlp/protocol.ts';
import { decode, encode, fromDate, messages, toDate, type TraceQuery } from './messages.ts';
import { CallerProblem, type JaegerCallers } from './callers.ts';
import { MAX_WINDOW_MS, toTraceSearch, TraceQueryError } from './trace-query.ts';

/** Trace ids one GetTraces call may ask for. */
const MAX_TRACE_IDS = 100;
/** Spans of one trace per TracesData message: a large trace spans several, consecutive ones. */
const SPANS_PER_MESSAGE = 1000;
/** Bytes of one streamed message: under the 4 MiB a Go gRPC client (Jaeger) accepts by default. */
const MAX_MESSAGE_BYTES = 2 * 1024 * 1024;
/** Where services and operations are looked for: the search window. */
const CATALOG_WINDOW_MS = MAX_WINDOW_MS;

type Handler = grpc.handleUnaryCall<Buffer, Buffer> | grpc.handleServerStreamingCall<Buffer, Buffer>;

function method(service: string, name: string, responseStream: boolean): grpc.MethodDefinition<Buffer, Buffer> {
  const identity = (bytes: Buffer) => bytes;
  return {
    path: `/jaeger.storage.v2.${service}/${name}`,
    requestStream: false,
    responseStream,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

const traceReader: grpc.ServiceDefinition = {
  GetTraces: method('TraceReader', 'GetTraces', true),
  GetServices: method('TraceReader', 'GetServices', false),
  GetOperations: method('TraceReader', 'GetOperations', false),
  FindTraces: method('TraceReader', 'FindTraces', true),
  FindTraceIDs: method('TraceReader', 'FindTraceIDs', false),
};
const dependencyReader: grpc.ServiceDefinition = {
  GetDependencies: method('DependencyReader', 'GetDependencies', false),
};

export interface JaegerStorageServer {
  address: string;
  close(): Promise<void>;
}

export async function startJaegerStorageServer(options: {
  callers: JaegerCallers;
  host: string;
  port: number;
  log: (message: string) => void;
}): Promise<JaegerStorageServer> {
  const { callers, log } = options;
  const server = new grpc.Server({
    // Requests are small (ids and a query); anything bigger is not Jaeger's.
    'grpc.max_receive_message_length': 1024 * 1024,
    'grpc.max_connection_idle_ms': 5 * 60_000,
    // Channelz (gRPC's live introspection) books every call; nothing here reads it.
    'grpc.enable_channelz': 0,
  });

  /** Runs one call as its caller, mapping failures to gRPC statuses. */
  function unary(handle: (sql: postgres.TransactionSql, request: Buffer) => Promise<Buffer>): grpc.handleUnaryCall<Buffer, Buffer> {
    return (call, callback) => {
      callers
        .read(call.metadata, (sql) => handle(sql, call.request))
        .then(
          (response) => callback(null, response),
          (error: unknown) => callback(toStatus(error)),
        );
    };
  }
  function streaming(
    handle: (sql: postgres.TransactionSql, request: Buffer, write: (chunk: Buffer) => Promise<void>) => Promise<void>,
  ): grpc.handleServerStreamingCall<Buffer, Buffer> {
    return (call) => {
      // Waits for the client to take a chunk before the next is encoded, so
      // a slow reader holds one chunk in memory, not the whole answer.
      // A cancelled call stops the reading (and its transaction) there.
      const write = (chunk: Buffer) =>
        new Promise<void>((resolve, reject) => {
          if (call.cancelled) return reject(new CallerProblem(grpc.status.CANCELLED, 'the call was cancelled'));
          if (call.write(chunk)) return resolve();
          const settle = () => {
            call.off('drain', settle);
            call.off('cancelled', settle);
            if (call.cancelled) reject(new CallerProblem(grpc.status.CANCELLED, 'the call was cancelled'));
            else resolve();
          };
          call.on('drain', settle);
          call.on('cancelled', settle);
        });
      callers
        .read(call.metadata, (sql) => handle(sql, call.request, write))
        .then(
          () => call.end(),
          // grpc-js sends an 'error' event's code and details as the call's status.
          (error: unknown) => call.emit('error', toStatus(error)),
        );
    };
  }
  function toStatus(error: unknown): Partial<grpc.StatusObject> {
    if (error instanceof CallerProblem) return { code: error.code, details: error.message };
    if (error instanceof TraceQueryError) return { code: grpc.status.INVALID_ARGUMENT, details: error.message };
    const pgError = error as { code?: string; message?: string };
    // Bad input the database named (class 22), and statements cut by their timeout.
    if (pgError.code?.startsWith('22')) return { code: grpc.status.INVALID_ARGUMENT, details: pgError.message };
    if (pgError.code === '57014') return { code: grpc.status.DEADLINE_EXCEEDED, details: 'the query took too long and was cancelled' };
    log(`jaeger storage: ${pgError.message ?? String(error)}`);
    return { code: grpc.status.UNAVAILABLE, details: 'the span store is unavailable; retry later' };
  }

  const handlers: Record<string, Handler> = {
    GetTraces: streaming(async (sql, request, write) => {
      const { query = [] } = decode<{ query?: Array<{ traceId?: Buffer }> }>(messages.GetTracesRequest, request);
      if (query.length > MAX_TRACE_IDS) throw new TraceQueryError(`at most ${MAX_TRACE_IDS} trace ids per call, got ${query.length}`);
      // An id that is not 16 bytes, or all zeros, names no trace: ignored, as unknown ids are.
      const ids = query.map((q) => Buffer.from(q.traceId ?? []).toString('hex')).filter((id) => /^(?!0{32})[0-9a-f]{32}$/.test(id));
      await writeTraces(sql, ids, write);
    }),
    GetServices: unary(async (sql) => {
      const window = catalogWindow();
      const rows = await sql<{ service: string }[]>`
        select distinct service from tracing.span_operations(${window.from}, ${window.to}) order by 1`;
      return encode(messages.GetServicesResponse, { services: rows.map((r) => r.service) });
    }),
    GetOperations: unary(async (sql, request) => {
      const { service = '', spanKind = '' } = decode<{ service?: string; spanKind?: string }>(messages.GetOperationsRequest, request);
      const window = catalogWindow();
      const rows = await sql<{ name: string; kind: string }[]>`
        select name, kind from tracing.span_operations(${window.from}, ${window.to})
         where service = ${service} and (${spanKind} = '' or kind = ${spanKind})
         order by 1, 2`;
      return encode(messages.GetOperationsResponse, { operations: rows.map((r) => ({ name: r.name, spanKind: r.kind })) });
    }),
    FindTraces: streaming(async (sql, request, write) => {
      const found = await findTraces(sql, request);
      await writeTraces(
        sql,
        found.map((t) => t.trace_id),
        write,
      );
    }),
    FindTraceIDs: unary(async (sql, request) => {
      const found = await findTraces(sql, request);
      return encode(messages.FindTraceIDsResponse, {
        traceIds: found.map((t) => ({
          traceId: Buffer.from(t.trace_id, 'hex'),
          start: fromDate(t.start_time),
          end: fromDate(new Date(t.start_time.getTime() + Math.ceil(t.duration_ms))),
        })),
      });
    }),
  };
  const dependencyHandlers: Record<string, Handler> = {
    GetDependencies: unary(async (sql, request) => {
      const { startTime, endTime } = decode<{ startTime?: never; endTime?: never }>(messages.GetDependenciesRequest, request);
      const to = toDate(endTime) ?? new Date();
      const from = new Date(Math.max(toDate(startTime)?.getTime() ?? 0, to.getTime() - MAX_WINDOW_MS));
      if (from >= to) throw new TraceQueryError('start_time must be before end_time');
      const rows = await sql<{ parent_service: string; child_service: string; call_count: string }[]>`
        select parent_service, child_service, call_count from api.service_map(${from}, ${to})`;
      return encode(messages.GetDependenciesResponse, {
        dependencies: rows.map((r) => ({ parent: r.parent_service, child: r.child_service, callCount: r.call_count, source: 'tracegres' })),
      });
    }),
  };
  server.addService(traceReader, handlers);
  server.addService(dependencyReader, dependencyHandlers);

  return listenGrpc(server, options.host, options.port);
}

function catalogWindow() {
  const to = new Date();
  return { from: new Date(to.getTime() - CATALOG_WINDOW_MS), to };
}

async function findTraces(sql: postgres.TransactionSql, request: Buffer) {
  const { query = {} } = decode<{ query?: TraceQuery }>(messages.FindTracesRequest, request);
  const search = toTraceSearch(query);
  return sql<{ trace_id: string; start_time: Date; duration_ms: number }[]>`
    select trace_id, start_time, duration_ms from api.find_traces(${sql.json(search.filter as postgres.JSONValue)}, ${search.limit}, null, null)`;
}

/**
 * Streams the traces, one TracesData per trace (or per 1,000 of its spans,
 * smaller if that is too many bytes), never an empty one. One trace is read
 * at a time, so memory holds one trace (at most 10,000 spans), not the call's.
 */
async function writeTraces(sql: postgres.TransactionSql, ids: string[], write: (chunk: Buffer) => Promise<void>): Promise<void> {
  for (const id of new Set(ids)) {
    const rows = await sql<StoredSpan[]>`select * from tracing.otlp_trace_spans(array[${id}::uuid])`;
    for (let start = 0; start < rows.length; start += SPANS_PER_MESSAGE) {
      for (const chunk of encodeWithin(rows.slice(start, start + SPANS_PER_MESSAGE))) await write(chunk);
    }
  }
}

/** The spans as TracesData messages of at most MAX_MESSAGE_BYTES (unless one span alone is bigger), halving as needed. */
function encodeWithin(rows: StoredSpan[]): Buffer[] {
  const bytes = Buffer.from(encodeRequestProtobuf(spansToOtlpRequest(rows, { attributes: {} })));
  if (bytes.length <= MAX_MESSAGE_BYTES || rows.length === 1) return [bytes];
  const half = Math.ceil(rows.length / 2);
  return [...encodeWithin(rows.slice(0, half)), ...encodeWithin(rows.slice(half))];
}
