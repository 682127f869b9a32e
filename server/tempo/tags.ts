// The tag names and values of Tempo's search API, from tracing.tag_names and
// tracing.tag_values (db/functions/210-tempo-tags.sql), in its v1 and v2
// shapes.
//
// tracegres keeps a span's resource attributes with its own, so every
// attribute is offered in the span scope, and `resource.<key>` reads the
// same attribute as `span.<key>`; the resource scope offers service.name,
// which is a column of its own.
import { BadParameter } from './parameters.ts';

/** The intrinsics of the TraceQL subset that search reads. */
const INTRINSIC_TAGS = ['duration', 'kind', 'name', 'status', 'traceDuration'];
const RESOURCE_TAGS = ['service.name'];
const SCOPES = ['span', 'resource', 'intrinsic'] as const;
// Scopes Tempo knows that hold no searchable tag here: answered empty.
const EMPTY_SCOPES = ['event', 'link', 'instrumentation'];

/** The scopes a v2 tag-names request asks for: all three without one; checked before anything is read. */
export function tagScopesOf(scope: string | null): string[] {
  if (scope === null || scope === '' || scope === 'all') return [...SCOPES];
  if (!SCOPES.includes(scope as (typeof SCOPES)[number]) && !EMPTY_SCOPES.includes(scope)) {
    throw new BadParameter(
      `scope must be one of all, span, resource, intrinsic, event, link, instrumentation; got ${JSON.stringify(scope.slice(0, 32))}`,
    );
  }
  return [scope];
}

/** v2: `{scopes: [{name, tags}]}`. */
export function tagScopesResponse(scopes: string[], attributeKeys: string[]) {
  const tagsOf = (name: string) =>
    name === 'span' ? attributeKeys : name === 'resource' ? RESOURCE_TAGS : name === 'intrinsic' ? INTRINSIC_TAGS : [];
  return { scopes: scopes.map((name) => ({ name, tags: tagsOf(name) })) };
}

/** v1: `{tagNames: [...]}`, attribute keys and service.name. */
export function tagNamesResponse(attributeKeys: string[]) {
  return { tagNames: [...new Set([...RESOURCE_TAGS, ...attributeKeys])].sort() };
}

/** A v1 tag name (an attribute key, or service.name) in TraceQL's spelling, as tracing.tag_values takes it. */
export function v1TagAsTraceql(tag: string): string {
  return tag === 'service.name' ? 'resource.service.name' : `.${tag}`;
}

export function tagValuesV2Response(rows: Array<{ type: string; value: string }>) {
  return { tagValues: rows.map(({ type, value }) => ({ type, value })), metrics: {} };
}

export function tagValuesV1Response(rows: Array<{ value: string }>) {
  return { tagValues: rows.map((row) => row.value) };
}
