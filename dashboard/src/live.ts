// The live view's subscriptions (GraphQL over WebSocket, see
// server/graphql/live-subscriptions.ts): failed events pushed as they
// happen (`failedEvents`), and a signal that new traces arrived
// (`traceActivity`). The token goes in the connection_init payload, since a
// browser cannot set headers on a WebSocket. A dropped socket is reopened by
// graphql-ws, after a growing delay.
import { createClient, type Client } from 'graphql-ws';
import { useEffect, useRef, useState } from 'react';
import { EVENT_FIELDS, tokenStore, type ApiEvent } from './api.ts';

export type LiveState = 'off' | 'connecting' | 'live' | 'retrying';

const FAILED_EVENTS = `subscription LiveFailedEvents { failedEvents { ${EVENT_FIELDS} } }`;
const TRACE_ACTIVITY = 'subscription LiveTraceActivity { traceActivity }';
/** Searches run again at most this often, however fast traces arrive. */
export const TRACE_SIGNAL_EVERY_MS = 1000;

/** The WebSocket URL of the GraphQL endpoint for a page at `location`. */
export function graphqlSocketUrl(location: { protocol: string; host: string }): string {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/graphql`;
}

/**
 * Calls `call` at most once every `everyMs`: a call within that time runs
 * when it is over (once, however many came).
 */
export function throttle(call: () => void, everyMs: number, now: () => number = Date.now) {
  let last = -Infinity;
  let timer: ReturnType<typeof setTimeout> | undefined;
  return {
    request() {
      if (timer) return;
      const wait = last + everyMs - now();
      const run = () => {
        timer = undefined;
        last = now();
        call();
      };
      if (wait <= 0) run();
      else timer = setTimeout(run, wait);
    },
    cancel() {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}

/** While `enabled`, calls `onEvent` for each failed event the server pushes. */
export function useLiveFailedEvents(enabled: boolean, onEvent: (event: ApiEvent) => void): LiveState {
  return useSubscription(FAILED_EVENTS, enabled, (data) => {
    const event = (data as { failedEvents?: ApiEvent | null }).failedEvents;
    if (event) onEvent(event);
  });
}

/** While `enabled`, calls `onNewTraces` when traces the viewer may see arrive (at most once a second). */
export function useLiveNewTraces(enabled: boolean, onNewTraces: () => void): LiveState {
  const handler = useRef(onNewTraces);
  handler.current = onNewTraces;
  const [signal] = useState(() => throttle(() => handler.current(), TRACE_SIGNAL_EVERY_MS));
  useEffect(() => () => signal.cancel(), [signal]);
  return useSubscription(TRACE_ACTIVITY, enabled, () => signal.request());
}

function useSubscription(query: string, enabled: boolean, onData: (data: Record<string, unknown>) => void): LiveState {
  const [state, setState] = useState<LiveState>('off');
  const handler = useRef(onData);
  handler.current = onData;
  useEffect(() => {
    if (!enabled) {
      setState('off');
      return;
    }
    setState('connecting');
    let connectedOnce = false;
    // A disposed client's late events (its close) must not touch the state of the next.
    let disposed = false;
    const show = (next: LiveState) => {
      if (!disposed) setState(next);
    };
    const client: Client = createClient({
      url: graphqlSocketUrl(window.location),
      connectionParams: () => ({ Authorization: `Bearer ${tokenStore.get() ?? ''}` }),
      retryAttempts: Infinity,
      // A refused token (4403) is retried too: the viewer may sign in again.
      shouldRetry: () => true,
      on: {
        connected: () => {
          connectedOnce = true;
          show('live');
        },
        closed: () => show(connectedOnce ? 'retrying' : 'connecting'),
      },
    });
    const stop = client.subscribe(
      { query },
      {
        next: (result) => {
          if (result.data) handler.current(result.data);
        },
        // Refused (the caps, say): shown as retrying; the page still works without it.
        error: () => show('retrying'),
        complete: () => {},
      },
    );
    return () => {
      disposed = true;
      stop();
      void client.dispose();
    };
  }, [query, enabled]);
  return state;
}
