// The words of an alert, per channel. What an alert says is decided in SQL
// (tracing.alert_message, db/functions/221-alert-queue.sql); this file
// only lays those fields out as a Slack message, a webhook's JSON and an
// email's text and HTML parts, all from one list of fields.

/** tracing.alert_message as JSON. */
export interface AlertMessage {
  alert_id: number;
  rule: { id: number; name: string; kind: 'event' | 'rate' };
  organization_id: string | null;
  fingerprint: string;
  first_at: string;
  last_at: string;
  repeat_count: number;
  details: Record<string, unknown>;
  trace: {
    trace_id: string;
    root_operation: string | null;
    root_service: string | null;
    duration_ms: number | null;
    failed_span: {
      span_id: string;
      name: string;
      service: string;
      status: string;
      status_message: string | null;
      duration_ms: number;
    } | null;
  } | null;
}

export type DeliveryKind = 'first' | 'summary' | 'test';

export interface AlertField {
  label: string;
  value: string;
}

export interface AlertContent {
  title: string;
  fields: AlertField[];
  /** The trace's page in the dashboard, when the alert has a trace. */
  traceUrl?: string;
}

export function describeAlert(message: AlertMessage, kind: DeliveryKind, dashboardUrl: string): AlertContent {
  const d = message.details;
  const text = (value: unknown) => (value === null || value === undefined || value === '' ? undefined : String(value));
  const fields: Array<AlertField | undefined> = [
    { label: 'Rule', value: `${message.rule.name} (${message.rule.kind} rule #${message.rule.id})` },
    { label: 'Organization', value: message.organization_id ?? 'all organizations' },
  ];
  if (message.rule.kind === 'event') {
    fields.push(
      field('Event type', text(d.event_type)),
      field('Stream', text(d.stream_type) && `${d.stream_type}${d.stream_id ? ` ${d.stream_id}` : ''}`),
      field('Error', text(d.error)),
    );
  } else {
    fields.push(
      field('Operation', `${d.service}${d.operation ? ` / ${d.operation}` : ''}`),
      field(
        'Metric',
        `${d.metric} ${formatNumber(d.value)} above the threshold ${formatNumber(d.threshold)} over ${d.window_seconds} s (${d.requests} requests)`,
      ),
    );
  }
  fields.push(
    field('Time', message.repeat_count > 1 ? `${message.first_at} to ${message.last_at}` : message.first_at),
    field('Correlation id', text(d.correlation_id)),
    field('Session id', text(d.session_id)),
    field('Trace id', text(message.trace?.trace_id ?? d.trace_id)),
  );
  if (message.trace) {
    const t = message.trace;
    fields.push(
      field(
        'Root operation',
        t.root_operation
          ? `${t.root_service} / ${t.root_operation}${t.duration_ms !== null ? ` (${formatNumber(t.duration_ms)} ms)` : ''}`
          : undefined,
      ),
      field(
        'Failed span',
        t.failed_span
          ? `${t.failed_span.service} / ${t.failed_span.name} (${formatNumber(t.failed_span.duration_ms)} ms${t.failed_span.status_message ? `: ${t.failed_span.status_message}` : ''})`
          : undefined,
      ),
    );
  }
  fields.push({ label: 'Repeats', value: String(message.repeat_count) });
  const traceId = message.trace?.trace_id ?? text(d.trace_id);
  const traceUrl = traceId ? `${dashboardUrl}/trace/${encodeURIComponent(traceId)}` : undefined;
  if (traceUrl) fields.push({ label: 'Trace', value: traceUrl });

  const what =
    message.rule.kind === 'event'
      ? `${d.event_type} failed`
      : `${d.metric} of ${d.service}${d.operation ? ` / ${d.operation}` : ''} is ${formatNumber(d.value)}`;
  const title =
    kind === 'test'
      ? `Test alert from rule "${message.rule.name}"`
      : kind === 'summary'
        ? `${message.rule.name}: ${what}, ${message.repeat_count} times since ${message.first_at}`
        : `${message.rule.name}: ${what}`;
  return { title, fields: fields.filter((f): f is AlertField => f !== undefined), traceUrl };
}

function field(label: string, value: string | undefined): AlertField | undefined {
  return value ? { label, value } : undefined;
}

function formatNumber(value: unknown): string {
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  return Number.isInteger(n) ? String(n) : n.toFixed(n < 1 ? 3 : 1);
}

/** A Slack incoming-webhook body: a header, one section of fields, the trace button, and a text fallback. */
export function slackBody(content: AlertContent): Record<string, unknown> {
  const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const fields = content.fields.filter((f) => f.label !== 'Trace');
  const blocks: Array<Record<string, unknown>> = [
    { type: 'header', text: { type: 'plain_text', text: content.title.slice(0, 150) } },
    // Slack allows 10 fields a section.
    ...chunk(fields, 10).map((group) => ({
      type: 'section',
      fields: group.map((f) => ({ type: 'mrkdwn', text: `*${escape(f.label)}*\n${escape(f.value).slice(0, 1900)}` })),
    })),
  ];
  if (content.traceUrl) {
    blocks.push({
      type: 'actions',
      elements: [{ type: 'button', text: { type: 'plain_text', text: 'Open the trace' }, url: content.traceUrl }],
    });
  }
  return { text: content.title, blocks };
}

/** The generic webhook's JSON: the alert's fields by name plus the raw message. */
export function webhookBody(content: AlertContent, message: AlertMessage, kind: DeliveryKind, deliveryId: string): Record<string, unknown> {
  return {
    delivery_id: deliveryId,
    kind,
    title: content.title,
    trace_url: content.traceUrl ?? null,
    fields: content.fields,
    alert: message,
  };
}

export function emailText(content: AlertContent): string {
  return `${content.title}\n\n${content.fields.map((f) => `${f.label}: ${f.value}`).join('\n')}\n`;
}

export function emailHtml(content: AlertContent): string {
  const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  const rows = content.fields
    .map((f) => {
      const value = f.label === 'Trace' ? `<a href="${escape(f.value)}">${escape(f.value)}</a>` : escape(f.value);
      return `<tr><th align="left" valign="top">${escape(f.label)}</th><td>${value}</td></tr>`;
    })
    .join('\n');
  return `<!doctype html>\n<html><body>\n<h2>${escape(content.title)}</h2>\n<table cellpadding="4">\n${rows}\n</table>\n</body></html>\n`;
}

function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
