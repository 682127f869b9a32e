// Who a Jaeger storage call reads as. Jaeger's query service forwards what
// it is configured to: a static `authorization` header of its gRPC backend
// (a tracegres token) and, with multi-tenancy on, the tenant header of each
// request (x-tracegres-organization-id).
//
// - A reader token reads its organization; a tenant header naming another
//   one is refused.
// - An admin token reads every organization, or only the one its tenant
//   header names.
// - Without a token, TRACEGRES_JAEGER_ORGANIZATION (an operator's setting)
//   decides: unset, the call is refused; a uuid, that organization is read;
//   `tenant-header`, the tenant header names it (for a port that only a
//   Jaeger enforcing its own tenants can reach).
import * as grpc from '@grpc/grpc-js';
import type postgres from 'postgres';
import { InvalidTokenError, type PgSettings } from '../auth/jwt.ts';
import { readAsCaller } from '../read-as-caller.ts';
import { ORGANIZATION_ID_HEADER, UUID_PATTERN } from '../../ts/trace-context/headers.ts';

export class CallerProblem extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

export type AnonymousAccess = { organization: string } | 'tenant-header' | undefined;

export interface JaegerCallers {
  /** Runs `read` in a read-only transaction as the caller the metadata names; throws CallerProblem. */
  read<T>(metadata: grpc.Metadata, read: (sql: postgres.TransactionSql) => Promise<T>): Promise<T>;
}

export function createJaegerCallers(options: {
  sql: postgres.Sql;
  pgSettingsFor: (authorization: string | undefined) => Promise<PgSettings>;
  anonymous: AnonymousAccess;
  statementTimeout: string;
}): JaegerCallers {
  async function settingsOf(metadata: grpc.Metadata): Promise<PgSettings> {
    const authorization = first(metadata, 'authorization');
    const tenant = first(metadata, ORGANIZATION_ID_HEADER)?.trim().toLowerCase() || undefined;
    if (tenant !== undefined && !UUID_PATTERN.test(tenant)) {
      throw new CallerProblem(grpc.status.INVALID_ARGUMENT, `${ORGANIZATION_ID_HEADER} must be an organization id (a uuid)`);
    }
    if (authorization) {
      let settings: PgSettings;
      try {
        settings = await options.pgSettingsFor(authorization);
      } catch (error) {
        if (error instanceof InvalidTokenError) throw new CallerProblem(grpc.status.UNAUTHENTICATED, error.message);
        throw error;
      }
      if (settings.role === 'tracegres_admin') return tenant ? readerOf(tenant) : settings;
      if (settings.role === 'tracegres_reader') {
        if (tenant && tenant !== settings['jwt.claims.organization_id']?.toLowerCase()) {
          throw new CallerProblem(grpc.status.PERMISSION_DENIED, `this token reads only its own organization, not ${tenant}`);
        }
        return settings;
      }
      throw new CallerProblem(grpc.status.UNAUTHENTICATED, 'a reader or admin token is required');
    }
    if (options.anonymous === 'tenant-header') {
      if (!tenant) throw new CallerProblem(grpc.status.UNAUTHENTICATED, `a token or the ${ORGANIZATION_ID_HEADER} header is required`);
      return readerOf(tenant);
    }
    if (options.anonymous) return readerOf(options.anonymous.organization);
    throw new CallerProblem(
      grpc.status.UNAUTHENTICATED,
      'a Bearer token is required (set it as the authorization header of the Jaeger gRPC backend), or TRACEGRES_JAEGER_ORGANIZATION on the server',
    );
  }

  return {
    async read(metadata, read) {
      const settings = await settingsOf(metadata);
      return readAsCaller(options.sql, settings, options.statementTimeout, read);
    },
  };
}

/** A reader of one organization: row-level security then shows nothing else, whoever asked. */
function readerOf(organizationId: string): PgSettings {
  return { role: 'tracegres_reader', 'jwt.claims.organization_id': organizationId };
}

function first(metadata: grpc.Metadata, key: string): string | undefined {
  const [value] = metadata.get(key);
  return typeof value === 'string' ? value : undefined;
}
