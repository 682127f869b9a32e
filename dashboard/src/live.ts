// The live view's streams (server-sent events, see server/live): failed
// events pushed as they happen (/live/failed-events), and a signal that new
// traces arrived (/live/traces). Read with
// fetch rather than EventSource, because the token goes in the
// Authorization header, as for GraphQL. A dropped stream is reopened after
// the delay the server asked for.
import { useEffect, useRef, useState } from 'react';
import { tokenStore, type ApiEvent } from './api.ts';

export type LiveState = 'off' | 'connecting' | 'live' | 'retrying';

/** One server-sent event block ("event: x\ndata: y") as its name and data. */
export function parseServerSentEvent(block: string): { event: string; data: string; retry?: number } | null {
  let event = 'message';
  const data: string[] = [];
  let retry: number | undefined;
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'retry' && /^\d+$/.test(value)) retry = Number(value);
  }
  if (data.length === 0 && retry === undefined) return null;
  return { event, data: data.join('\n'), retry };
}

/** While `enabled`, calls `onEvent` for each failed event the server pushes. */
export function useLiveFailedEvents(enabled: boolean, onEvent: (event: ApiEvent) => void): LiveState {
  return useLiveStream('/live/failed-events', enabled, (name, data) => {
    if (name === 'failed-event') onEvent(JSON.parse(data) as ApiEvent);
  });
}

/** While `enabled`, calls `onNewTraces` when traces the viewer may see arrive (at most once a second). */
export function useLiveNewTraces(enabled: boolean, onNewTraces: () => void): LiveState {
  return useLiveStream('/live/traces', enabled, (name) => {
    if (name === 'new-traces') onNewTraces();
  });
}

function useLiveStream(path: string, enabled: boolean, onMessage: (name: string, data: string) => void): LiveState {
  const [state, setState] = useState<LiveState>('off');
  const handler = useRef(onMessage);
  handler.current = onMessage;
  useEffect(() => {
    if (!enabled) {
      setState('off');
      return;
    }
    const abort = new AbortController();
    let retryMs = 3000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const connect = async () => {
      setState('connecting');
      try {
        const response = await fetch(path, {
          headers: { accept: 'text/event-stream', authorization: `Bearer ${tokenStore.get() ?? ''}` },
          signal: abort.signal,
        });
        if (!response.ok || !response.body) throw new Error(`the server answered ${response.status}`);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const message = parseServerSentEvent(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
            if (!message) continue;
            if (message.retry !== undefined) retryMs = message.retry;
            if (message.event === 'ready') setState('live');
            else handler.current(message.event, message.data);
          }
        }
      } catch {
        if (abort.signal.aborted) return;
      }
      if (abort.signal.aborted) return;
      setState('retrying');
      timer = setTimeout(() => void connect(), retryMs);
    };
    void connect();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [path, enabled]);
  return state;
}
