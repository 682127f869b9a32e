// Sends one alert delivery to its channel and says what happened: sent,
// retry (the receiver may come back: network errors, timeouts, 429, 5xx,
// SMTP's temporary 4xx) or rejected (refused for good: other 4xx, SMTP's
// permanent 5xx, and a webhook or Slack target at an address deliveries may
// not reach, receiver-address.ts). Never throws for a receiver's failure.
import nodemailer from 'nodemailer';
import { fetch } from 'undici';
import { readBodyPrefix } from '../bounded-body.ts';
import { retryAfterMs } from '../otlp/exporter.ts';
import type { AlertConfig } from './config.ts';
import { describeAlert, emailHtml, emailText, slackBody, webhookBody, type AlertMessage, type DeliveryKind } from './messages.ts';
import { literalAddressRefusal, ReceiverAddressError, receiverDispatcher } from './receiver-address.ts';
import { DELIVERY_ID_HEADER, SIGNATURE_HEADER, signWebhook } from './signature.ts';

/** Of a receiver's answer, only this much is read: the reason quotes at most 500 characters of it. */
const ANSWER_PREFIX_BYTES = 4096;

/** A row of tracing.alert_claim_deliveries. */
export interface ClaimedDelivery {
  delivery_id: string;
  kind: DeliveryKind;
  attempts: number;
  channel: 'slack' | 'webhook' | 'email';
  target: string;
  secret: string | null;
  message: AlertMessage;
}

export type SendOutcome =
  | { kind: 'sent'; status?: number }
  | { kind: 'retry'; reason: string; status?: number; retryAfterMs?: number }
  | { kind: 'rejected'; reason: string; status?: number };

export interface Channels {
  send(delivery: ClaimedDelivery): Promise<SendOutcome>;
  close(): void;
}

export function createChannels(config: AlertConfig): Channels {
  const mailer = config.smtpUrl ? nodemailer.createTransport(config.smtpUrl) : undefined;
  const dispatcher = receiverDispatcher(config.allowPrivateTargets);

  async function post(target: string, body: string, headers: Record<string, string>): Promise<SendOutcome> {
    // The rule's check of a target (http or https, no spaces) lets through
    // some that are no URL (a port past 65535, an unclosed [): refused for
    // good here, never thrown, which would fail the whole claimed batch.
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      return { kind: 'rejected', reason: `the target ${JSON.stringify(target)} is not a valid URL` };
    }
    const refusal = config.allowPrivateTargets ? undefined : literalAddressRefusal(url);
    if (refusal) return { kind: 'rejected', reason: refusal };
    let response: Awaited<ReturnType<typeof fetch>>;
    let text: string;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
        signal: AbortSignal.timeout(config.timeoutMs),
        // A redirect is answered as a refusal, never followed to wherever it points.
        redirect: 'manual',
        dispatcher,
      });
      text = new TextDecoder().decode(await readBodyPrefix(response, ANSWER_PREFIX_BYTES));
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause;
      if (cause instanceof ReceiverAddressError) return { kind: 'rejected', reason: cause.message };
      return {
        kind: 'retry',
        reason:
          (error as Error).name === 'TimeoutError'
            ? `no answer within ${config.timeoutMs} ms`
            : `network error: ${(error as Error).message}${cause?.code ? ` (${cause.code})` : ''}`,
      };
    }
    const status = response.status;
    if (status >= 200 && status < 300) return { kind: 'sent', status };
    const reason = `HTTP ${status}${text.trim() ? `: ${text.trim().slice(0, 500)}` : ''}`;
    if (status === 429 || status >= 500)
      return { kind: 'retry', reason, status, retryAfterMs: retryAfterMs(response.headers.get('retry-after')) };
    return { kind: 'rejected', reason, status };
  }

  return {
    async send(delivery) {
      const content = describeAlert(delivery.message, delivery.kind, config.dashboardUrl);
      switch (delivery.channel) {
        case 'slack':
          return post(delivery.target, JSON.stringify(slackBody(content)), {});
        case 'webhook': {
          const body = JSON.stringify(webhookBody(content, delivery.message, delivery.kind, delivery.delivery_id));
          const headers: Record<string, string> = { [DELIVERY_ID_HEADER]: delivery.delivery_id };
          if (delivery.secret) headers[SIGNATURE_HEADER] = signWebhook(delivery.secret, body);
          return post(delivery.target, body, headers);
        }
        case 'email': {
          // Retried, not dead-lettered: mail queued before SMTP was set up
          // goes out once it is (until the attempts run out).
          if (!mailer) return { kind: 'retry', reason: 'TRACEGRES_SMTP_URL is not set: email alerts cannot be sent' };
          try {
            await mailer.sendMail({
              from: config.emailFrom,
              to: delivery.target,
              subject: content.title,
              text: emailText(content),
              html: emailHtml(content),
              headers: { 'X-Tracegres-Delivery-Id': delivery.delivery_id },
            });
            return { kind: 'sent' };
          } catch (error) {
            const code = (error as { responseCode?: number }).responseCode;
            const reason = `SMTP: ${(error as Error).message}`.slice(0, 1000);
            // RFC 5321: 5yz is a permanent failure, anything else may pass later.
            return code !== undefined && code >= 500 ? { kind: 'rejected', reason, status: code } : { kind: 'retry', reason, status: code };
          }
        }
      }
    },
    close() {
      mailer?.close();
      void dispatcher.close();
    },
  };
}
