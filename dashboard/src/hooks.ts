import { useEffect, useState } from 'react';
import { graphql } from './api.ts';

export interface QueryState<T> {
  data?: T;
  error?: unknown;
  loading: boolean;
}

/** Runs a GraphQL query whenever `key` changes; a stale answer never overwrites a newer one. */
export function useQuery<T>(query: string, variables: Record<string, unknown>, key: string, skip = false): QueryState<T> {
  const [state, setState] = useState<QueryState<T>>({ loading: !skip });
  useEffect(() => {
    if (skip) {
      setState({ loading: false });
      return;
    }
    const controller = new AbortController();
    setState((previous) => ({ data: previous.data, loading: true }));
    graphql<T>(query, variables, undefined, controller.signal).then(
      (data) => !controller.signal.aborted && setState({ data, loading: false }),
      (error) => !controller.signal.aborted && setState({ error, loading: false }),
    );
    return () => controller.abort();
    // `key` stands for the query and its variables.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, skip]);
  return state;
}
