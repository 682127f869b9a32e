// emitEvent against a real, migrated database: the trace fields land in the
// typed columns and in event_metadata, consistently, and each event belongs
// to the span that emitted it.
import type { TransactionSql } from 'postgres';
import { describe, expect, it } from 'vitest';
import { inRolledBackTransaction, useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { emitEvent } from './emit-event.ts';
import { extractTracingContext } from '../trace-context/extract.ts';
import { createSpan, type Span } from '../trace-context/span.ts';

const db = useTestDatabase();

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';
const CORRELATION = '6f1c2a8e-3b4d-4c5e-9f60-718293a4b5c6';
const SESSION = '0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3';
const ORGANIZATION = '3c9f1e2d-7a6b-4c5d-9e8f-0a1b2c3d4e5f';

interface EventRow {
  id: string;
  stream_type: string;
  stream_id: string;
  event_type: string;
  event_data: unknown;
  event_metadata: Record<string, unknown>;
  organization_id: string | null;
  correlation_id: string | null;
  session_id: string | null;
  trace_id: string | null;
  span_id: string | null;
  parent_span_id: string | null;
  trace_field_errors: unknown;
}

async function readEvent(tx: TransactionSql, id: string): Promise<EventRow> {
  const [row] = await tx<EventRow[]>`
    select id, stream_type, stream_id, event_type, event_data, event_metadata,
           organization_id::text, correlation_id::text, session_id::text,
           tracing.trace_id_to_hex(trace_id) as trace_id,
           tracing.span_id_to_hex(span_id) as span_id,
           tracing.span_id_to_hex(parent_span_id) as parent_span_id,
           trace_field_errors
    from tracing.domain_events where id = ${id}`;
  if (!row) throw new Error(`event ${id} not found`);
  return row;
}

function serverSpan(headers: HeadersInit): Span {
  const context = extractTracingContext(new Request('https://edge.example/f', { headers }));
  return createSpan(context, 'POST invite-user', { kind: 'server', service: 'invite-user' });
}

const incoming = {
  traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01`,
  tracestate: 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE',
  'x-correlation-id': CORRELATION,
  'x-session-id': SESSION,
};

describe('emitEvent', () => {
  it('stores an event whose strings carry NUL or a lone surrogate, with U+FFFD in their place', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const emitted = await emitEvent(
        tx,
        {
          streamType: 'invitation',
          streamId: 'inv\u0000-2\ud800',
          eventType: 'invitation.created',
          data: { email: 'a\u0000@b.co', note: 'x\udc00' },
          metadata: { source: 'a\u0000b' },
        },
        serverSpan(incoming),
      );
      const row = await readEvent(tx, emitted.id);
      expect(row.stream_id).toBe('inv\ufffd-2\ufffd');
      expect(row.event_data).toEqual({ email: 'a\ufffd@b.co', note: 'x\ufffd' });
      expect(row.event_metadata.source).toBe('a\ufffdb');
    });
  });

  it('writes the trace fields as columns and in event_metadata', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const span = serverSpan(incoming);
      const emitted = await emitEvent(
        tx,
        {
          streamType: 'invitation',
          streamId: 'inv-1',
          eventType: 'invitation.created',
          data: { email: 'ada@example.com', role: 'admin' },
          organizationId: ORGANIZATION,
          metadata: { source: 'test' },
        },
        span,
      );
      expect(emitted.traceId).toBe(TRACE_ID);
      expect(emitted.spanId).toBe(span.spanId);
      expect(emitted.createdAt).toBeInstanceOf(Date);
      expect(emitted.emissionId).toMatch(/^[0-9a-f]{16}$/);

      const row = await readEvent(tx, emitted.id);
      expect(row).toMatchObject({
        stream_type: 'invitation',
        stream_id: 'inv-1',
        event_type: 'invitation.created',
        event_data: { email: 'ada@example.com', role: 'admin' },
        organization_id: ORGANIZATION,
        correlation_id: CORRELATION,
        session_id: SESSION,
        trace_id: TRACE_ID,
        span_id: span.spanId,
        parent_span_id: CALLER_SPAN,
        trace_field_errors: null,
      });
      expect(row.event_metadata).toEqual({
        source: 'test',
        trace_id: TRACE_ID,
        span_id: span.spanId,
        parent_span_id: CALLER_SPAN,
        correlation_id: CORRELATION,
        session_id: SESSION,
        trace_flags: '01',
        tracestate: 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE',
        service: 'invite-user',
        emission_id: emitted.emissionId,
      });
    });
  });

  it('attaches events of a child span to that span, with the server span as parent', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const server = serverSpan(incoming);
      const child = createSpan(server, 'invitation.persist');
      const grandchild = createSpan(child, 'invitation.notify', { kind: 'producer' });
      const fromServer = await emitEvent(tx, { streamType: 'invitation', streamId: 'i', eventType: 'a', data: {} }, server);
      const fromChild = await emitEvent(tx, { streamType: 'invitation', streamId: 'i', eventType: 'b', data: {} }, child);
      const fromGrandchild = await emitEvent(tx, { streamType: 'invitation', streamId: 'i', eventType: 'c', data: {} }, grandchild);

      const rows = await Promise.all([fromServer, fromChild, fromGrandchild].map((e) => readEvent(tx, e.id)));
      expect(rows.map((r) => [r.trace_id, r.span_id, r.parent_span_id])).toEqual([
        [TRACE_ID, server.spanId, CALLER_SPAN],
        [TRACE_ID, child.spanId, server.spanId],
        [TRACE_ID, grandchild.spanId, child.spanId],
      ]);
      expect(rows.map((r) => r.event_metadata.parent_span_id)).toEqual([CALLER_SPAN, server.spanId, child.spanId]);
      expect(rows.every((r) => r.trace_field_errors === null)).toBe(true);
    });
  });

  it('gives every emission its own id while both events stay on the emitting span', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const span = serverSpan(incoming);
      const first = await emitEvent(tx, { streamType: 'user', streamId: 'u', eventType: 'user.role_changed', data: {} }, span);
      const second = await emitEvent(tx, { streamType: 'user', streamId: 'u', eventType: 'user.deactivated', data: {} }, span);
      expect(first.emissionId).not.toBe(second.emissionId);
      const [a, b] = await Promise.all([readEvent(tx, first.id), readEvent(tx, second.id)]);
      expect(a?.span_id).toBe(span.spanId);
      expect(b?.span_id).toBe(span.spanId);
      expect(a?.event_metadata.emission_id).toBe(first.emissionId);
      expect(b?.event_metadata.emission_id).toBe(second.emissionId);
    });
  });

  it('stores a trace started at the edge with no parent and no session', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const span = serverSpan({ traceparent: `00-${TRACE_ID.toUpperCase()}-${CALLER_SPAN}-01`, tracestate: 'a=1' });
      const emitted = await emitEvent(
        tx,
        { streamType: 'organization', streamId: 'o', eventType: 'organization.bootstrap_requested', data: {} },
        span,
      );
      const row = await readEvent(tx, emitted.id);
      expect(row.trace_id).toBe(span.traceId);
      expect(row.trace_id).not.toBe(TRACE_ID);
      expect(row.parent_span_id).toBeNull();
      expect(row.session_id).toBeNull();
      expect(row.organization_id).toBeNull();
      expect(row.correlation_id).toBe(span.correlationId);
      expect(row.event_metadata.parent_span_id).toBeNull();
      expect(row.event_metadata.trace_flags).toBe('03');
      expect(row.event_metadata).not.toHaveProperty('tracestate');
      expect(row.trace_field_errors).toBeNull();
    });
  });

  it('round-trips span ids with the high bit set (negative bigints)', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const span: Span = { ...serverSpan(incoming), spanId: 'ffffffffffffff01', parentSpanId: '8000000000000000' };
      const emitted = await emitEvent(tx, { streamType: 's', streamId: '1', eventType: 'e', data: null }, span);
      const row = await readEvent(tx, emitted.id);
      expect(row.span_id).toBe('ffffffffffffff01');
      expect(row.event_data).toEqual({});
      expect(row.parent_span_id).toBe('8000000000000000');
      expect(row.trace_field_errors).toBeNull();
    });
  });

  it('lets the trace keys win over same-named caller metadata', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const span = serverSpan(incoming);
      const emitted = await emitEvent(
        tx,
        { streamType: 's', streamId: '1', eventType: 'e', data: {}, metadata: { trace_id: 'forged', span_id: 'forged', note: 'kept' } },
        span,
      );
      const row = await readEvent(tx, emitted.id);
      expect(row.event_metadata.trace_id).toBe(TRACE_ID);
      expect(row.event_metadata.span_id).toBe(span.spanId);
      expect(row.event_metadata.note).toBe('kept');
      expect(row.trace_field_errors).toBeNull();
    });
  });

  it('rolls back with the caller transaction', async () => {
    const span = serverSpan(incoming);
    const streamId = `rollback-${span.spanId}`;
    await inRolledBackTransaction(db.sql, async (tx) => {
      await emitEvent(tx, { streamType: 's', streamId, eventType: 'e', data: {} }, span);
    });
    const [{ count }] =
      (await db.sql`select count(*)::int as count from tracing.domain_events where stream_id = ${streamId}`) as unknown as [
        { count: number },
      ];
    expect(count).toBe(0);
  });

  it('refuses bad input before touching the database', async () => {
    const span = serverSpan(incoming);
    await expect(emitEvent(db.sql, { streamType: '', streamId: '1', eventType: 'e', data: {} }, span)).rejects.toThrow(/streamType/);
    await expect(emitEvent(db.sql, { streamType: 's', streamId: '1', eventType: ' ', data: {} }, span)).rejects.toThrow(/eventType/);
    await expect(
      emitEvent(db.sql, { streamType: 's', streamId: '1', eventType: 'e', data: {}, organizationId: 'acme' }, span),
    ).rejects.toThrow(/organizationId must be a uuid/);
  });

  it('writes outside a transaction too', async () => {
    const span = serverSpan(incoming);
    const emitted = await emitEvent(
      db.sql,
      { streamType: 'user', streamId: span.spanId, eventType: 'user.deactivated', data: { reason: 'left' } },
      span,
    );
    const [row] =
      await db.sql`select tracing.span_id_to_hex(span_id) as span_id, event_data from tracing.domain_events where id = ${emitted.id}`;
    expect(row).toEqual({ span_id: span.spanId, event_data: { reason: 'left' } });
  });
});
