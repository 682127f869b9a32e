import { describe, expect, it } from 'vitest';
import { PortSettingError } from '../port-setting.ts';
import { JaegerConfigError, readJaegerStorageConfig } from './config.ts';

const ORG = '0a000000-0000-4000-8000-00000000000a';

describe('readJaegerStorageConfig', () => {
  it('serves on 17271, refuses calls without a token, and cuts statements at 5 s unless told otherwise', () => {
    expect(readJaegerStorageConfig({})).toEqual({ port: 17271, anonymous: undefined, statementTimeout: '5s' });
    expect(
      readJaegerStorageConfig({
        TRACEGRES_JAEGER_STORAGE_PORT: '0',
        TRACEGRES_JAEGER_ORGANIZATION: ORG.toUpperCase(),
        TRACEGRES_JAEGER_STATEMENT_TIMEOUT: '800ms',
      }),
    ).toEqual({ port: 0, anonymous: { organization: ORG }, statementTimeout: '800ms' });
    expect(readJaegerStorageConfig({ TRACEGRES_JAEGER_STORAGE_PORT: 'off', TRACEGRES_JAEGER_ORGANIZATION: 'tenant-header' })).toEqual({
      port: undefined,
      anonymous: 'tenant-header',
      statementTimeout: '5s',
    });
  });

  it('names the setting that is wrong', () => {
    expect(() => readJaegerStorageConfig({ TRACEGRES_JAEGER_STORAGE_PORT: 'jaeger' })).toThrow(PortSettingError);
    expect(() => readJaegerStorageConfig({ TRACEGRES_JAEGER_STORAGE_PORT: '70000' })).toThrow(
      /TRACEGRES_JAEGER_STORAGE_PORT must be a port/,
    );
    expect(() => readJaegerStorageConfig({ TRACEGRES_JAEGER_ORGANIZATION: 'acme' })).toThrow(JaegerConfigError);
    expect(() => readJaegerStorageConfig({ TRACEGRES_JAEGER_ORGANIZATION: 'acme' })).toThrow(/TRACEGRES_JAEGER_ORGANIZATION must be/);
    for (const bad of ['0', '5 hours', '1s; drop table x', '-1s']) {
      expect(() => readJaegerStorageConfig({ TRACEGRES_JAEGER_STATEMENT_TIMEOUT: bad })).toThrow(
        /TRACEGRES_JAEGER_STATEMENT_TIMEOUT must be/,
      );
    }
  });
});
