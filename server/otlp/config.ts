// OTLP settings from the standard OpenTelemetry environment variables
// (OpenTelemetry specification, "OTLP Exporter Configuration"), plus a few
// of tracegres' own for the queue and the ingest endpoint.
import { UUID_PATTERN } from '../../ts/trace-context/headers.ts';
import { positiveInteger } from '../config-values.ts';
import { readPortSetting } from '../port-setting.ts';
import type { Protocol } from './protocol.ts';
import type { ResourceConfig } from './mapping.ts';

export interface OtlpExportConfig {
  /** Full URL the batches are POSTed to. */
  endpoint: string;
  protocol: Protocol;
  headers: Record<string, string>;
  timeoutMs: number;
  gzip: boolean;
  resource: ResourceConfig;
  /** Spans per request (TRACEGRES_OTLP_BATCH_SIZE). */
  batchSize: number;
  /** Requests in flight at once per exporter process (TRACEGRES_OTLP_CONCURRENCY). */
  concurrency?: number;
  /** Queue bound written to tracing.otlp_export_settings when set (TRACEGRES_OTLP_MAX_QUEUED_SPANS). */
  maxQueuedSpans?: number;
  /** How often the status is logged (TRACEGRES_OTLP_STATS_INTERVAL_MS). */
  statsIntervalMs: number;
}

export class OtlpConfigError extends Error {}

/** The export settings, or undefined when no endpoint is configured (export off). */
export function readOtlpExportConfig(env: NodeJS.ProcessEnv = process.env): OtlpExportConfig | undefined {
  const tracesEndpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  const baseEndpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (!tracesEndpoint && !baseEndpoint) return undefined;
  // The signal-specific URL is used as given; the base one gets the
  // signal's path appended (specification: "Endpoint URLs for OTLP/HTTP").
  const endpoint = tracesEndpoint || `${baseEndpoint!.replace(/\/+$/, '')}/v1/traces`;
  try {
    const url = new URL(endpoint);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw new OtlpConfigError(`OTLP endpoint must be an http(s) URL, got ${JSON.stringify(endpoint)}`);
  }

  const protocolSetting = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || env.OTEL_EXPORTER_OTLP_PROTOCOL || 'http/protobuf').trim();
  if (protocolSetting !== 'http/protobuf' && protocolSetting !== 'http/json') {
    throw new OtlpConfigError(
      `OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf or http/json (tracegres does not speak grpc), got ${JSON.stringify(protocolSetting)}`,
    );
  }

  // Signal-specific headers add to (and override) the general ones.
  const headers = {
    ...parseKeyValueList(env.OTEL_EXPORTER_OTLP_HEADERS, 'OTEL_EXPORTER_OTLP_HEADERS'),
    ...parseKeyValueList(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS'),
  };

  const timeoutMs = positiveInteger(
    env.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT || env.OTEL_EXPORTER_OTLP_TIMEOUT,
    'OTEL_EXPORTER_OTLP_TIMEOUT',
    10_000,
    OtlpConfigError,
  );
  const compression = (env.OTEL_EXPORTER_OTLP_TRACES_COMPRESSION || env.OTEL_EXPORTER_OTLP_COMPRESSION || 'none').trim();
  if (compression !== 'none' && compression !== 'gzip') {
    throw new OtlpConfigError(`OTEL_EXPORTER_OTLP_COMPRESSION must be gzip or none, got ${JSON.stringify(compression)}`);
  }

  const resourceAttributes = parseKeyValueList(env.OTEL_RESOURCE_ATTRIBUTES, 'OTEL_RESOURCE_ATTRIBUTES');
  // OTEL_SERVICE_NAME wins over a service.name in OTEL_RESOURCE_ATTRIBUTES.
  const serviceName = env.OTEL_SERVICE_NAME?.trim() || resourceAttributes['service.name'] || undefined;
  delete resourceAttributes['service.name'];

  return {
    endpoint,
    protocol: protocolSetting,
    headers,
    timeoutMs,
    gzip: compression === 'gzip',
    resource: { attributes: resourceAttributes, serviceName },
    batchSize: positiveInteger(env.TRACEGRES_OTLP_BATCH_SIZE, 'TRACEGRES_OTLP_BATCH_SIZE', 1000, OtlpConfigError),
    concurrency: positiveInteger(env.TRACEGRES_OTLP_CONCURRENCY, 'TRACEGRES_OTLP_CONCURRENCY', 2, OtlpConfigError),
    maxQueuedSpans: env.TRACEGRES_OTLP_MAX_QUEUED_SPANS
      ? positiveInteger(env.TRACEGRES_OTLP_MAX_QUEUED_SPANS, 'TRACEGRES_OTLP_MAX_QUEUED_SPANS', 0, OtlpConfigError)
      : undefined,
    statsIntervalMs: positiveInteger(env.TRACEGRES_OTLP_STATS_INTERVAL_MS, 'TRACEGRES_OTLP_STATS_INTERVAL_MS', 60_000, OtlpConfigError),
  };
}

/** W3C Baggage-like `key=value,key2=value2` with percent-encoded values, as OTEL_*_HEADERS and OTEL_RESOURCE_ATTRIBUTES use. */
export function parseKeyValueList(value: string | undefined, name: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!value?.trim()) return out;
  for (const item of value.split(',')) {
    if (!item.trim()) continue;
    const eq = item.indexOf('=');
    if (eq <= 0) throw new OtlpConfigError(`${name} must be a list of key=value pairs separated by commas; "${item.trim()}" is not one`);
    const key = item.slice(0, eq).trim();
    try {
      out[key] = decodeURIComponent(item.slice(eq + 1).trim());
    } catch {
      throw new OtlpConfigError(`${name}: the value of "${key}" is not valid percent-encoding`);
    }
  }
  return out;
}

export interface OtlpIngestConfig {
  /**
   * TRACEGRES_INGEST_TOKEN: a shared secret accepted as a Bearer token, the
   * single-tenant shortcut for tokens made with `tracegres ingest-token create`.
   */
  token?: string;
  /** TRACEGRES_INGEST_ORGANIZATION_ID: the organization TRACEGRES_INGEST_TOKEN's spans belong to; required with it. */
  organizationId?: string;
  /** TRACEGRES_OTLP_MAX_BODY_BYTES: the largest request body (HTTP) or message (gRPC), after decompression. */
  maxBodyBytes: number;
  /**
   * TRACEGRES_OTLP_GRPC_PORT: the OTLP/gRPC port, 4317 (OTLP's default)
   * unless set; 0 picks a free one; `off`: no gRPC server (undefined).
   */
  grpcPort?: number;
}

export function readOtlpIngestConfig(env: NodeJS.ProcessEnv = process.env): OtlpIngestConfig {
  const token = env.TRACEGRES_INGEST_TOKEN || undefined;
  const organizationId = env.TRACEGRES_INGEST_ORGANIZATION_ID || undefined;
  // A token without an organization would let its spans claim any tenant:
  // refuse to start rather than guess.
  if (token && !organizationId) {
    throw new OtlpConfigError('TRACEGRES_INGEST_TOKEN needs TRACEGRES_INGEST_ORGANIZATION_ID, the organization (uuid) its spans belong to');
  }
  if (organizationId && !UUID_PATTERN.test(organizationId)) {
    throw new OtlpConfigError(`TRACEGRES_INGEST_ORGANIZATION_ID must be a uuid, got ${JSON.stringify(organizationId)}`);
  }
  return {
    ...(token ? { token, organizationId } : {}),
    maxBodyBytes: positiveInteger(env.TRACEGRES_OTLP_MAX_BODY_BYTES, 'TRACEGRES_OTLP_MAX_BODY_BYTES', 16 * 1024 * 1024, OtlpConfigError),
    grpcPort: readPortSetting(env.TRACEGRES_OTLP_GRPC_PORT, 'TRACEGRES_OTLP_GRPC_PORT', 4317),
  };
}
