// The export queue's SQL: queued by the span's own transaction (as the
// writer role, through record_spans), only once an exporter turned it on;
// claims and outcomes check their arguments; dead letters can be requeued;
// the cheap depth estimate never undercounts.
import { describe, expect, it } from 'vitest';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';

const db = useTestDatabase();

const span = (spanId: string) => ({
  trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
  span_id: spanId,
  name: 'op',
  service: 's',
  start_time: '2026-03-01T10:00:00Z',
  end_time: '2026-03-01T10:00:01Z',
});

describe('queueing spans for export', () => {
  it('queues nothing until export is enabled, then every span a writer records, in its transaction', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await tx`set local role tracegres_writer`;
      await tx`select tracing.record_spans(${tx.json([span('00f067aa0ba902b1')])})`;
      await tx`reset role`;
      expect(await tx`select count(*)::int as n from tracing.otlp_outbox`).toEqual([{ n: 0 }]);
      await tx`select tracing.otlp_enable_export(true)`;
      await tx`set local role tracegres_writer`;
      await tx`select tracing.record_spans(${tx.json([span('00f067aa0ba902b2'), span('00f067aa0ba902b3')])})`;
      // A retried batch queues nothing new: only inserted spans are queued.
      await tx`select tracing.record_spans(${tx.json([span('00f067aa0ba902b2')])})`;
      await tx`reset role`;
      const queued = await tx`select tracing.span_id_to_hex(span_id) as span_id from tracing.otlp_outbox order by id`;
      expect(queued.map((r) => r.span_id)).toEqual(['00f067aa0ba902b2', '00f067aa0ba902b3']);
      const [depth] = await tx`select tracing.otlp_queue_depth() as estimate, (select count(*) from tracing.otlp_outbox) as exact`;
      expect(Number(depth!.estimate)).toBeGreaterThanOrEqual(Number(depth!.exact));
    });
    // Rolled back with its spans: nothing stays queued.
    expect(await db.sql`select count(*)::int as n from tracing.otlp_outbox`).toEqual([{ n: 0 }]);
  });

  it('lets admins read the queue and its status, and nobody else', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await tx`set local role tracegres_admin`;
      const [status] = await tx`select enabled, queue_depth, exported_spans from tracing.otlp_export_status`;
      expect(status).toMatchObject({ enabled: false });
      await tx`reset role`;
      await tx`set local role tracegres_reader`;
      await expect(tx`select * from tracing.otlp_outbox`).rejects.toThrow(/permission denied/);
    });
  });

  it('lets only the owner claim, settle, requeue and switch the queue', async () => {
    for (const role of ['tracegres_writer', 'tracegres_admin']) {
      for (const call of [
        'select * from tracing.otlp_claim_spans(10)',
        "select tracing.otlp_finish_batch('{}', 'exported')",
        'select tracing.otlp_requeue_dead_letters()',
        'select tracing.otlp_enable_export(true)',
      ]) {
        await inRolledBackTransaction(db.sql, async (tx) => {
          await tx.unsafe(`set local role ${role}`);
          await expect(tx.unsafe(call)).rejects.toThrow(/permission denied for function/);
        });
      }
    }
  });
});

describe('claims and outcomes', () => {
  it('reject bad arguments with an error naming them', async () => {
    await expect(db.sql`select * from tracing.otlp_claim_spans(0)`).rejects.toMatchObject({
      code: '22023',
      message: 'p_limit must be between 1 and 100000',
    });
    await expect(db.sql`select tracing.otlp_finish_batch('{1}', 'sent')`).rejects.toMatchObject({
      code: '22023',
      message: expect.stringMatching(/^p_outcome must be one of/),
    });
    await expect(db.sql`select tracing.otlp_finish_batch('{1}', 'retry', 'x')`).rejects.toMatchObject({
      code: '22023',
      message: expect.stringMatching(/^p_retry_after/),
    });
  });

  it('moves a refused batch to the dead letters with its reason, and back on requeue', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await tx`select tracing.otlp_enable_export(true)`;
      await tx`update tracing.otlp_export_settings set follow_sampling = false`;
      await tx`select tracing.record_spans(${tx.json([span('00f067aa0ba902c1')])})`;
      const claimed = await tx`select c.outbox_id, (c.span).span_id from tracing.otlp_claim_spans(10) c`;
      expect(claimed.map((r) => r.span_id)).toEqual(['00f067aa0ba902c1']);
      await tx`select tracing.otlp_finish_batch(${claimed.map((r) => r.outbox_id)}::bigint[], 'dead_letter', 'HTTP 400: bad', 400, 'http://collector/v1/traces')`;
      expect(await tx`select http_status, reason, attempts from tracing.otlp_dead_letters`).toEqual([
        { http_status: 400, reason: 'HTTP 400: bad', attempts: 1 },
      ]);
      expect(await tx`select tracing.otlp_requeue_dead_letters() as n`).toEqual([{ n: '1' }]);
      expect(await tx`select count(*)::int as n from tracing.otlp_outbox`).toEqual([{ n: 1 }]);
    });
  });
});
