// The standard OTEL_* variables, read as the OpenTelemetry specification
// describes them.
import { describe, expect, it } from 'vitest';
import { OtlpConfigError, readOtlpExportConfig, readOtlpIngestConfig } from './config.ts';

describe('readOtlpExportConfig', () => {
  it('is off without an endpoint', () => {
    expect(readOtlpExportConfig({})).toBeUndefined();
  });

  it('appends /v1/traces to the base endpoint and uses the traces endpoint as given', () => {
    expect(readOtlpExportConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })!.endpoint).toBe(
      'http://collector:4318/v1/traces',
    );
    expect(
      readOtlpExportConfig({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://traces.example/ingest',
      })!.endpoint,
    ).toBe('https://traces.example/ingest');
  });

  it('reads headers, protocol, timeout, compression, service name and resource attributes', () => {
    const config = readOtlpExportConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20abc, x-team = core ',
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-team=traces',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_TIMEOUT: '2500',
      OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
      OTEL_SERVICE_NAME: 'billing',
      OTEL_RESOURCE_ATTRIBUTES: 'service.name=ignored,deployment.environment.name=prod,team=a%2Cb',
    })!;
    expect(config.headers).toEqual({ authorization: 'Bearer abc', 'x-team': 'traces' });
    expect(config.protocol).toBe('http/json');
    expect(config.timeoutMs).toBe(2500);
    expect(config.gzip).toBe(true);
    expect(config.resource).toEqual({ serviceName: 'billing', attributes: { 'deployment.environment.name': 'prod', team: 'a,b' } });
    expect(config.batchSize).toBe(1000);
    expect(config.concurrency).toBe(2);
  });

  it('defaults to http/protobuf, 10 s, no compression, and service.name from the resource attributes', () => {
    const config = readOtlpExportConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_RESOURCE_ATTRIBUTES: 'service.name=api' })!;
    expect(config).toMatchObject({
      protocol: 'http/protobuf',
      timeoutMs: 10_000,
      gzip: false,
      resource: { serviceName: 'api', attributes: {} },
    });
  });

  it('refuses what it cannot honour, naming the variable', () => {
    const base = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
    expect(() => readOtlpExportConfig({ ...base, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(OtlpConfigError);
    expect(() => readOtlpExportConfig({ ...base, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(/does not speak grpc/);
    expect(() => readOtlpExportConfig({ ...base, OTEL_EXPORTER_OTLP_TIMEOUT: '-1' })).toThrow(
      /OTEL_EXPORTER_OTLP_TIMEOUT must be a positive integer/,
    );
    expect(() => readOtlpExportConfig({ ...base, OTEL_EXPORTER_OTLP_HEADERS: 'novalue' })).toThrow(
      /OTEL_EXPORTER_OTLP_HEADERS must be a list of key=value/,
    );
    expect(() => readOtlpExportConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://c' })).toThrow(/http\(s\) URL/);
    expect(() => readOtlpExportConfig({ ...base, OTEL_EXPORTER_OTLP_COMPRESSION: 'zstd' })).toThrow(/gzip or none/);
  });
});

describe('readOtlpIngestConfig', () => {
  it('reads the ingest token and the body bound', () => {
    expect(readOtlpIngestConfig({})).toEqual({ token: undefined, maxBodyBytes: 16 * 1024 * 1024, grpcPort: 4317 });
    const organization = '0a000000-0000-4000-8000-00000000000a';
    expect(
      readOtlpIngestConfig({
        TRACEGRES_INGEST_TOKEN: 't',
        TRACEGRES_INGEST_ORGANIZATION_ID: organization,
        TRACEGRES_OTLP_MAX_BODY_BYTES: '1024',
        TRACEGRES_OTLP_GRPC_PORT: '0',
      }),
    ).toEqual({ token: 't', organizationId: organization, maxBodyBytes: 1024, grpcPort: 0 });
    // The shortcut token is bound to one organization or the server does not start.
    expect(() => readOtlpIngestConfig({ TRACEGRES_INGEST_TOKEN: 't' })).toThrow(
      /TRACEGRES_INGEST_TOKEN needs TRACEGRES_INGEST_ORGANIZATION_ID/,
    );
    expect(() => readOtlpIngestConfig({ TRACEGRES_INGEST_TOKEN: 't', TRACEGRES_INGEST_ORGANIZATION_ID: 'acme' })).toThrow(/must be a uuid/);
  });

  it('reads the gRPC port: a number, 0 for any free one, or off', () => {
    expect(readOtlpIngestConfig({ TRACEGRES_OTLP_GRPC_PORT: '14317' }).grpcPort).toBe(14317);
    expect(readOtlpIngestConfig({ TRACEGRES_OTLP_GRPC_PORT: 'off' }).grpcPort).toBeUndefined();
    for (const bad of ['-1', '65536', 'grpc', '43.17']) {
      expect(() => readOtlpIngestConfig({ TRACEGRES_OTLP_GRPC_PORT: bad })).toThrow(/TRACEGRES_OTLP_GRPC_PORT must be a port number/);
    }
  });
});
