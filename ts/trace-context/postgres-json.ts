/**
 * JSON text that Postgres jsonb always accepts, for every writer of events
 * and spans (edge, OTLP ingest). Web-standard only, so every runtime can
 * import it.
 *
 * jsonb cannot hold U+0000, and refuses a lone UTF-16 surrogate, both of
 * which JavaScript strings (and OTLP payloads) may carry. Either one would
 * fail the whole write, so each becomes U+FFFD instead: nothing is lost over
 * a character. JSON.stringify writes exactly these as \u escapes (a valid
 * surrogate pair stays a raw character), so one pass over its output finds
 * them. An escape preceded by an even number of backslashes is a character;
 * with an odd number it is literal text and stays.
 */
const UNSTORABLE_ESCAPE = /(?<!\\)((?:\\\\)*)\\u(?:0000|d[89a-f][0-9a-f]{2})/g;

export function toPostgresJson(value: unknown): string {
  return toPostgresJsonText(JSON.stringify(value));
}

/** JSON text written by JSON.stringify (whole or in parts), made storable the same way. */
export function toPostgresJsonText(json: string): string {
  // Most text has no \u escape at all, and the search for one is far cheaper than the pattern.
  return json.includes('\\u') ? json.replace(UNSTORABLE_ESCAPE, '$1\\ufffd') : json;
}

const UNSTORABLE_CHARACTER = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** A string for a Postgres text column: NUL and lone surrogates become U+FFFD. */
export function toPostgresText(value: string): string {
  return value.replace(UNSTORABLE_CHARACTER, '\ufffd');
}
