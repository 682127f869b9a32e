// What one GraphQL request may ask for, counted on the operation as it will
// run: fragment spreads expanded and every alias counted, so fragments that
// select each other's aliases cannot multiply the work unseen. Checked
// before planning, so a refused request costs the event loop nothing.
//
// Cost: every field selection counts 1; a list field's selection counts once
// per row it may return (its `first` or `pFirst` argument, else
// DEFAULT_LIST_SIZE). Introspection (an operation selecting only `__schema`,
// `__type`, `__typename`) is answered from memory and bounded by the schema,
// so it has its own budget: fields counted once each, lists nested at most
// as deep as the standard introspection query nests them.
import { SafeError } from 'postgraphile/grafast';
import {
  getNamedType,
  getNullableType,
  isListType,
  Kind,
  valueFromASTUntyped,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLNamedType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'postgraphile/graphql';

export interface QueryLimits {
  maxCost: number;
  maxDepth: number;
  maxIntrospectionFields: number;
  maxIntrospectionListDepth: number;
}

export const QUERY_LIMITS: QueryLimits = {
  // The dashboard's largest view (trace summary, 500 events, timeline) costs ~30k.
  maxCost: 50_000,
  maxDepth: 8,
  maxIntrospectionFields: 2_000,
  // types > fields > args, as in graphql's getIntrospectionQuery().
  maxIntrospectionListDepth: 3,
};

export const DEFAULT_LIST_SIZE = 1_000;
// The api functions refuse a larger pFirst themselves, naming it
// (tracing.require_page_size), so a larger value costs no more than this.
const MAX_SQL_PAGE = 500;

const INTROSPECTION_ROOTS = new Set(['__schema', '__type', '__typename']);

interface Measure {
  cost: number;
  depth: number;
  listDepth: number;
}

export class QueryBudgetError extends SafeError {
  // grafserv answers with this status.
  statusCode = 400;
  constructor(message: string) {
    super(message, { code: 'QUERY_TOO_EXPENSIVE' });
  }
}

export function measureOperation(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Record<string, unknown> | null | undefined,
): (Measure & { introspection: boolean }) | undefined {
  const operation = document.definitions.find(
    (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION && (operationName == null || d.name?.value === operationName),
  );
  const root =
    operation &&
    (operation.operation === 'query'
      ? schema.getQueryType()
      : operation.operation === 'mutation'
        ? schema.getMutationType()
        : schema.getSubscriptionType());
  if (!operation || !root) return undefined;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);

  const rootFields: string[] = [];
  const collectRoots = (set: SelectionSetNode, seen: Set<string>) => {
    for (const s of set.selections) {
      if (s.kind === Kind.FIELD) rootFields.push(s.name.value);
      else if (s.kind === Kind.INLINE_FRAGMENT) collectRoots(s.selectionSet, seen);
      else if (!seen.has(s.name.value) && fragments.has(s.name.value))
        collectRoots(fragments.get(s.name.value)!.selectionSet, new Set([...seen, s.name.value]));
    }
  };
  collectRoots(operation.selectionSet, new Set());
  const introspection = rootFields.every((name) => INTROSPECTION_ROOTS.has(name));

  const defaults = new Map<string, unknown>();
  for (const v of operation.variableDefinitions ?? [])
    if (v.defaultValue) defaults.set(v.variable.name.value, valueFromASTUntyped(v.defaultValue));
  const variable = (name: string) => (variables && Object.hasOwn(variables, name) ? variables[name] : defaults.get(name));
  const pageSize = (field: FieldNode): number | undefined => {
    let bound: number | undefined;
    for (const arg of field.arguments ?? []) {
      if (arg.name.value !== 'first' && arg.name.value !== 'pFirst') continue;
      const value = arg.value.kind === Kind.VARIABLE ? variable(arg.value.name.value) : valueFromASTUntyped(arg.value);
      if (typeof value !== 'number' || value < 0) continue;
      const rows = arg.name.value === 'pFirst' ? Math.min(value, MAX_SQL_PAGE) : value;
      bound = Math.min(bound ?? rows, rows);
    }
    return bound;
  };

  // A fragment is measured once per place it can be in (page bound), so
  // nested spreads cost linear time, not the product they expand to.
  const memo = new Map<string, Measure>();
  const measure = (set: SelectionSetNode, parent: GraphQLNamedType | undefined, bound: number | undefined, seen: Set<string>): Measure => {
    const total: Measure = { cost: 0, depth: 0, listDepth: 0 };
    const add = (m: Measure) => {
      total.cost += m.cost;
      total.depth = Math.max(total.depth, m.depth);
      total.listDepth = Math.max(total.listDepth, m.listDepth);
    };
    for (const s of set.selections) {
      if (s.kind === Kind.FIELD) {
        const fields = parent && 'getFields' in parent ? (parent.getFields() as Record<string, { type: any }>) : undefined;
        const def =
          s.name.value === '__schema'
            ? { type: schema.getType('__Schema') }
            : s.name.value === '__type'
              ? { type: schema.getType('__Type') }
              : fields?.[s.name.value];
        if (!s.selectionSet || !def?.type) {
          add({ cost: 1, depth: 1, listDepth: 0 });
          continue;
        }
        const own = pageSize(s) ?? bound;
        const list = isListType(getNullableType(def.type));
        const child = measure(s.selectionSet, getNamedType(def.type as never) as GraphQLNamedType | undefined, own, seen);
        const rows = list ? (introspection ? 1 : (own ?? DEFAULT_LIST_SIZE)) : 1;
        add({ cost: 1 + rows * child.cost, depth: 1 + child.depth, listDepth: child.listDepth + (list ? 1 : 0) });
      } else if (s.kind === Kind.INLINE_FRAGMENT) {
        add(measure(s.selectionSet, s.typeCondition ? schema.getType(s.typeCondition.name.value) : parent, bound, seen));
      } else {
        const fragment = fragments.get(s.name.value);
        if (!fragment || seen.has(s.name.value)) continue; // validation reports these
        const key = `${s.name.value}\0${bound}`;
        let m = memo.get(key);
        if (!m) {
          m = measure(fragment.selectionSet, schema.getType(fragment.typeCondition.name.value), bound, new Set([...seen, s.name.value]));
          memo.set(key, m);
        }
        add(m);
      }
    }
    return total;
  };
  return { ...measure(operation.selectionSet, root, undefined, new Set()), introspection };
}

/** Throws QueryBudgetError (a 400 naming the limit) for an operation over budget. */
export function assertWithinBudget(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Record<string, unknown> | null | undefined,
  limits: QueryLimits = QUERY_LIMITS,
): void {
  const m = measureOperation(schema, document, operationName, variables);
  if (!m) return;
  if (m.introspection) {
    if (m.cost > limits.maxIntrospectionFields) {
      throw new QueryBudgetError(`introspection selects ${m.cost} fields, more than the limit of ${limits.maxIntrospectionFields}`);
    }
    if (m.listDepth > limits.maxIntrospectionListDepth) {
      throw new QueryBudgetError(`introspection nests ${m.listDepth} lists, more than the limit of ${limits.maxIntrospectionListDepth}`);
    }
    return;
  }
  if (m.depth > limits.maxDepth) throw new QueryBudgetError(`query depth ${m.depth} exceeds the limit of ${limits.maxDepth}`);
  if (m.cost > limits.maxCost) {
    throw new QueryBudgetError(
      `query cost ${m.cost} exceeds the limit of ${limits.maxCost} (each field counts 1, times the rows of each list it is in: first/pFirst, else ${DEFAULT_LIST_SIZE})`,
    );
  }
}
