// The messages of Jaeger's remote storage API (./proto/storage.proto), which
// embeds OTLP's TracesData from server/otlp/proto.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type protobuf from 'protobufjs';
import { loadProtoRoot } from '../otlp/protocol.ts';

const root = loadProtoRoot([path.join(path.dirname(fileURLToPath(import.meta.url)), 'proto', 'storage.proto')]);
const type = (name: string) => root.lookupType(`jaeger.storage.v2.${name}`);

export const messages = {
  GetTracesRequest: type('GetTracesRequest'),
  GetServicesRequest: type('GetServicesRequest'),
  GetServicesResponse: type('GetServicesResponse'),
  GetOperationsRequest: type('GetOperationsRequest'),
  GetOperationsResponse: type('GetOperationsResponse'),
  FindTracesRequest: type('FindTracesRequest'),
  FindTraceIDsResponse: type('FindTraceIDsResponse'),
  GetDependenciesRequest: type('GetDependenciesRequest'),
  GetDependenciesResponse: type('GetDependenciesResponse'),
  TracesData: root.lookupType('opentelemetry.proto.trace.v1.TracesData'),
};

/** google.protobuf.Timestamp and Duration as protobufjs gives them (longs as strings). */
export interface Seconds {
  seconds?: string | number;
  nanos?: number;
}

export interface AttributeValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string;
  doubleValue?: number;
  bytesValue?: Uint8Array;
  arrayValue?: { values?: AttributeValue[] };
  kvlistValue?: { values?: Array<{ key: string; value?: AttributeValue }> };
}

export interface TraceQuery {
  serviceName?: string;
  operationName?: string;
  attributes?: Array<{ key: string; value?: AttributeValue }>;
  startTimeMin?: Seconds;
  startTimeMax?: Seconds;
  durationMin?: Seconds;
  durationMax?: Seconds;
  searchDepth?: number;
}

/** Decodes a request message into a plain object: longs as strings, bytes as Buffers. */
export function decode<T>(message: protobuf.Type, bytes: Buffer): T {
  return message.toObject(message.decode(bytes), { longs: String, defaults: false }) as T;
}

export function encode(message: protobuf.Type, value: Record<string, unknown>): Buffer {
  return Buffer.from(message.encode(message.fromObject(value)).finish());
}

export function toDate(value: Seconds | undefined): Date | undefined {
  if (!value || (!Number(value.seconds ?? 0) && !value.nanos)) return undefined;
  return new Date(Number(value.seconds ?? 0) * 1000 + Math.floor((value.nanos ?? 0) / 1e6));
}

export function toMilliseconds(value: Seconds | undefined): number | undefined {
  if (!value || (!Number(value.seconds ?? 0) && !value.nanos)) return undefined;
  return Number(value.seconds ?? 0) * 1000 + (value.nanos ?? 0) / 1e6;
}

export function fromDate(date: Date): Seconds {
  const ms = date.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}
