// Alert delivery settings, all from the environment (docs/alerts.md).
import { positiveInteger } from '../config-values.ts';

export interface AlertConfig {
  /** Base URL of the dashboard, for the trace links in messages (TRACEGRES_ALERTS_DASHBOARD_URL). */
  dashboardUrl: string;
  /** SMTP server for the email channel, e.g. smtp://user:pass@host:587 (TRACEGRES_SMTP_URL); email is refused without it. */
  smtpUrl?: string;
  /** The From of alert mail (TRACEGRES_ALERTS_EMAIL_FROM). */
  emailFrom: string;
  /** Idle wait between looks at the queue when no NOTIFY arrives, ms (TRACEGRES_ALERTS_POLL_MS). */
  pollIntervalMs: number;
  /** Give up on a receiver after this long, ms (TRACEGRES_ALERTS_TIMEOUT_MS). */
  timeoutMs: number;
  /** Deliveries claimed at once, at most 1,000 as tracing.alert_claim_deliveries allows (TRACEGRES_ALERTS_BATCH_SIZE). */
  batchSize: number;
  /** Whether webhook and Slack deliveries may reach loopback, private and link-local addresses (TRACEGRES_ALERTS_ALLOW_PRIVATE_TARGETS; receiver-address.ts). */
  allowPrivateTargets: boolean;
}

export class AlertConfigError extends Error {}

export function readAlertConfig(env: NodeJS.ProcessEnv = process.env, defaultDashboardUrl = 'http://localhost:5678'): AlertConfig {
  const dashboardUrl = (env.TRACEGRES_ALERTS_DASHBOARD_URL?.trim() || defaultDashboardUrl).replace(/\/+$/, '');
  if (!/^https?:\/\/\S+$/.test(dashboardUrl)) {
    throw new AlertConfigError(`TRACEGRES_ALERTS_DASHBOARD_URL must be an http(s) URL, got ${JSON.stringify(dashboardUrl)}`);
  }
  const smtpUrl = env.TRACEGRES_SMTP_URL?.trim() || undefined;
  if (smtpUrl && !/^smtps?:\/\/\S+$/.test(smtpUrl)) {
    throw new AlertConfigError('TRACEGRES_SMTP_URL must be an smtp:// or smtps:// URL');
  }
  return {
    dashboardUrl,
    smtpUrl,
    emailFrom: env.TRACEGRES_ALERTS_EMAIL_FROM?.trim() || 'tracegres <alerts@localhost>',
    pollIntervalMs: positiveInteger(env.TRACEGRES_ALERTS_POLL_MS, 'TRACEGRES_ALERTS_POLL_MS', 1000, AlertConfigError),
    timeoutMs: positiveInteger(env.TRACEGRES_ALERTS_TIMEOUT_MS, 'TRACEGRES_ALERTS_TIMEOUT_MS', 10_000, AlertConfigError),
    batchSize: positiveInteger(env.TRACEGRES_ALERTS_BATCH_SIZE, 'TRACEGRES_ALERTS_BATCH_SIZE', 20, AlertConfigError, MAX_BATCH_SIZE),
    allowPrivateTargets: flag(env.TRACEGRES_ALERTS_ALLOW_PRIVATE_TARGETS, 'TRACEGRES_ALERTS_ALLOW_PRIVATE_TARGETS'),
  };
}

function flag(value: string | undefined, name: string): boolean {
  const text = value?.trim().toLowerCase() ?? '';
  if (text === '' || text === '0' || text === 'false') return false;
  if (text === '1' || text === 'true') return true;
  throw new AlertConfigError(`${name} must be true, false, 1 or 0, got ${JSON.stringify(value)}`);
}

// The claim's own bound (p_limit of tracing.alert_claim_deliveries): a larger
// setting would pass here and then fail every claim.
const MAX_BATCH_SIZE = 1000;
