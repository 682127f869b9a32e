/**
 * The one way the example services call a Supabase Edge Function: POST JSON
 * to `<baseUrl>/functions/v1/<name>` through tracedFetch, so each call carries
 * trace context and fails with a TracedRequestError.
 */
import { tracedFetchJson } from '../traced-fetch.ts';

export interface EdgeFunctionConfig {
  /** The Supabase project URL, e.g. `https://<ref>.supabase.co`. */
  baseUrl: string;
  /**
   * The project's anon key, sent as `apikey` as supabase-js does. Cross-origin,
   * the function's CORS must then allow that header (the edge toolkit's
   * `corsHeaders({ allowHeaders: ["apikey"] })`), or the preflight fails.
   */
  apiKey?: string;
  /** The signed-in user's access token; sent as the bearer token and read for the session id. */
  accessToken?: string | null;
  fetch?: typeof fetch;
}

export interface CallOptions {
  /** The user action's correlation id, when the call is one step of a larger action. */
  correlationId?: string;
  signal?: AbortSignal;
}

export function edgeFunctionUrl(baseUrl: string, name: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/functions/v1/${encodeURIComponent(name)}`;
}

export function invokeEdgeFunction<TOutput>(
  config: EdgeFunctionConfig,
  name: string,
  input: unknown,
  options: CallOptions = {},
): Promise<TOutput> {
  const headers = new Headers({ 'content-type': 'application/json', accept: 'application/json' });
  if (config.apiKey !== undefined) headers.set('apikey', config.apiKey);
  if (config.accessToken) headers.set('authorization', `Bearer ${config.accessToken}`);
  return tracedFetchJson<TOutput>(
    edgeFunctionUrl(config.baseUrl, name),
    { method: 'POST', headers, body: JSON.stringify(input), signal: options.signal },
    { correlationId: options.correlationId, fetch: config.fetch },
  );
}
