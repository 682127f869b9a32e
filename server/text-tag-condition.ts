// A search tag given as text (Jaeger's UI and HTTP API, Tempo's older
// `tags`) as one span condition of api.find_traces, the same for every
// query API.

/**
 * `error=true`/`false` reads the span's status (tracegres keeps a failed
 * span as its status, where those UIs write the tag); any other tag is an
 * attribute, which the span may hold as the text or as the number or
 * boolean the text spells.
 */
export function textTagCondition(key: string, text: string): unknown {
  if (key === 'error' && (text === 'true' || text === 'false')) {
    return { field: 'status', op: text === 'true' ? '=' : '!=', value: 'error' };
  }
  const asText = { attribute: key, op: '=', value: text };
  const typed = /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text === 'true' || text === 'false' ? text === 'true' : undefined;
  return typed === undefined ? asText : { or: [asText, { attribute: key, op: '=', value: typed }] };
}
