// The demo checkout's order processor, as far as replay needs one: it
// consumes replayed events through ts/store/replay-processor.ts. Before the
// "fix" it declines payments as the demo's requests were declined; after it
// (`fixed: true`) every event goes through, so a replayed failed payment
// ends processed. A reference for an application's own processor.
import type { Sql } from 'postgres';
import { startReplayProcessor, type ReplayProcessor } from '../ts/store/replay-processor.ts';

export function startDemoOrderProcessor(sql: Sql, options: { fixed: boolean; pollMs?: number }): Promise<ReplayProcessor> {
  return startReplayProcessor(sql, {
    processor: 'demo-order-processor',
    service: 'order-worker',
    pollMs: options.pollMs,
    async handle(event) {
      if (!options.fixed && event.event_type.startsWith('payment.')) throw new Error('card declined: insufficient funds');
    },
  });
}
