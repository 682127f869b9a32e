import { afterEach, describe, expect, it, vi } from 'vitest';
import { type LogLevel, createLogger, serializeError } from './logger.ts';
import { TracedRequestError } from './traced-fetch.ts';

const NOW = new Date('2026-11-25T10:00:00.000Z');
const CORRELATION_ID = '0f8e2d4c-6b1a-4c3e-9d5f-7a8b9c0d1e2f';
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SESSION_ID = '8a3c1f9e-2b7d-4e61-9c05-3f1d2a6b7c80';

function capture(environment: 'production' | 'development' = 'production') {
  const lines: { line: string; level: LogLevel }[] = [];
  const logger = createLogger({ environment, now: () => NOW, sink: (line, level) => lines.push({ line, level }) });
  const records = () => lines.map(({ line }) => JSON.parse(line) as Record<string, unknown>);
  return { logger, lines, records };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('logger lines', () => {
  it('writes one JSON object per line with time, level, message and the trace ids', () => {
    const { logger, lines, records } = capture();
    logger.info('invitation sent', { invitation_id: 'inv_1', attempt: 2 });
    expect(lines).toHaveLength(1);
    expect(lines[0]?.line).not.toContain('\n');
    expect(lines[0]?.level).toBe('info');
    expect(records()[0]).toEqual({
      time: '2026-11-25T10:00:00.000Z',
      level: 'info',
      message: 'invitation sent',
      correlation_id: null,
      trace_id: null,
      invitation_id: 'inv_1',
      attempt: 2,
    });
  });

  it('keeps a line on one line even when messages and fields hold newlines', () => {
    const { logger, lines, records } = capture();
    logger.warn('first\nsecond', { detail: 'a\nb' });
    expect(lines[0]?.line.split('\n')).toHaveLength(1);
    expect(records()[0]?.['message']).toBe('first\nsecond');
  });

  it('passes each level to the sink', () => {
    const { logger, lines } = capture();
    logger.info('i');
    logger.warn('w');
    logger.error('e');
    expect(lines.map(({ level }) => level)).toEqual(['info', 'warn', 'error']);
  });

  it('does not let fields overwrite time, level or message', () => {
    const { logger, records } = capture();
    logger.info('real', { time: 'fake', level: 'error', message: 'forged' });
    expect(records()[0]).toMatchObject({ time: NOW.toISOString(), level: 'info', message: 'real' });
  });

  it('never throws on fields JSON cannot represent', () => {
    const { logger, records } = capture();
    const cyclic: Record<string, unknown> = { name: 'node' };
    cyclic['self'] = cyclic;
    const shared = { id: 1 };
    expect(() => logger.info('odd fields', { cyclic, a: shared, b: shared, big: 12n })).not.toThrow();
    expect(records()[0]).toMatchObject({
      cyclic: { name: 'node', self: '[Circular]' },
      // The same object twice is not a cycle.
      a: { id: 1 },
      b: { id: 1 },
      big: '12',
    });
  });

  it('swallows a failing sink, so logging cannot break the caller', () => {
    const logger = createLogger({
      sink: () => {
        throw new Error('quota exceeded');
      },
    });
    expect(() => logger.error('boom', new Error('x'))).not.toThrow();
  });

  it('writes to the console method of the level by default', () => {
    const info = vi.spyOn(console, 'info').mockImplementation(() => {});
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    const logger = createLogger();
    logger.info('a');
    logger.warn('b');
    logger.error('c');
    expect(JSON.parse(String(info.mock.calls[0]?.[0]))).toMatchObject({ level: 'info', message: 'a' });
    expect(JSON.parse(String(warn.mock.calls[0]?.[0]))).toMatchObject({ level: 'warn', message: 'b' });
    expect(JSON.parse(String(error.mock.calls[0]?.[0]))).toMatchObject({ level: 'error', message: 'c' });
  });
});

describe('logger context', () => {
  it('applies to every later line, not to earlier ones', () => {
    const { logger, records } = capture();
    logger.info('before');
    logger.setContext({ correlationId: CORRELATION_ID, traceId: TRACE_ID, sessionId: SESSION_ID });
    logger.info('after');
    logger.warn('later still');
    const [before, after, later] = records();
    expect(before).toMatchObject({ correlation_id: null, trace_id: null });
    expect(before).not.toHaveProperty('session_id');
    for (const line of [after, later]) {
      expect(line).toMatchObject({ correlation_id: CORRELATION_ID, trace_id: TRACE_ID, session_id: SESSION_ID });
    }
  });

  it('merges partial updates and clears a key set to null', () => {
    const { logger, records } = capture();
    logger.setContext({ correlationId: CORRELATION_ID, traceId: TRACE_ID, sessionId: SESSION_ID });
    logger.setContext({ traceId: 'a'.repeat(32) });
    logger.info('merged');
    logger.setContext({ sessionId: null, correlationId: null });
    logger.info('cleared');
    const [merged, cleared] = records();
    expect(merged).toMatchObject({ correlation_id: CORRELATION_ID, trace_id: 'a'.repeat(32), session_id: SESSION_ID });
    expect(cleared).toMatchObject({ correlation_id: null, trace_id: 'a'.repeat(32) });
    expect(cleared).not.toHaveProperty('session_id');
    expect(logger.getContext()).toEqual({ correlationId: null, traceId: 'a'.repeat(32), sessionId: null });
  });

  it("lets one line name another request's ids without changing the context", () => {
    const { logger, records } = capture();
    logger.setContext({ correlationId: CORRELATION_ID });
    logger.info('about another action', { correlation_id: 'other' });
    logger.info('back to ours');
    expect(records().map((line) => line['correlation_id'])).toEqual(['other', CORRELATION_ID]);
  });

  it("keeps separate loggers' contexts apart", () => {
    const first = capture();
    const second = capture();
    first.logger.setContext({ correlationId: CORRELATION_ID });
    second.logger.info('untouched');
    expect(second.records()[0]?.['correlation_id']).toBeNull();
  });
});

describe('logged errors', () => {
  it('serialises name and message, without the stack in production', () => {
    const { logger, records } = capture('production');
    logger.error('save failed', new TypeError('bad input'), { form: 'invite' });
    const line = records()[0];
    expect(line).toMatchObject({ level: 'error', message: 'save failed', form: 'invite' });
    expect(line?.['error']).toEqual({ name: 'TypeError', message: 'bad input' });
  });

  it('includes the stack outside production', () => {
    const { logger, records } = capture('development');
    const error = new Error('bad input');
    logger.error('save failed', error);
    expect(records()[0]?.['error']).toEqual({ name: 'Error', message: 'bad input', stack: error.stack });
  });

  it('keeps the ids a TracedRequestError carries', () => {
    const { logger, records } = capture();
    const error = new TracedRequestError('Email already invited', {
      status: 409,
      correlationId: CORRELATION_ID,
      traceId: TRACE_ID,
      url: 'https://example.test/functions/v1/invite-user',
    });
    logger.error('invite failed', error);
    expect(records()[0]?.['error']).toEqual({
      name: 'TracedRequestError',
      message: 'Email already invited',
      status: 409,
      correlationId: CORRELATION_ID,
      traceId: TRACE_ID,
      url: 'https://example.test/functions/v1/invite-user',
    });
  });

  it('follows causes', () => {
    const error = new Error('outer', { cause: new RangeError('inner') });
    expect(serializeError(error)).toEqual({
      name: 'Error',
      message: 'outer',
      cause: { name: 'RangeError', message: 'inner' },
    });
  });

  it('stops following a cause chain that loops', () => {
    const first = new Error('first');
    const second = new Error('second', { cause: first });
    (first as { cause?: unknown }).cause = second;
    expect(() => JSON.stringify(serializeError(first))).not.toThrow();
  });

  it('records thrown values that are not errors', () => {
    const { logger, records } = capture();
    logger.error('weird throw', 'just a string');
    logger.error('weirder throw', { code: 7 });
    expect(records().map((line) => line['error'])).toEqual([
      { name: 'NonError', message: 'just a string' },
      { name: 'NonError', message: '{"code":7}' },
    ]);
  });

  it('serialises errors passed among the fields too', () => {
    const { logger, records } = capture('production');
    logger.warn('retrying', { lastError: new Error('timeout') });
    expect(records()[0]?.['lastError']).toEqual({ name: 'Error', message: 'timeout' });
  });
});

describe('logging never throws', () => {
  it('survives fields whose getters or toJSON throw, dropping only that line', () => {
    const { logger, records } = capture();
    const hostile = {
      toJSON() {
        throw new Error('no');
      },
    };
    const getter = Object.defineProperty(new Error('odd'), 'code', {
      enumerable: true,
      get() {
        throw new Error('getter');
      },
    });
    expect(() => logger.info('hostile', { hostile })).not.toThrow();
    expect(() => logger.error('odd error', getter)).not.toThrow();
    logger.info('still logging');
    expect(records().map((line) => line['message'])).toEqual(['still logging']);
  });
});
