import { assert, describe, it } from '../trace-context/test-harness.ts';
import { InputChecker, readJsonObject } from './json-input.ts';

function post(body: string, headers: HeadersInit = { 'content-type': 'application/json' }): Request {
  return new Request('https://edge.example/f', { method: 'POST', body, headers });
}

describe('readJsonObject', () => {
  it('reads a JSON object', async () => {
    assert.deepEqual(await readJsonObject(post('{"a":1}')), { ok: true, value: { a: 1 } });
    assert.deepEqual(await readJsonObject(post('{"a":1}', { 'content-type': 'application/merge-patch+json' })), {
      ok: true,
      value: { a: 1 },
    });
  });

  it('refuses malformed JSON, non-objects, other content types and large bodies', async () => {
    const bad = await readJsonObject(post('{"a":'));
    assert.deepEqual(bad, { ok: false, status: 400, issues: [{ path: 'body', message: 'body must be valid JSON' }] });
    for (const body of ['[]', 'null', '"x"', '3']) {
      const result = await readJsonObject(post(body));
      assert.equal(result.ok ? 0 : result.status, 400, body);
    }
    const form = await readJsonObject(post('a=1', { 'content-type': 'application/x-www-form-urlencoded' }));
    assert.equal(form.ok ? 0 : form.status, 415);
    const large = await readJsonObject(post(JSON.stringify({ a: 'x'.repeat(100) })), 50);
    assert.equal(large.ok ? 0 : large.status, 413);
  });

  it('stops reading a chunked body without Content-Length once it passes the limit', async () => {
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new TextEncoder().encode(`{"a":"${'x'.repeat(1024)}`));
      },
    });
    const request = new Request('https://edge.example/f', {
      method: 'POST',
      body: endless,
      headers: { 'content-type': 'application/json' },
      duplex: 'half',
    } as RequestInit);
    const result = await readJsonObject(request, 8 * 1024);
    assert.deepEqual(result, { ok: false, status: 413, issues: [{ path: 'body', message: 'body must be at most 8192 bytes' }] });
    assert.ok(pulled <= 10, `read ${pulled} chunks of an endless body`);
  });
});

describe('InputChecker', () => {
  it('returns valid values, normalised', () => {
    const check = new InputChecker({
      name: '  Acme  ',
      id: '6F1C2A8E-3B4D-4C5E-9F60-718293A4B5C6',
      email: 'Ada@Example.com',
      role: 'admin',
      days: 7,
    });
    assert.equal(check.string('name'), 'Acme');
    assert.equal(check.uuid('id'), '6f1c2a8e-3b4d-4c5e-9f60-718293a4b5c6');
    assert.equal(check.email('email'), 'ada@example.com');
    assert.equal(check.oneOf('role', ['admin', 'member'] as const), 'admin');
    assert.equal(check.integer('days', { min: 1, max: 30 }), 7);
    assert.equal(check.uuid('missing', { optional: true }), undefined);
    assert.equal(check.ok, true);
  });

  it('accepts and refuses email addresses as local@domain.tld', () => {
    const accepted = ['a@b.co', 'first.last+tag@sub.example.org', 'a@b.c.', 'a@b-c.d'];
    const refused = ['a', '@b.co', 'a@', 'a@b', 'a@.b', 'a@b.', 'a@@b.co', 'a@b@c.co', 'a b@c.co', 'a@b.c o', 'a@\tb.co'];
    for (const email of accepted) assert.equal(new InputChecker({ email }).email('email'), email, email);
    for (const email of refused) {
      const check = new InputChecker({ email });
      check.email('email');
      assert.equal(check.ok, false, email);
    }
  });

  it('collects every issue at once', () => {
    const check = new InputChecker({
      name: '',
      id: 'nope',
      email: 'ada',
      role: 'god',
      days: 1.5,
      nil: '00000000-0000-0000-0000-000000000000',
    });
    check.string('name');
    check.uuid('id');
    check.email('email');
    check.oneOf('role', ['admin', 'member'] as const);
    check.integer('days');
    check.uuid('nil');
    check.string('absent');
    assert.equal(check.ok, false);
    assert.deepEqual(check.issues, [
      { path: 'name', message: 'must not be empty' },
      { path: 'id', message: 'must be a uuid' },
      { path: 'email', message: 'must be an email address' },
      { path: 'role', message: 'must be one of admin, member' },
      { path: 'days', message: 'must be an integer' },
      { path: 'nil', message: 'must be a uuid' },
      { path: 'absent', message: 'is required' },
    ]);
  });

  it('checks lengths and ranges', () => {
    const check = new InputChecker({ s: 'abc', n: 40, t: 5 });
    assert.equal(check.string('s', { min: 5 }), undefined);
    assert.equal(check.string('s', { max: 2 }), undefined);
    assert.equal(check.integer('n', { max: 30 }), undefined);
    assert.equal(check.integer('t', { min: 10 }), undefined);
    assert.equal(check.string('t'), undefined);
    assert.equal(check.issues.length, 5);
  });
});
