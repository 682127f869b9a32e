// Alerts: the rules (what each watches, where it sends, muted or not) with
// mute, unmute, disable and enable buttons and a form for a new rule, and
// the recent firings with their repeat count, delivery state and trace
// link. Everything goes through the api's queries and its admin-only
// mutations; a reader sees the page and gets the server's refusal if it
// tries to change anything.
import { useState, type FormEvent } from 'react';
import { graphql } from './api.ts';
import { Id, Loading, QueryFailure } from './common.tsx';
import { formatTime } from './format.ts';
import { useQuery } from './hooks.ts';

interface Rule {
  rowId: string;
  name: string;
  kind: 'event' | 'rate';
  organizationId: string | null;
  eventTypePattern: string | null;
  streamTypePattern: string | null;
  service: string | null;
  operation: string | null;
  metric: string | null;
  threshold: number | null;
  windowSeconds: number | null;
  channel: string;
  target: string;
  hasSecret: boolean;
  groupSeconds: number;
  maxAlertsPerHour: number;
  mutedUntil: string | null;
  enabled: boolean;
}

interface Firing {
  rowId: string;
  ruleName: string;
  firstAt: string;
  lastAt: string;
  repeatCount: number;
  state: string;
  details: Record<string, unknown>;
  traceId: string | null;
  deliveryStatus: string | null;
  deliveryAttempts: number | null;
  deliveryError: string | null;
}

const RULE_FIELDS = `rowId name kind organizationId eventTypePattern streamTypePattern service operation metric threshold windowSeconds
  channel target hasSecret groupSeconds maxAlertsPerHour mutedUntil enabled`;

export function Alerts() {
  const [version, setVersion] = useState(0);
  const [actionError, setActionError] = useState<unknown>();
  const { data, error, loading } = useQuery<{ alertRules: { nodes: Rule[] }; recentAlerts: { nodes: Firing[] } }>(
    `query Alerts {
      alertRules { nodes { ${RULE_FIELDS} } }
      recentAlerts(pFirst: 50) { nodes { rowId ruleName firstAt lastAt repeatCount state details traceId deliveryStatus deliveryAttempts deliveryError } }
    }`,
    {},
    String(version),
  );

  const act = async (mutation: string, variables: Record<string, unknown>) => {
    setActionError(undefined);
    try {
      await graphql(mutation, variables);
      setVersion((v) => v + 1);
    } catch (e) {
      setActionError(e);
    }
  };
  const mute = (rule: Rule, until: string | null) =>
    act(`mutation($id: BigInt!, $until: Datetime) { muteAlertRule(input: { pRuleId: $id, pUntil: $until }) { clientMutationId } }`, {
      id: rule.rowId,
      until,
    });
  const enable = (rule: Rule, enabled: boolean) =>
    act(`mutation($id: BigInt!, $on: Boolean!) { setAlertRuleEnabled(input: { pRuleId: $id, pEnabled: $on }) { clientMutationId } }`, {
      id: rule.rowId,
      on: enabled,
    });

  return (
    <section aria-labelledby="alerts-heading">
      <h1 id="alerts-heading">Alerts</h1>
      {error ? <QueryFailure error={error} /> : null}
      {actionError ? <QueryFailure error={actionError} /> : null}
      {!data && loading ? <Loading what="the alerts" /> : null}
      {data && (
        <>
          <h2>Rules</h2>
          {data.alertRules.nodes.length === 0 ? (
            <p className="empty">No alert rules yet.</p>
          ) : (
            <div className="table-wrap">
              <table className="events alert-rules">
                <thead>
                  <tr>
                    <th>Rule</th>
                    <th>Fires on</th>
                    <th>Sends to</th>
                    <th>Grouping</th>
                    <th>State</th>
                    <th />
                  </tr>
                </thead>
                <tbody>
                  {data.alertRules.nodes.map((rule) => (
                    <RuleRow key={rule.rowId} rule={rule} onMute={mute} onEnable={enable} />
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <NewRule onCreate={(variables) => act(CREATE_RULE, variables)} />
          <h2>Recent firings</h2>
          <Firings firings={data.recentAlerts.nodes} />
        </>
      )}
    </section>
  );
}

function isMuted(rule: Rule): boolean {
  return rule.mutedUntil !== null && Date.parse(rule.mutedUntil) > Date.now();
}

function RuleRow({
  rule,
  onMute,
  onEnable,
}: {
  rule: Rule;
  onMute(rule: Rule, until: string | null): void;
  onEnable(rule: Rule, enabled: boolean): void;
}) {
  const firesOn =
    rule.kind === 'event'
      ? `failed ${rule.eventTypePattern ?? '*'} events${rule.streamTypePattern ? ` of ${rule.streamTypePattern} streams` : ''}`
      : `${rule.metric} of ${rule.service}${rule.operation ? ` / ${rule.operation}` : ''} > ${rule.threshold} over ${rule.windowSeconds} s`;
  const state = !rule.enabled ? 'disabled' : isMuted(rule) ? `muted until ${formatTime(rule.mutedUntil!)}` : 'active';
  return (
    <tr data-rule={rule.name}>
      <td>
        {rule.name}
        <div className="muted">{rule.organizationId ?? 'all organizations'}</div>
      </td>
      <td>{firesOn}</td>
      <td>
        {rule.channel}
        {rule.hasSecret ? ' (signed)' : ''}
        <div className="muted">{rule.target.replace(/^(https?:\/\/[^/]+)\/.+$/, '$1/…')}</div>
      </td>
      <td>
        {rule.groupSeconds} s, at most {rule.maxAlertsPerHour}/h
      </td>
      <td className="rule-state">{state}</td>
      <td>
        {isMuted(rule) ? (
          <button type="button" className="secondary" onClick={() => onMute(rule, null)}>
            Unmute
          </button>
        ) : (
          <button type="button" className="secondary" onClick={() => onMute(rule, new Date(Date.now() + 3_600_000).toISOString())}>
            Mute 1 h
          </button>
        )}{' '}
        <button type="button" className="secondary" onClick={() => onEnable(rule, !rule.enabled)}>
          {rule.enabled ? 'Disable' : 'Enable'}
        </button>
      </td>
    </tr>
  );
}

const CREATE_RULE = `mutation($input: CreateAlertRuleInput!) { createAlertRule(input: $input) { clientMutationId } }`;

function NewRule({ onCreate }: { onCreate(variables: Record<string, unknown>): Promise<void> }) {
  const [kind, setKind] = useState<'event' | 'rate'>('event');
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const text = (name: string) => (String(form.get(name) ?? '').trim() === '' ? undefined : String(form.get(name)).trim());
    const input: Record<string, unknown> = {
      pName: text('name'),
      pKind: kind,
      pChannel: text('channel'),
      pTarget: text('target'),
      pOrganizationId: text('organization'),
      pSecret: text('secret'),
    };
    if (kind === 'event') {
      input.pEventTypePattern = text('eventType');
      input.pStreamTypePattern = text('streamType');
    } else {
      input.pService = text('service');
      input.pOperation = text('operation');
      input.pMetric = text('metric');
      input.pThreshold = text('threshold') === undefined ? undefined : Number(text('threshold'));
      input.pWindowSeconds = text('window') === undefined ? undefined : Number(text('window'));
    }
    await onCreate({ input });
  };
  return (
    <details className="new-rule">
      <summary>New rule</summary>
      <form className="filters" onSubmit={(e) => void submit(e)} aria-label="New alert rule">
        <label>
          Name
          <input name="name" required />
        </label>
        <label>
          Kind
          <select name="kind" value={kind} onChange={(e) => setKind(e.target.value as 'event' | 'rate')}>
            <option value="event">failed events</option>
            <option value="rate">error rate or p95</option>
          </select>
        </label>
        {kind === 'event' ? (
          <>
            <label>
              Event type (* any)
              <input name="eventType" placeholder="payment.*" />
            </label>
            <label>
              Stream type
              <input name="streamType" placeholder="order" />
            </label>
          </>
        ) : (
          <>
            <label>
              Service
              <input name="service" required />
            </label>
            <label>
              Operation
              <input name="operation" placeholder="each" />
            </label>
            <label>
              Metric
              <select name="metric">
                <option value="error_rate">error rate</option>
                <option value="p95_ms">p95 ms</option>
              </select>
            </label>
            <label>
              Above
              <input name="threshold" type="number" step="any" required />
            </label>
            <label>
              Window (s)
              <input name="window" type="number" defaultValue={300} />
            </label>
          </>
        )}
        <label>
          Channel
          <select name="channel">
            <option value="slack">Slack</option>
            <option value="webhook">webhook</option>
            <option value="email">email</option>
          </select>
        </label>
        <label>
          URL or addresses
          <input name="target" required />
        </label>
        <label>
          Webhook secret
          <input name="secret" type="password" autoComplete="off" />
        </label>
        <label>
          Organization
          <input name="organization" placeholder="all" />
        </label>
        <button type="submit">Create</button>
      </form>
    </details>
  );
}

function Firings({ firings }: { firings: Firing[] }) {
  if (firings.length === 0) return <p className="empty">No alerts have fired.</p>;
  return (
    <div className="table-wrap">
      <table className="events alert-firings">
        <thead>
          <tr>
            <th>First</th>
            <th>Rule</th>
            <th>What</th>
            <th>Repeats</th>
            <th>Delivery</th>
            <th>Trace</th>
          </tr>
        </thead>
        <tbody>
          {firings.map((f) => (
            <tr key={f.rowId} data-alert={f.rowId}>
              <td>{formatTime(f.firstAt)}</td>
              <td>{f.ruleName}</td>
              <td>
                {f.details.event_type
                  ? `${f.details.event_type}: ${f.details.error ?? ''}`
                  : `${f.details.metric} ${Number(f.details.value).toFixed(3)} on ${f.details.service} / ${f.details.operation}`}
              </td>
              <td className="count">{f.repeatCount}</td>
              <td className="delivery">
                {f.state === 'queued' || f.state === 'test' ? (f.deliveryStatus ?? '–') : f.state.replace('_', ' ')}
                {f.deliveryStatus === 'queued' && f.deliveryAttempts ? ` (${f.deliveryAttempts} attempts)` : ''}
                {f.deliveryError && f.deliveryStatus !== 'sent' ? <div className="error-text">{f.deliveryError}</div> : null}
              </td>
              <td>
                <Id value={f.traceId} label="trace id" href={f.traceId ? `/trace/${f.traceId}` : undefined} short />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
