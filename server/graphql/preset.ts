// The PostGraphile preset: the `api` schema as GraphQL, read-only, with each
// request's verified JWT claims passed to Postgres as settings for RLS.
import type { IncomingMessage } from 'node:http';
import type { PostGraphileInstance } from 'postgraphile';
import { makePgService } from 'postgraphile/adaptors/pg';
import { PostGraphileAmberPreset } from 'postgraphile/presets/amber';
import { ANONYMOUS_SETTINGS, type PgSettings } from '../auth/jwt.ts';
import { assertQueryDepth } from './depth-limit.ts';
import { maskError } from './mask-error.ts';

/** Settings found for a request by the HTTP layer (see server/http-server.ts). */
export const requestSettings = new WeakMap<IncomingMessage, PgSettings>();

export const MAX_QUERY_DEPTH = 8;

export function makePreset(connectionString: string): GraphileConfig.Preset {
  return {
    extends: [PostGraphileAmberPreset],
    // No subscriptions: no LISTEN connection held open.
    pgServices: [makePgService({ connectionString, schemas: ['api'], pubsub: false })],
    plugins: [
      {
        name: 'TracegresQueryDepthLimit',
        version: '1.0.0',
        grafserv: {
          middleware: {
            processGraphQLRequestBody(next, event) {
              if (typeof event.body.query === 'string') assertQueryDepth(event.body.query, MAX_QUERY_DEPTH);
              return next();
            },
          },
        },
      },
    ],
    grafserv: {
      graphqlPath: '/graphql',
      graphiqlPath: '/graphiql',
      // Bounded request size: a GraphQL document is small.
      maxRequestLength: 100_000,
      websockets: false,
      maskError,
    },
    grafast: {
      // Each request runs as the role its token grants; no token, no rows.
      context(requestContext) {
        const req = requestContext.node?.req;
        return { pgSettings: (req && requestSettings.get(req)) ?? ANONYMOUS_SETTINGS };
      },
    },
    schema: {
      // Readers never write through GraphQL: no mutations are generated for
      // tables, and `api` holds only stable query functions.
      defaultBehavior: '-insert -update -delete',
    },
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
