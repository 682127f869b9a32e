// GraphQL over HTTP as a client posts it, for the tests that call a running
// server: the HTTP status with the response's data and errors.

export interface GraphQLResult {
  status: number;
  data?: any;
  errors?: Array<{ message: string; extensions?: any }>;
}

/** Posts `query` with `variables` to `${serverUrl}/graphql`, with the bearer `token` when given. */
export async function postGraphQL(
  serverUrl: string,
  query: string,
  variables: Record<string, unknown> = {},
  token?: string,
): Promise<GraphQLResult> {
  const response = await fetch(`${serverUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, ...((await response.json()) as object) };
}
