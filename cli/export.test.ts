// `tracegres export`: refuses to run without an endpoint, drains the queue
// with --once, and prints the status.
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { useTestDatabase } from '../db/tests/helpers/test-database.ts';
import { startTestReceiver, type TestReceiver } from '../server/otlp/test-receiver.ts';
import { exportCommand } from './export.ts';

const db = useTestDatabase();
let receiver: TestReceiver;
let sql: postgres.Sql;
const saved = { ...process.env };

beforeAll(async () => {
  receiver = await startTestReceiver();
  sql = postgres(db.url, { max: 1, onnotice: () => {} });
});
afterAll(async () => {
  process.env = saved;
  await receiver.close();
  await sql.end();
});

it('needs an endpoint, sends what is queued with --once, and shows the status', async () => {
  const lines: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((line) => void lines.push(String(line)));
  const errors: string[] = [];
  vi.spyOn(console, 'error').mockImplementation((line) => void errors.push(String(line)));
  delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  delete process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  expect(await exportCommand([], () => db.url)).toBe(2);
  expect(errors.join('\n')).toMatch(/no OTLP endpoint/);

  await sql`select tracing.otlp_enable_export(true)`;
  await sql`update tracing.otlp_export_settings set follow_sampling = false`;
  await sql`select tracing.record_spans(${sql.json([{ trace_id: 'cafecafecafecafecafecafecafecafe', span_id: 'beefbeefbeefbeef', name: 'op', service: 'cli', start_time: '2026-03-01T10:00:00Z', end_time: '2026-03-01T10:00:01Z' }])})`;
  process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = receiver.url;
  process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json';
  expect(await exportCommand(['--once'], () => db.url)).toBe(0);
  expect(receiver.acceptedSpans().map((s) => s.spanId)).toEqual(['beefbeefbeefbeef']);
  expect(lines.join('\n')).toMatch(/exported 1 spans/);

  lines.length = 0;
  expect(await exportCommand(['status'], () => db.url)).toBe(0);
  expect(lines.join('\n')).toMatch(/queue_depth\s+0/);
  expect(lines.join('\n')).toMatch(/exported_spans\s+1/);
});
