// The bad-argument cases of a function's test: each query must fail with
// SQLSTATE 22023 and a message that names the argument.
import { expect } from 'vitest';

/** Runs each case's query with `run` and expects 22023 with a message matching the case's pattern. */
export async function expectArgumentErrors(run: (query: string) => Promise<unknown>, cases: [string, RegExp][]): Promise<void> {
  for (const [query, message] of cases) {
    const error = await run(query).then(
      () => undefined,
      (e) => e,
    );
    expect(error?.code, query).toBe('22023');
    expect(error.message, query).toMatch(message);
  }
}
