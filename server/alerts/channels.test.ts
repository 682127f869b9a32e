// The webhook and Slack channels as receivers meet them: however long a
// receiver's answer is, only its first bytes are read and the connection
// is closed; and a target at a loopback, private or link-local address,
// written as an address or as a name that resolves to one, is refused for
// good without a request, unless the operator allows private targets.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChannels, type ClaimedDelivery } from './channels.ts';
import { readAlertConfig } from './config.ts';
import type { AlertMessage } from './messages.ts';
import { addressRefusal } from './receiver-address.ts';

const message: AlertMessage = {
  alert_id: 1,
  rule: { id: 1, name: 'payments', kind: 'event' },
  organization_id: null,
  fingerprint: 'f',
  first_at: '2026-12-06T10:00:00Z',
  last_at: '2026-12-06T10:00:00Z',
  repeat_count: 1,
  details: { event_type: 'payment.declined', stream_type: 'order', error: 'card declined' },
  trace: null,
};

const delivery = (target: string, channel: 'webhook' | 'slack' = 'webhook'): ClaimedDelivery => ({
  delivery_id: '1',
  kind: 'first',
  attempts: 0,
  channel,
  target,
  secret: null,
  message,
});

const config = (allowPrivateTargets: boolean) =>
  readAlertConfig({ TRACEGRES_ALERTS_TIMEOUT_MS: '5000', TRACEGRES_ALERTS_ALLOW_PRIVATE_TARGETS: String(allowPrivateTargets) });

// A receiver that answers 503 and then streams its body until the client
// hangs up, counting what it sent; or answers 200 "ok".
let server: Server;
let port: number;
const requests: string[] = [];
let endless: { sent: number; closed: Promise<void> } | undefined;

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.push(req.url ?? '');
    req.resume();
    if (req.url === '/endless') return streamForever(res);
    res.writeHead(200).end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function streamForever(res: ServerResponse) {
  const chunk = Buffer.alloc(16 * 1024, 'x');
  const state = { sent: 0, closed: new Promise<void>((resolve) => res.on('close', () => resolve())) };
  endless = state;
  res.writeHead(503, { 'content-type': 'text/plain' });
  const write = () => {
    while (!res.destroyed && res.write(chunk)) state.sent += chunk.length;
    if (!res.destroyed) res.once('drain', write);
  };
  write();
}

describe("a receiver's answer", () => {
  it('is read only as far as its first bytes, and the connection is closed instead of drained', async () => {
    const channels = createChannels(config(true));
    try {
      const outcome = await channels.send(delivery(`http://127.0.0.1:${port}/endless`));
      expect(outcome).toMatchObject({ kind: 'retry', status: 503, reason: expect.stringMatching(/^HTTP 503: x{500}$/) });
      await endless!.closed;
      // The body never ends; the sender read 4 KiB of it and hung up, so
      // the receiver got no further than what the sockets' buffers hold
      // on the way (a few MiB on loopback, far below the 8 MiB bound).
      expect(endless!.sent).toBeLessThan(8 * 1024 * 1024);
    } finally {
      channels.close();
    }
  });
});

describe('receiver addresses', () => {
  it('refuses loopback, private, link-local and metadata addresses, by address or by name, without a request', async () => {
    const channels = createChannels(config(false));
    const before = requests.length;
    try {
      const refused = async (target: string, channel: 'webhook' | 'slack' = 'webhook') => {
        const outcome = await channels.send(delivery(target, channel));
        expect(outcome.kind).toBe('rejected');
        return (outcome as { reason: string }).reason;
      };
      expect(await refused(`http://127.0.0.1:${port}/hook`)).toBe(
        '127.0.0.1 is a loopback address: alert deliveries reach public addresses only unless TRACEGRES_ALERTS_ALLOW_PRIVATE_TARGETS is set',
      );
      expect(await refused(`http://localhost:${port}/hook`, 'slack')).toMatch(
        /^localhost resolves to (127\.0\.0\.1|::1), which is a loopback address: alert deliveries reach public addresses only/,
      );
      expect(await refused(`http://[::ffff:127.0.0.1]:${port}/hook`)).toMatch(/is a loopback address/);
      expect(await refused('http://169.254.169.254/latest/meta-data/')).toMatch(/^169\.254\.169\.254 is a linkLocal address/);
      expect(await refused('https://10.1.2.3/hook')).toMatch(/^10\.1\.2\.3 is a private address/);
      expect(await refused('http://[fd00:ec2::254]/')).toMatch(/is a uniqueLocal address/);
      expect(await refused('http://100.100.100.200/')).toMatch(/is a carrierGradeNat address/);
      expect(requests.length).toBe(before);
    } finally {
      channels.close();
    }
  });

  it('refuses for good a target the rule check lets through that is no URL, without throwing', async () => {
    for (const allowPrivateTargets of [false, true]) {
      const channels = createChannels(config(allowPrivateTargets));
      try {
        for (const target of ['http://example.com:99999/hook', 'https://[::1/hook', 'http://a%zz/']) {
          expect(await channels.send(delivery(target))).toEqual({
            kind: 'rejected',
            reason: `the target ${JSON.stringify(target)} is not a valid URL`,
          });
        }
      } finally {
        channels.close();
      }
    }
  });

  it('lets public unicast addresses through, and any address when the operator allows private targets', async () => {
    for (const address of ['8.8.8.8', '2606:4700::1111', '::ffff:8.8.8.8']) expect(addressRefusal(address)).toBeUndefined();
    const channels = createChannels(config(true));
    try {
      expect(await channels.send(delivery(`http://localhost:${port}/hook`))).toEqual({ kind: 'sent', status: 200 });
    } finally {
      channels.close();
    }
  });
});
