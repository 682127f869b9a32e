// A bound on query depth, so one request cannot walk the store through
// nested fields. Page sizes are bounded by the SQL functions themselves.
import { SafeError } from 'postgraphile/grafast';
import { Kind, parse, type DocumentNode, type SelectionSetNode } from 'postgraphile/graphql';

export function queryDepth(document: DocumentNode): number {
  const fragments = new Map(
    document.definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d] as const] : [])),
  );
  const depthOf = (set: SelectionSetNode | undefined, seen: Set<string>): number => {
    if (!set) return 0;
    let deepest = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        deepest = Math.max(deepest, selection.selectionSet ? 1 + depthOf(selection.selectionSet, seen) : 1);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        deepest = Math.max(deepest, depthOf(selection.selectionSet, seen));
      } else if (!seen.has(selection.name.value)) {
        const fragment = fragments.get(selection.name.value);
        deepest = Math.max(deepest, depthOf(fragment?.selectionSet, new Set([...seen, selection.name.value])));
      }
    }
    return deepest;
  };
  return Math.max(
    0,
    ...document.definitions.map((d) => (d.kind === Kind.OPERATION_DEFINITION ? depthOf(d.selectionSet, new Set()) : 0)),
  );
}

/** Throws when the query nests deeper than `maxDepth` (a SafeError: its message reaches the client). */
export function assertQueryDepth(query: string, maxDepth: number): void {
  let document: DocumentNode;
  try {
    document = parse(query);
  } catch {
    return; // Grafast reports syntax errors itself.
  }
  const depth = queryDepth(document);
  if (depth > maxDepth) {
    throw new SafeError(`query depth ${depth} exceeds the limit of ${maxDepth}`, { code: 'QUERY_TOO_DEEP', statusCode: 400 });
  }
}
