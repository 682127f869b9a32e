import { describe, expect, it } from 'vitest';
import { AlertConfigError, readAlertConfig } from './config.ts';

describe('readAlertConfig', () => {
  it('takes a batch size up to the 1,000 deliveries a claim may take', () => {
    expect(readAlertConfig({}).batchSize).toBe(20);
    expect(readAlertConfig({ TRACEGRES_ALERTS_BATCH_SIZE: '1000' }).batchSize).toBe(1000);
  });

  it('refuses at start a batch size every claim would refuse, naming the setting', () => {
    for (const value of ['1001', '0', '-3', '2.5', 'many']) {
      expect(() => readAlertConfig({ TRACEGRES_ALERTS_BATCH_SIZE: value })).toThrow(AlertConfigError);
    }
    expect(() => readAlertConfig({ TRACEGRES_ALERTS_BATCH_SIZE: '5000' })).toThrow(
      'TRACEGRES_ALERTS_BATCH_SIZE must be an integer from 1 to 1000, got "5000"',
    );
  });

  it('names the setting of a bad interval without an upper bound', () => {
    expect(() => readAlertConfig({ TRACEGRES_ALERTS_POLL_MS: '0' })).toThrow(
      'TRACEGRES_ALERTS_POLL_MS must be a positive integer, got "0"',
    );
  });
});
