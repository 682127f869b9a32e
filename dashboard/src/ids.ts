// What kind of id was pasted into the search box. Correlation and session
// ids are uuids (which of the two only the data can tell); trace ids are 32
// hex digits (W3C trace-id), also accepted inside a whole traceparent.
export type IdKind = { kind: 'trace'; id: string } | { kind: 'uuid'; id: string } | { kind: 'invalid'; reason: string };

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const TRACE_ID = /^[0-9a-f]{32}$/i;
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/i;

export function recogniseId(input: string): IdKind {
  // People paste ids with quotes, labels or whitespace around them.
  const text = input
    .trim()
    .replace(/^["'`]+|["'`]+$/g, '')
    .replace(/^(trace[-_ ]?id|correlation[-_ ]?id|session[-_ ]?id|reference id)\s*[:=]\s*/i, '');
  if (text === '') return { kind: 'invalid', reason: 'Paste a correlation id, session id or trace id.' };
  const traceparent = TRACEPARENT.exec(text);
  if (traceparent) return { kind: 'trace', id: traceparent[1]!.toLowerCase() };
  // A 32-digit hex string is a trace id, even though a uuid without its
  // dashes has the same shape: trace ids are the ones shown without dashes.
  if (TRACE_ID.test(text)) return { kind: 'trace', id: text.toLowerCase() };
  if (UUID.test(text)) {
    const hex = text.replace(/-/g, '').toLowerCase();
    return { kind: 'uuid', id: `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}` };
  }
  return { kind: 'invalid', reason: `"${text.slice(0, 60)}" is neither a uuid (correlation or session id) nor a 32-hex-digit trace id.` };
}

export const isUuid = (text: string) => UUID.test(text.trim()) && text.trim().includes('-');
export const isTraceId = (text: string) => TRACE_ID.test(text.trim());
