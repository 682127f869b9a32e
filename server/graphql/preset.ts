// The PostGraphile preset: the `api` schema as GraphQL, read-only, with each
// request's verified JWT claims passed to Postgres as settings for RLS.
import type { IncomingMessage } from 'node:http';
import type { PostGraphileInstance } from 'postgraphile';
import { PostGraphileAmberPreset } from 'postgraphile/presets/amber';
import { ANONYMOUS_SETTINGS, type PgSettings } from '../auth/jwt.ts';
import { getOperationAST, NoSchemaIntrospectionCustomRule, parse, validate, type GraphQLError } from 'postgraphile/graphql';
import { maskError } from './mask-error.ts';
import { LiveSubscriptionsPlugin } from './live-subscriptions.ts';
import { assertWithinBudget } from './query-cost.ts';
import { makeSettingsTransactionPgService } from './settings-transaction.ts';

/** Settings found for a request by the HTTP layer (see server/http-server.ts). */
export const requestSettings = new WeakMap<IncomingMessage, PgSettings>();

export interface GraphqlOptions {
  /**
   * Introspection, the Ruru explorer and "Did you mean" suggestions
   * (TRACEGRES_GRAPHQL_INTROSPECTION; on for the embedded default, off with
   * DATABASE_URL). Default here: on.
   */
  introspection?: boolean;
  /** Postgres statement_timeout of each GraphQL request (TRACEGRES_GRAPHQL_STATEMENT_TIMEOUT). */
  statementTimeout?: string;
  /**
   * Where queries read (TRACEGRES_READ_DATABASE_URL): a streaming replica.
   * Mutations and the schema's introspection stay on the connection string.
   */
  readDatabaseUrl?: string;
}

export const DEFAULT_STATEMENT_TIMEOUT = '10s';

export function makePreset(connectionString: string, options: GraphqlOptions = {}): GraphileConfig.Preset {
  const introspection = options.introspection ?? true;
  const statementTimeout = options.statementTimeout ?? DEFAULT_STATEMENT_TIMEOUT;
  return {
    extends: [PostGraphileAmberPreset],
    // `Query.query` (Relay 1) hands back Query itself, so one request could
    // re-enter every root field through it.
    disablePlugins: ['QueryQueryPlugin'],
    // pubsub: the live view's subscriptions LISTEN through one connection
    // to `connectionString` (the primary), opened with the first subscriber.
    pgServices: [makeSettingsTransactionPgService({ connectionString, schemas: ['api'], pubsub: true }, options.readDatabaseUrl)],
    plugins: [
      LiveSubscriptionsPlugin,
      {
        name: 'TracegresQueryBudget',
        version: '1.0.0',
        grafast: {
          middleware: {
            // After validation, before planning: the operation, its
            // variables and the schema are all known here.
            prepareArgs(next, { args }) {
              assertWithinBudget(args.schema, args.document, args.operationName, args.variableValues as Record<string, unknown>);
              return next();
            },
          },
        },
        grafserv: {
          middleware: {
            setPreset(next, event) {
              if (!introspection) hideSchema(event);
              return next();
            },
          },
        },
      },
    ],
    grafserv: {
      graphqlPath: '/graphql',
      graphiqlPath: '/graphiql',
      graphiql: introspection,
      // Bounded request size: a GraphQL document is small.
      maxRequestLength: 100_000,
      // Served by server/graphql/websocket.ts (token and caps), not grafserv's own handler.
      websockets: false,
      maskError,
    },
    grafast: {
      // Each request runs as the role its token grants; no token, no rows.
      context(requestContext, args) {
        // Over HTTP the request; over WebSocket the upgrade request, whose
        // settings the socket's connection_init token granted (websocket.ts).
        const req = requestContext.node?.req ?? requestContext.ws?.request;
        // statement_timeout is set per transaction: `alter role ... set`
        // would not apply, since requests switch role with set_config.
        const pgSettings: PgSettings = {
          ...((req && requestSettings.get(req)) ?? ANONYMOUS_SETTINGS),
          statement_timeout: statementTimeout,
        };
        // A query reads: its transaction is read-only, so it cannot write,
        // and it answers without waiting for its commit (settings-transaction.ts).
        // A subscription's reads stay on the primary, which has the row the
        // moment its NOTIFY arrives (a replica may not have replayed it yet).
        if (getOperationAST(args.document, args.operationName)?.operation === 'query') pgSettings.transaction_read_only = 'on';
        return { pgSettings };
      },
      // Planning blocks the event loop; the budget keeps it far below this.
      timeouts: { planning: 2_000 },
    },
    schema: {
      // Readers never write through GraphQL: no mutations are generated for
      // tables, and `api` holds only stable query functions.
      defaultBehavior: '-insert -update -delete',
    },
  };
}

/**
 * No introspection, and validation errors without "Did you mean" (they
 * would spell the schema out field by field).
 */
function hideSchema(event: { validationRules: unknown[]; getExecutionConfig: (ctx: any) => any }): void {
  event.validationRules.push(NoSchemaIntrospectionCustomRule);
  const rules = event.validationRules as Parameters<typeof validate>[2];
  const base = event.getExecutionConfig;
  // The schema is built once (no watch mode), so one cache serves it.
  const cache = new Map<string, { document?: any; errors?: readonly GraphQLError[] }>();
  event.getExecutionConfig = function (this: unknown, ctx: unknown) {
    const withOwnValidation = (config: any) => {
      return {
        ...config,
        parseAndValidate(query: string) {
          let result = cache.get(query);
          if (!result) {
            try {
              const document = parse(query);
              const errors = validate(config.schema, document, rules, { hideSuggestions: true });
              result = errors.length ? { errors } : { document };
            } catch (error) {
              result = { errors: [error as GraphQLError] };
            }
            if (cache.size >= 500) cache.delete(cache.keys().next().value!);
            cache.set(query, result);
          }
          return result;
        },
      };
    };
    const config = base.call(this, ctx);
    return typeof config?.then === 'function' ? config.then(withOwnValidation) : withOwnValidation(config);
  };
}

/**
 * Releases a PostGraphile instance and the pools of its pgServices, which
 * PostGraphile leaves to their owner; otherwise they outlive the server.
 */
export async function releasePostGraphile(pgl: PostGraphileInstance): Promise<void> {
  const { pgServices = [] } = pgl.getResolvedPreset();
  await pgl.release();
  for (const service of pgServices) await service.release?.();
}
