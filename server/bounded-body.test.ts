// readBodyPrefix against a real server: a body longer than the bound gives
// the bound's worth and the connection is closed; a shorter one is read
// whole.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readBodyPrefix } from './bounded-body.ts';

let server: Server;
let url: string;
let closed: Promise<void> | undefined;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/short') return res.end('short answer');
    closed = new Promise((resolve) => res.on('close', () => resolve()));
    const chunk = Buffer.alloc(16 * 1024, 'y');
    const write = () => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once('drain', write);
    };
    write();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

it('reads a bounded prefix of an endless body and closes the connection', async () => {
  const prefix = await readBodyPrefix(await fetch(`${url}/endless`), 1000);
  expect(prefix.byteLength).toBe(1000);
  expect(new TextDecoder().decode(prefix)).toBe('y'.repeat(1000));
  await closed;
});

it('reads a body shorter than the bound whole', async () => {
  expect(new TextDecoder().decode(await readBodyPrefix(await fetch(`${url}/short`), 1000))).toBe('short answer');
});
