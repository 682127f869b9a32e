// Jaeger remote storage settings, from the environment.
import { UUID_PATTERN } from '../../ts/trace-context/headers.ts';
import { readPortSetting } from '../port-setting.ts';
import type { AnonymousAccess } from './callers.ts';

export interface JaegerStorageConfig {
  /** TRACEGRES_JAEGER_STORAGE_PORT: 17271 unless set; 0 any free port; `off`: not served (undefined). */
  port?: number;
  /** TRACEGRES_JAEGER_ORGANIZATION: what a call without a token reads (see callers.ts). */
  anonymous: AnonymousAccess;
  /** TRACEGRES_JAEGER_STATEMENT_TIMEOUT: Postgres statement_timeout of each call; 5s, Jaeger's own deadline for a storage call. */
  statementTimeout: string;
}

export class JaegerConfigError extends Error {}

export function readJaegerStorageConfig(env: NodeJS.ProcessEnv = process.env): JaegerStorageConfig {
  const organization = env.TRACEGRES_JAEGER_ORGANIZATION?.trim().toLowerCase() || undefined;
  if (organization && organization !== 'tenant-header' && !UUID_PATTERN.test(organization)) {
    throw new JaegerConfigError(
      `TRACEGRES_JAEGER_ORGANIZATION must be an organization id (a uuid) or tenant-header, got ${JSON.stringify(env.TRACEGRES_JAEGER_ORGANIZATION)}`,
    );
  }
  return {
    port: readPortSetting(env.TRACEGRES_JAEGER_STORAGE_PORT, 'TRACEGRES_JAEGER_STORAGE_PORT', 17271),
    anonymous: organization === 'tenant-header' ? 'tenant-header' : organization ? { organization } : undefined,
    statementTimeout: statementTimeout(env.TRACEGRES_JAEGER_STATEMENT_TIMEOUT),
  };
}

function statementTimeout(value: string | undefined): string {
  const setting = value?.trim() || '5s';
  // Postgres's own duration syntax for statement_timeout, without 0 (no limit).
  if (!/^[1-9]\d{0,8}\s*(ms|s|min)?$/.test(setting)) {
    throw new JaegerConfigError(
      `TRACEGRES_JAEGER_STATEMENT_TIMEOUT must be a duration such as 500ms, 5s or 1min, got ${JSON.stringify(value)}`,
    );
  }
  return setting;
}
