// Pure tests of the id derivation and the Temporal header codec.
import { defaultPayloadConverter } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import {
  ACTIVITY_SPAN_ID_HEADER,
  CORRELATION_ID_HEADER,
  SESSION_ID_HEADER,
  TRACEPARENT_HEADER,
  TRACESTATE_HEADER,
} from '../trace-context/headers.ts';
import { isValidSpanId, isValidTraceId, normalizeUuid } from '../trace-context/ids.ts';
import { activitySpanId, derivedUuid, fallbackActivitySpanId, workflowSpanId, workflowTraceId } from './span-ids.ts';
import { carrierFromParams, extractActivitySpanId, extractTraceCarrier, traceHeaders, type TraceCarrier } from './trace-headers.ts';

const RUN = '01a213c7-97e9-776e-b2f1-8c82a9a56964';

describe('span ids', () => {
  it('are the same for the same inputs, as a replay needs', () => {
    expect(workflowSpanId('wf', RUN)).toBe(workflowSpanId('wf', RUN));
    expect(activitySpanId('wf', RUN, 3)).toBe(activitySpanId('wf', RUN, '3'));
    expect(workflowTraceId('wf', RUN)).toBe(workflowTraceId('wf', RUN));
  });

  it('are pinned: a change here would give running workflows new ids mid-run', () => {
    // Values computed once; if the derivation must change, version it instead.
    expect(workflowSpanId('organization-bootstrap-1', RUN)).toMatchInlineSnapshot(`"f08faa2dea8697a3"`);
    expect(activitySpanId('organization-bootstrap-1', RUN, 1)).toMatchInlineSnapshot(`"5a3ee17172819fb3"`);
  });

  it('are valid W3C ids and differ between runs, activities and roles', () => {
    const ids = new Set<string>();
    for (const run of [RUN, '01a213c7-97e9-776e-b2f1-8c82a9a56965']) {
      for (const workflow of ['wf-a', 'wf-b']) {
        ids.add(workflowSpanId(workflow, run));
        ids.add(fallbackActivitySpanId(workflow, run, '1'));
        for (let seq = 1; seq <= 200; seq++) ids.add(activitySpanId(workflow, run, seq));
      }
    }
    expect(ids.size).toBe(2 * 2 * 202);
    for (const id of ids) expect(isValidSpanId(id)).toBe(true);
    expect(isValidTraceId(workflowTraceId('wf', RUN))).toBe(true);
  });

  it('keep the parts apart ("a"+"bc" is not "ab"+"c")', () => {
    expect(activitySpanId('a', 'bc', 1)).not.toBe(activitySpanId('ab', 'c', 1));
  });

  it('derive uuids the database accepts', () => {
    const id = derivedUuid(['wf', RUN]);
    expect(normalizeUuid(id)).toBe(id);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

const carrier: TraceCarrier = {
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  parentSpanId: '00f067aa0ba902b7',
  traceFlags: 0x03,
  tracestate: 'tracegres=edge,other=1',
  correlationId: '6f1c6a40-7a3b-4c1e-9d55-0c0f3b1f2a77',
  sessionId: null,
};

describe('Temporal trace headers', () => {
  it('round-trip a carrier, with W3C traceparent semantics', () => {
    const headers = traceHeaders(carrier, 'a1b2c3d4e5f60718');
    expect(defaultPayloadConverter.fromPayload(headers[TRACEPARENT_HEADER]!)).toBe(
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03',
    );
    expect(Object.keys(headers).sort()).toEqual(
      [ACTIVITY_SPAN_ID_HEADER, CORRELATION_ID_HEADER, TRACEPARENT_HEADER, TRACESTATE_HEADER].sort(),
    );
    expect(headers[SESSION_ID_HEADER]).toBeUndefined();
    expect(extractTraceCarrier(headers)).toEqual(carrier);
    expect(extractActivitySpanId(headers)).toBe('a1b2c3d4e5f60718');
  });

  it('ignore a bad traceparent and, with it, the tracestate', () => {
    const headers = {
      ...traceHeaders(carrier),
      [TRACEPARENT_HEADER]: defaultPayloadConverter.toPayload('00-00000000000000000000000000000000-00f067aa0ba902b7-01'),
    };
    expect(extractTraceCarrier(headers)).toBeNull();
    expect(extractTraceCarrier(undefined)).toBeNull();
  });

  it('drop values that are not theirs: other encodings, bad uuids, bad span ids', () => {
    const headers = {
      ...traceHeaders(carrier),
      [CORRELATION_ID_HEADER]: defaultPayloadConverter.toPayload('not-a-uuid'),
      [SESSION_ID_HEADER]: { metadata: { encoding: new TextEncoder().encode('binary/plain') }, data: new Uint8Array([1, 2]) },
      [TRACESTATE_HEADER]: defaultPayloadConverter.toPayload('bad key=1'),
      [ACTIVITY_SPAN_ID_HEADER]: defaultPayloadConverter.toPayload('0000000000000000'),
    };
    expect(extractTraceCarrier(headers)).toMatchObject({ correlationId: null, sessionId: null, tracestate: null });
    expect(extractActivitySpanId(headers)).toBeNull();
  });
});

describe('explicit trace params', () => {
  const params = {
    traceId: carrier.traceId,
    parentSpanId: carrier.parentSpanId,
    correlationId: carrier.correlationId?.toUpperCase(),
    sessionId: null,
  };

  it('make a carrier from valid ids, sampled when no flags were given', () => {
    expect(carrierFromParams(params)).toEqual({ ...carrier, traceFlags: 0x01, tracestate: null });
    expect(carrierFromParams({ ...params, traceFlags: 0xff, tracestate: 'a=1' })).toMatchObject({ traceFlags: 0x03, tracestate: 'a=1' });
  });

  it('make none from missing or invalid ids', () => {
    expect(carrierFromParams(undefined)).toBeNull();
    expect(carrierFromParams('x')).toBeNull();
    expect(carrierFromParams({ ...params, traceId: '' })).toBeNull();
    expect(carrierFromParams({ ...params, parentSpanId: '00F067AA0BA902B7' })).toBeNull();
  });
});
