// Demo data: checkout requests traced from the browser through an edge
// function into a Temporal workflow and its activities, the way the real
// toolkits write them (spans through tracing.record_spans, domain events
// into tracing.domain_events with their trace fields in event_metadata).
//
// Several users (sessions) each make a few requests; some payments are
// declined, so there are failed events to find. One request's workflow
// process died before recording its span (its activities hang under a
// placeholder) and one activity span is known only from its events
// (inferred), so the dashboard shows messy traces as they really look.
import { randomBytes, randomUUID } from 'node:crypto';
import type postgres from 'postgres';
import type { SpanRecord } from '../ts/trace-context/span-record.ts';

/** The organization all demo data belongs to. */
export const DEMO_ORGANIZATION_ID = 'de000000-0000-4000-8000-0000000000de';

export interface DemoOptions {
  /** Requests to create (default 60), spread over the hour before `now`. */
  requests?: number;
  /** Also one trace with this many spans (a batch import), for big timelines. */
  largeTraceSpans?: number;
  now?: Date;
}

export interface DemoRequest {
  traceId: string;
  correlationId: string;
  sessionId: string;
  failed: boolean;
}

export interface DemoSummary {
  requests: DemoRequest[];
  /** A request whose payment failed: the one to look up first. */
  failedRequest: DemoRequest;
  largeTraceId?: string;
  spans: number;
  events: number;
  failedEvents: number;
}

type Sql = postgres.Sql | postgres.TransactionSql;

type SpanRow = SpanRecord & { correlation_id: string; session_id: string; organization_id: string };

interface EventRow {
  trace_id: string;
  span_id: string;
  parent_span_id: string | null;
  correlation_id: string;
  session_id: string;
  service: string;
  stream_type: string;
  stream_id: string;
  event_type: string;
  data: Record<string, unknown>;
  at: number;
  error: string | null;
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const iso = (ms: number) => new Date(ms).toISOString();

// A small deterministic generator: the same run shape every time (which
// requests fail, how long steps take), with fresh ids each run.
function sequence(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const DECLINES = ['card declined: insufficient funds', 'card declined: do not honor', 'payment provider timeout after 10000 ms'];
const PRODUCTS = ['sku-espresso-beans', 'sku-grinder', 'sku-filter-papers', 'sku-kettle'];

export async function seedDemo(sql: Sql, options: DemoOptions = {}): Promise<DemoSummary> {
  const now = (options.now ?? new Date()).getTime();
  const count = options.requests ?? 60;
  const random = sequence(20251125);
  const sessions = Array.from({ length: 6 }, () => randomUUID());
  const spans: SpanRow[] = [];
  const events: EventRow[] = [];
  const requests: DemoRequest[] = [];

  for (let i = 0; i < count; i++) {
    // Users take turns, shifted every round so each one meets a failure.
    const sessionId = sessions[(i + Math.floor(i / sessions.length)) % sessions.length]!;
    const correlationId = randomUUID();
    const traceId = hex(16);
    // Oldest first, about a minute apart, ending a minute before now.
    const start = now - (count - i) * 75_000 - Math.floor(random() * 20_000);
    // Every third request's payment is declined; one in five of those also
    // fails to send the "payment failed" email.
    const failed = i % 3 === 1;
    const order = `ord-${(1000 + i).toString()}`;
    const common = { trace_id: traceId, correlation_id: correlationId, session_id: sessionId, organization_id: DEMO_ORGANIZATION_ID };
    const ids = { browser: hex(8), edge: hex(8), workflow: hex(8), reserve: hex(8), charge: hex(8), db: hex(8), notify: hex(8) };

    const edgeStart = start + 8 + random() * 10;
    const reserveStart = edgeStart + 30 + random() * 15;
    const reserveEnd = reserveStart + 40 + random() * 60;
    const chargeStart = reserveEnd + 5;
    const chargeEnd = chargeStart + (failed ? 900 + random() * 400 : 180 + random() * 250);
    const notifyStart = chargeEnd + 4;
    const notifyEnd = notifyStart + 60 + random() * 90;
    const workflowStart = edgeStart + 20;
    const workflowEnd = notifyEnd + 6;
    const edgeEnd = workflowEnd + 12;
    const end = edgeEnd + 10 + random() * 15;

    // Request 4's workflow worker crashed before it recorded its span; the
    // activities still name it as their parent.
    const workflowLost = i === 4;
    // Request 7's notification activity emitted events but never recorded
    // its span.
    const notifyLost = i === 7;

    const push = (row: Omit<SpanRow, keyof typeof common>) => spans.push({ ...common, ...row });
    push({
      span_id: ids.browser,
      parent_span_id: null,
      name: 'POST /checkout',
      service: 'shop-web',
      kind: 'client',
      start_time: iso(start),
      end_time: iso(end),
      status: failed ? 'error' : 'ok',
      ...(failed ? { status_message: 'HTTP 402' } : {}),
      attributes: { 'http.request.method': 'POST', 'url.path': '/checkout', 'http.response.status_code': failed ? 402 : 200 },
    });
    push({
      span_id: ids.edge,
      parent_span_id: ids.browser,
      name: 'checkout',
      service: 'edge-checkout',
      kind: 'server',
      start_time: iso(edgeStart),
      end_time: iso(edgeEnd),
      status: failed ? 'error' : 'ok',
      ...(failed ? { status_message: 'payment failed' } : {}),
      attributes: { 'faas.name': 'checkout', 'http.response.status_code': failed ? 402 : 200, 'enduser.session': sessionId },
    });
    if (!workflowLost) {
      push({
        span_id: ids.workflow,
        parent_span_id: ids.edge,
        name: 'OrderWorkflow',
        service: 'order-worker',
        kind: 'internal',
        start_time: iso(workflowStart),
        end_time: iso(workflowEnd),
        status: failed ? 'error' : 'ok',
        attributes: { 'temporal.workflow.type': 'OrderWorkflow', 'temporal.workflow.id': `order-${order}` },
      });
    }
    push({
      span_id: ids.reserve,
      parent_span_id: ids.workflow,
      name: 'reserveInventory',
      service: 'order-worker',
      kind: 'internal',
      start_time: iso(reserveStart),
      end_time: iso(reserveEnd),
      status: 'ok',
      attributes: { 'temporal.activity.type': 'reserveInventory', 'temporal.attempt': 1 },
    });
    push({
      span_id: ids.charge,
      parent_span_id: ids.workflow,
      name: 'chargePayment',
      service: 'order-worker',
      kind: 'internal',
      start_time: iso(chargeStart),
      end_time: iso(chargeEnd),
      status: failed ? 'error' : 'ok',
      ...(failed ? { status_message: DECLINES[Math.floor(i / 3) % DECLINES.length]! } : {}),
      attributes: { 'temporal.activity.type': 'chargePayment', 'temporal.attempt': failed ? 3 : 1, 'payment.provider': 'stripe' },
    });
    push({
      span_id: ids.db,
      parent_span_id: ids.charge,
      name: 'INSERT payments',
      service: 'order-worker',
      kind: 'client',
      start_time: iso(chargeStart + 3),
      end_time: iso(chargeStart + 14),
      status: 'ok',
      attributes: { 'db.system': 'postgresql', 'db.operation.name': 'INSERT', 'db.collection.name': 'payments' },
    });
    if (!notifyLost) {
      push({
        span_id: ids.notify,
        parent_span_id: ids.workflow,
        name: 'sendEmail',
        service: 'order-worker',
        kind: 'internal',
        start_time: iso(notifyStart),
        end_time: iso(notifyEnd),
        status: 'ok',
        attributes: { 'temporal.activity.type': 'sendEmail', 'email.template': failed ? 'payment-failed' : 'order-confirmed' },
      });
    }

    const event = (
      span: string,
      parent: string | null,
      service: string,
      at: number,
      type: string,
      data: Record<string, unknown>,
      error: string | null = null,
    ) =>
      events.push({
        trace_id: traceId,
        span_id: span,
        parent_span_id: parent,
        correlation_id: correlationId,
        session_id: sessionId,
        service,
        stream_type: 'order',
        stream_id: order,
        event_type: type,
        data,
        at,
        error,
      });
    const product = PRODUCTS[i % PRODUCTS.length]!;
    const amount = 1200 + (i % 7) * 350;
    event(ids.edge, ids.browser, 'edge-checkout', edgeStart + 12, 'order.created', {
      orderId: order,
      items: [{ sku: product, quantity: 1 + (i % 3) }],
      amountCents: amount,
      currency: 'EUR',
    });
    event(ids.reserve, ids.workflow, 'order-worker', reserveEnd - 2, 'inventory.reserved', { orderId: order, sku: product });
    if (failed) {
      event(
        ids.charge,
        ids.workflow,
        'order-worker',
        chargeEnd - 3,
        'payment.failed',
        { orderId: order, amountCents: amount, attempts: 3 },
        DECLINES[Math.floor(i / 3) % DECLINES.length]!,
      );
    } else {
      event(ids.charge, ids.workflow, 'order-worker', chargeEnd - 3, 'payment.captured', { orderId: order, amountCents: amount });
    }
    const emailFails = failed && i % 5 === 1;
    event(ids.notify, ids.workflow, 'order-worker', notifyStart + 5, 'email.queued', {
      orderId: order,
      template: failed ? 'payment-failed' : 'order-confirmed',
    });
    event(
      ids.notify,
      ids.workflow,
      'order-worker',
      notifyEnd - 2,
      emailFails ? 'email.failed' : 'email.sent',
      { orderId: order, to: `customer-${i % sessions.length}@example.com` },
      emailFails ? 'SMTP 451: mailbox temporarily unavailable' : null,
    );
    requests.push({ traceId, correlationId, sessionId, failed });
  }

  let largeTraceId: string | undefined;
  if (options.largeTraceSpans && options.largeTraceSpans > 0) {
    largeTraceId = hex(16);
    spans.push(...largeTrace(largeTraceId, options.largeTraceSpans, now - 10 * 60_000, randomUUID(), sessions[0]!));
  }

  // Batches of 1,000, the size the OTLP ingest uses.
  for (let k = 0; k < spans.length; k += 1000) {
    await sql`select tracing.record_spans(${sql.json(spans.slice(k, k + 1000) as never)}::jsonb)`;
  }
  for (let k = 0; k < events.length; k += 500) {
    const rows = events.slice(k, k + 500).map((e) => ({
      stream_type: e.stream_type,
      stream_id: e.stream_id,
      event_type: e.event_type,
      event_data: e.data,
      // The trace fields go in the metadata, as the toolkits write them; the
      // promotion trigger fills the typed columns.
      event_metadata: {
        trace_id: e.trace_id,
        span_id: e.span_id,
        parent_span_id: e.parent_span_id,
        correlation_id: e.correlation_id,
        session_id: e.session_id,
        trace_flags: '01',
        service: e.service,
        emission_id: hex(8),
      },
      organization_id: DEMO_ORGANIZATION_ID,
      created_at: iso(e.at),
      processing_error: e.error,
    }));
    await sql`
      insert into tracing.domain_events
        (stream_type, stream_id, event_type, event_data, event_metadata, organization_id, created_at, processing_error)
      select stream_type, stream_id, event_type, event_data, event_metadata, organization_id, created_at, processing_error
      from jsonb_to_recordset(${sql.json(rows as never)}::jsonb) as r(
        stream_type text, stream_id text, event_type text, event_data jsonb, event_metadata jsonb,
        organization_id uuid, created_at timestamptz, processing_error text)`;
  }

  const failedRequests = requests.filter((r) => r.failed);
  return {
    requests,
    // The most recent failure: first in the failed events table.
    failedRequest: failedRequests[failedRequests.length - 1]!,
    largeTraceId,
    spans: spans.length,
    events: events.length,
    failedEvents: events.filter((e) => e.error !== null).length,
  };
}

/** A batch import: one root, a chunk span per 100 records, a span per record. */
function largeTrace(traceId: string, size: number, start: number, correlationId: string, sessionId: string): SpanRow[] {
  const common = {
    trace_id: traceId,
    correlation_id: correlationId,
    session_id: sessionId,
    organization_id: DEMO_ORGANIZATION_ID,
    service: 'importer',
    kind: 'internal',
  };
  const root = hex(8);
  const rows: SpanRow[] = [];
  const perChunk = 100;
  const chunks = Math.max(1, Math.ceil((size - 1) / (perChunk + 1)));
  let made = 1;
  let t = start + 5;
  for (let c = 0; c < chunks && made < size; c++) {
    const chunk = hex(8);
    const chunkStart = t;
    made++;
    const children: SpanRow[] = [];
    for (let r = 0; r < perChunk && made < size; r++, made++) {
      children.push({
        ...common,
        span_id: hex(8),
        parent_span_id: chunk,
        name: `import record ${c * perChunk + r}`,
        start_time: iso(t),
        end_time: iso(t + 2),
        status: (c * perChunk + r) % 997 === 0 ? 'error' : 'ok',
        attributes: { 'record.index': c * perChunk + r },
      });
      t += 2;
    }
    rows.push(
      {
        ...common,
        span_id: chunk,
        parent_span_id: root,
        name: `import chunk ${c}`,
        start_time: iso(chunkStart),
        end_time: iso(t),
        status: 'ok',
        attributes: { 'chunk.index': c },
      },
      ...children,
    );
    t += 1;
  }
  rows.unshift({
    ...common,
    span_id: root,
    parent_span_id: null,
    name: 'nightly product import',
    start_time: iso(start),
    end_time: iso(t + 5),
    status: 'ok',
    attributes: { 'import.records': size },
  });
  return rows;
}

/**
 * `tracegres demo [--database-url URL]`: loads the demo data into the
 * database npm start serves and prints where to look first.
 */
export async function demoCommand(argv: string[]): Promise<number> {
  const { parseArgs } = await import('node:util');
  const { default: postgresClient } = await import('postgres');
  const { embeddedDatabaseUrl, readConfig } = await import('../server/config.ts');
  const { redactPassword } = await import('../server/database/connection-strings.ts');
  let url: string | undefined;
  try {
    url = parseArgs({ args: argv, options: { 'database-url': { type: 'string' } } }).values['database-url'];
  } catch (error) {
    console.error(`${(error as Error).message}\nusage: tracegres demo [--database-url URL]`);
    return 2;
  }
  const config = readConfig();
  url ??= config.databaseUrl ?? embeddedDatabaseUrl(config);
  const sql = postgresClient(url, { max: 1, onnotice: () => {} });
  try {
    const demo = await seedDemo(sql);
    const port = config.port;
    console.log(
      `loaded ${demo.requests.length} checkout requests (${demo.spans} spans, ${demo.events} events, ${demo.failedEvents} failed) into ${redactPassword(url)}`,
    );
    console.log(`a failed request to look up: correlation id ${demo.failedRequest.correlationId}`);
    console.log(`open http://localhost:${port}/ and paste it into the search box`);
    return 0;
  } catch (error) {
    const e = error as Error & { code?: string };
    console.error(
      e.code === 'ECONNREFUSED'
        ? `cannot connect to ${redactPassword(url)}: start the server with npm start first, or pass --database-url`
        : `error: ${e.message}`,
    );
    return 1;
  } finally {
    await sql.end();
  }
}
