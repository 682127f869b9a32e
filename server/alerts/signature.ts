// Webhook signatures: HMAC-SHA256 over "<unix seconds>.<body>" with the
// rule's secret, sent as `x-tracegres-signature: t=<seconds>,v1=<hex>`. The
// timestamp is inside the signed text, so a receiver that refuses old
// timestamps (verifyWebhookSignature: 5 minutes) refuses replays of a
// captured request; the delivery id header lets it drop at-least-once repeats.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-tracegres-signature';
export const DELIVERY_ID_HEADER = 'x-tracegres-delivery-id';

export function signWebhook(secret: string, body: string, nowSeconds = Math.floor(Date.now() / 1000)): string {
  return `t=${nowSeconds},v1=${hmac(secret, nowSeconds, body)}`;
}

export type SignatureCheck = { ok: true } | { ok: false; reason: string };

/** What a receiver does with a delivery: checks the signature and that it is fresh. */
export function verifyWebhookSignature(
  secret: string,
  body: string,
  header: string | null | undefined,
  options: { toleranceSeconds?: number; nowSeconds?: number } = {},
): SignatureCheck {
  const tolerance = options.toleranceSeconds ?? 300;
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  const match = /^t=(\d{1,12}),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!match) return { ok: false, reason: `${SIGNATURE_HEADER} is missing or malformed` };
  const timestamp = Number(match[1]);
  if (Math.abs(now - timestamp) > tolerance) return { ok: false, reason: `timestamp is more than ${tolerance} s from now (a replay?)` };
  const expected = Buffer.from(hmac(secret, timestamp, body), 'hex');
  if (!timingSafeEqual(expected, Buffer.from(match[2]!, 'hex'))) return { ok: false, reason: 'signature does not match' };
  return { ok: true };
}

function hmac(secret: string, timestamp: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}
