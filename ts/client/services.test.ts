import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corsHeaders } from '../edge/error-response.ts';
import { createInvitationService } from './services/invitation-service.ts';
import { createUserCommandService } from './services/user-command-service.ts';
import { signAccessToken } from './test-access-token.ts';
import { type TestServer, startTestServer } from './test-server.ts';
import { startUserAction } from './traced-fetch.ts';

const SESSION_ID = '8a3c1f9e-2b7d-4e61-9c05-3f1d2a6b7c80';
const USER_ID = '5b0e8f2c-1d3a-4c6e-8f90-a1b2c3d4e5f6';
const ORGANIZATION_ID = 'c3d4e5f6-a1b2-4c6e-8f90-5b0e8f2c1d3a';
const OTHER_USER_ID = 'e5f6a1b2-c3d4-4e6e-8f90-1d3a5b0e8f2c';
const INVITATION_ID = '9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a';
const API_KEY = 'anon-key';

let server: TestServer;
let accessToken: string;

beforeAll(async () => {
  accessToken = await signAccessToken({ userId: USER_ID, sessionId: SESSION_ID });

  // Stand-ins that answer with the functions' response shapes, so these tests
  // look at what the client sends; edge-functions.db.test.ts runs the real ones.
  server = await startTestServer(async (request) => {
    const body = (await request.json()) as Record<string, unknown>;
    switch (new URL(request.url).pathname) {
      case '/functions/v1/invite-user':
        return Response.json({ invitationId: INVITATION_ID, expiresAt: '2026-12-02T10:00:00.000Z' }, { status: 201 });
      case '/functions/v1/accept-invitation':
        return Response.json({ organizationId: ORGANIZATION_ID, role: 'member' });
      case '/functions/v1/manage-user':
        return Response.json({ userId: body['userId'], action: body['action'], eventId: '1042' });
      default:
        return new Response('no such function', { status: 404 });
    }
  });
});

afterAll(async () => {
  await server?.close();
});

describe('invitation service', () => {
  it('posts the invitation as JSON to the invite-user function, with auth and tracing headers', async () => {
    const service = createInvitationService({ baseUrl: server.url, apiKey: API_KEY, accessToken });
    const input = { organizationId: ORGANIZATION_ID, email: 'new@example.com', role: 'member', expiresInDays: 3 } as const;
    await expect(service.inviteUser(input)).resolves.toEqual({
      invitationId: INVITATION_ID,
      expiresAt: '2026-12-02T10:00:00.000Z',
    });
    const { method, path, headers, body } = server.lastReceived();
    expect(method).toBe('POST');
    expect(path).toBe('/functions/v1/invite-user');
    expect(JSON.parse(body)).toEqual(input);
    expect(headers.get('content-type')).toBe('application/json');
    expect(headers.get('apikey')).toBe(API_KEY);
    expect(headers.get('authorization')).toBe(`Bearer ${accessToken}`);
    expect(headers.get('x-session-id')).toBe(SESSION_ID);
    expect(headers.has('traceparent')).toBe(true);
    expect(headers.has('x-correlation-id')).toBe(true);
  });

  it('accepts an invitation through accept-invitation, tolerating a trailing slash on the base URL', async () => {
    const service = createInvitationService({ baseUrl: `${server.url}/`, accessToken });
    await expect(service.acceptInvitation({ invitationId: INVITATION_ID, userId: USER_ID })).resolves.toEqual({
      organizationId: ORGANIZATION_ID,
      role: 'member',
    });
    expect(server.lastReceived().path).toBe('/functions/v1/accept-invitation');
    expect(JSON.parse(server.lastReceived().body)).toEqual({ invitationId: INVITATION_ID, userId: USER_ID });
  });

  it('sends no session id or authorization when signed out', async () => {
    const service = createInvitationService({ baseUrl: server.url, apiKey: API_KEY });
    await service.acceptInvitation({ invitationId: INVITATION_ID, userId: USER_ID });
    expect(server.lastReceived().headers.has('authorization')).toBe(false);
    expect(server.lastReceived().headers.has('x-session-id')).toBe(false);
  });
});

describe('user command service', () => {
  it('sends the command to manage-user', async () => {
    const service = createUserCommandService({ baseUrl: server.url, accessToken });
    const command = { action: 'change_role', organizationId: ORGANIZATION_ID, userId: OTHER_USER_ID, role: 'admin' } as const;
    await expect(service.manageUser(command)).resolves.toEqual({ userId: OTHER_USER_ID, action: 'change_role', eventId: '1042' });
    expect(server.lastReceived().path).toBe('/functions/v1/manage-user');
    expect(JSON.parse(server.lastReceived().body)).toEqual(command);
  });

  it('shares one correlation id across the calls of one user action', async () => {
    const users = createUserCommandService({ baseUrl: server.url, accessToken });
    const invitations = createInvitationService({ baseUrl: server.url, accessToken });
    const { correlationId } = startUserAction();
    await invitations.inviteUser({ organizationId: ORGANIZATION_ID, email: 'new@example.com', role: 'viewer' }, { correlationId });
    await users.manageUser({ action: 'reactivate', organizationId: ORGANIZATION_ID, userId: OTHER_USER_ID }, { correlationId });
    const [first, second] = server.received.slice(-2);
    expect(first?.headers.get('x-correlation-id')).toBe(correlationId);
    expect(second?.headers.get('x-correlation-id')).toBe(correlationId);
    expect(first?.headers.get('traceparent')).not.toBe(second?.headers.get('traceparent'));
  });
});

describe('cross-origin use from a browser', () => {
  /** Request headers a browser sends without asking the server in a preflight (Fetch standard, CORS-safelisted). */
  const SAFELISTED = new Set(['accept', 'accept-language', 'content-language']);

  /** The headers a service call sets, captured before any network stack adds its own. */
  async function headersOfCall(apiKey?: string): Promise<string[]> {
    let sent: Request | undefined;
    const service = createInvitationService({
      baseUrl: 'https://project.supabase.co',
      accessToken,
      ...(apiKey === undefined ? {} : { apiKey }),
      fetch: async (input, init) => {
        sent = new Request(input, init);
        return Response.json({ invitationId: INVITATION_ID, expiresAt: '2026-12-02T10:00:00.000Z' }, { status: 201 });
      },
    });
    await service.inviteUser({ organizationId: ORGANIZATION_ID, email: 'new@example.com', role: 'member' });
    return [...(sent?.headers.keys() ?? [])].filter((name) => !SAFELISTED.has(name));
  }

  function allowedBy(cors: Record<string, string>): string[] {
    return (cors['access-control-allow-headers'] ?? '').split(',').map((name) => name.trim());
  }

  it("sends only headers the edge functions' default CORS preflight allows", async () => {
    const allowed = allowedBy(corsHeaders());
    for (const name of await headersOfCall()) expect(allowed).toContain(name);
  });

  it('needs `apikey` allowed by the function when an API key is configured', async () => {
    expect(await headersOfCall('anon-key')).toContain('apikey');
    const allowed = allowedBy(corsHeaders({ allowHeaders: ['apikey'] }));
    for (const name of await headersOfCall('anon-key')) expect(allowed).toContain(name);
  });

  it('can read the ids of a failed call, because the functions expose the headers tracedFetch reads', () => {
    const exposed = (corsHeaders()['access-control-expose-headers'] ?? '').split(',').map((name) => name.trim());
    expect(exposed).toEqual(expect.arrayContaining(['x-correlation-id', 'traceresponse']));
  });
});
