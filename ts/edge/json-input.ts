/**
 * Reading and checking a JSON request body, for handlers that must answer
 * bad input with a 400 that lists every problem at once (and carries the
 * correlation id, through errorResponse).
 */
import { UUID_PATTERN } from '../trace-context/headers.ts';

export interface InputIssue {
  /** The field, or "body" for the body as a whole. */
  path: string;
  message: string;
}

export type JsonObjectResult = { ok: true; value: Record<string, unknown> } | { ok: false; status: 400 | 413 | 415; issues: InputIssue[] };

/** Bodies larger than this are refused, unread past the limit (65,536 bytes). */
export const MAX_JSON_BODY = 64 * 1024;

export async function readJsonObject(request: Request, maxLength = MAX_JSON_BODY): Promise<JsonObjectResult> {
  const type = request.headers.get('content-type');
  if (type !== null && !/^application\/([a-z.+-]*\+)?json\b/i.test(type.trim())) {
    return { ok: false, status: 415, issues: [{ path: 'body', message: 'content-type must be application/json' }] };
  }
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > maxLength) {
    return { ok: false, status: 413, issues: [{ path: 'body', message: `body must be at most ${maxLength} bytes` }] };
  }
  // Content-Length may be absent (chunked) or lie: count bytes as they arrive.
  const body = await readBounded(request, maxLength);
  if (body === 'too large') {
    return { ok: false, status: 413, issues: [{ path: 'body', message: `body must be at most ${maxLength} bytes` }] };
  }
  if (body === 'unreadable') {
    return { ok: false, status: 400, issues: [{ path: 'body', message: 'body could not be read' }] };
  }
  let value: unknown;
  try {
    value = JSON.parse(body.text);
  } catch {
    return { ok: false, status: 400, issues: [{ path: 'body', message: 'body must be valid JSON' }] };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, status: 400, issues: [{ path: 'body', message: 'body must be a JSON object' }] };
  }
  return { ok: true, value: value as Record<string, unknown> };
}

/**
 * Collects field problems while reading values, so one response names them
 * all. Each reader returns the value when it is valid and undefined
 * otherwise (recording an issue unless the field was optional and absent).
 */
export class InputChecker {
  readonly issues: InputIssue[] = [];

  constructor(private readonly input: Record<string, unknown>) {}

  get ok(): boolean {
    return this.issues.length === 0;
  }

  private present(name: string, optional: boolean): unknown {
    const value = this.input[name];
    if (value === undefined || value === null) {
      if (!optional) this.issues.push({ path: name, message: 'is required' });
      return undefined;
    }
    return value;
  }

  string(name: string, options: { optional?: boolean; min?: number; max?: number } = {}): string | undefined {
    const value = this.present(name, options.optional ?? false);
    if (value === undefined) return undefined;
    if (typeof value !== 'string') return this.fail(name, 'must be a string');
    const trimmed = value.trim();
    const min = options.min ?? 1;
    const max = options.max ?? 1000;
    if (trimmed.length < min) return this.fail(name, min === 1 ? 'must not be empty' : `must be at least ${min} characters`);
    if (trimmed.length > max) return this.fail(name, `must be at most ${max} characters`);
    return trimmed;
  }

  uuid(name: string, options: { optional?: boolean } = {}): string | undefined {
    const value = this.present(name, options.optional ?? false);
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || !UUID_PATTERN.test(value) || /^[0-]+$/.test(value)) return this.fail(name, 'must be a uuid');
    return value.toLowerCase();
  }

  email(name: string, options: { optional?: boolean } = {}): string | undefined {
    const value = this.string(name, { optional: options.optional, max: 254 });
    if (value === undefined) return undefined;
    if (!isEmailAddress(value)) return this.fail(name, 'must be an email address');
    return value.toLowerCase();
  }

  oneOf<const T extends string>(name: string, allowed: readonly T[], options: { optional?: boolean } = {}): T | undefined {
    const value = this.present(name, options.optional ?? false);
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      return this.fail(name, `must be one of ${allowed.join(', ')}`);
    }
    return value as T;
  }

  integer(name: string, options: { optional?: boolean; min?: number; max?: number } = {}): number | undefined {
    const value = this.present(name, options.optional ?? false);
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value)) return this.fail(name, 'must be an integer');
    if (options.min !== undefined && value < options.min) return this.fail(name, `must be at least ${options.min}`);
    if (options.max !== undefined && value > options.max) return this.fail(name, `must be at most ${options.max}`);
    return value;
  }

  private fail(path: string, message: string): undefined {
    this.issues.push({ path, message });
    return undefined;
  }
}

/** A body's text, reading no more than maxBytes of it (Web streams only, so it runs in Deno too). */
async function readBounded(request: Request, maxBytes: number): Promise<{ text: string } | 'too large' | 'unreadable'> {
  if (!request.body) return { text: '' };
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel().catch(() => {});
        return 'too large';
      }
      chunks.push(value);
    }
  } catch {
    return 'unreadable';
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { text: new TextDecoder().decode(bytes) };
}

/**
 * local@domain with a dot inside the domain, one "@" and no whitespace: the
 * usual /^[^\s@]+@[^\s@]+\.[^\s@]+$/, checked in one pass instead of by a
 * regex that backtracks over the domain.
 */
function isEmailAddress(value: string): boolean {
  if (/\s/.test(value)) return false;
  const at = value.indexOf('@');
  if (at <= 0 || value.indexOf('@', at + 1) !== -1) return false;
  const dot = value.indexOf('.', at + 2);
  return dot !== -1 && dot < value.length - 1;
}
