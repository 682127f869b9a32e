--! Previous: sha1:58796e9888e2dde010c7c2b633d52e4b24b342aa
--! Hash: sha1:66cec3163597d1f49400c48cad8434e342bda5e4
--! Message: One column list for a stored span in OTLP's terms: type tracing.otlp_span, which tracing.otlp_claim_spans and tracing.otlp_trace_spans return

-- A stored span in OTLP's terms (hex ids, times in Unix nanoseconds as
-- text, with the domain events it emitted), as both the export queue
-- (tracing.otlp_claim_spans) and the read APIs (tracing.otlp_trace_spans)
-- hand it out: one column list for both. Their return types change to it,
-- so the functions are dropped here and recreated by 180-otlp-export.sql
-- and 200-otlp-reads.sql.
drop function if exists tracing.otlp_claim_spans(integer);
drop function if exists tracing.otlp_trace_spans(uuid[], integer);
drop type if exists tracing.otlp_span;

create type tracing.otlp_span as (
  trace_id text,
  span_id text,
  parent_span_id text,
  name text,
  service text,
  kind text,
  start_time_unix_nano text,
  end_time_unix_nano text,
  status text,
  status_message text,
  attributes jsonb,
  span_events jsonb,
  links jsonb,
  correlation_id uuid,
  session_id uuid,
  organization_id uuid,
  domain_events jsonb
);

comment on type tracing.otlp_span is
  E'A stored span in OTLP''s terms (hex ids, times in Unix nanoseconds as text) with the domain events it emitted: the rows of tracing.otlp_trace_spans and, after the queue columns, of tracing.otlp_claim_spans.';
