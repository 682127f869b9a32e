// The live view as GraphQL subscriptions (see db/functions/240-live-feed.sql
// for what Postgres sends, and server/graphql/websocket.ts for the socket):
//
// `failedEvents`: each failed event as it happens. A trigger NOTIFYs the id
// of each event that failed; PostGraphile's pgSubscriber LISTENs once for all
// subscribers, on the primary (a standby cannot LISTEN), and each id is read
// back through api.get_failed_events_by_id with the subscriber's settings,
// in its own transaction on the primary (a subscription is not a read-only
// query, so it never goes to a replica that may not have the row yet), so
// row-level security decides what each subscriber is sent.
//
// `traceActivity`: a signal (true) that traces the subscriber may see
// arrived; the page runs its search again. The notification names only the
// organization (or, for a trace of none, the trace), and whether this
// subscriber sees it is asked of the database with its settings
// (api.sees_trace_activity, row-level security deciding), so a subscriber
// is signalled for its own tenant's traces (an admin for every tenant's),
// learns nothing of another's, and the rule of who sees what stays in the
// policies.
//
// An event a subscriber may not see, or another tenant's traces, come out
// of the plan as null; the WebSocket server drops such results rather than
// sending them, so a subscriber is not even told that something happened.
import { context, lambda, listen, type GrafastSubscriber } from 'postgraphile/grafast';
import type { PgSelectStep } from 'postgraphile/@dataplan/pg';
import { extendSchema, gql } from 'postgraphile/utils';

const FAILED_EVENTS_CHANNEL = 'tracegres_failed_events';
const NEW_TRACES_CHANNEL = 'tracegres_new_traces';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The arguments of api.sees_trace_activity from a tracegres_new_traces
 * payload: an organization id, or `none:` and the id of a trace of no
 * organization (anything else asks about nothing, and is answered false).
 */
function traceActivityArguments(payload: unknown): [organization: string | null, trace: string | null] {
  const text = String(payload ?? '');
  const trace = text.startsWith('none:') ? text.slice('none:'.length) : null;
  if (trace !== null) return [null, UUID.test(trace) ? trace : null];
  return [UUID.test(text) ? text : null, null];
}

export const LiveSubscriptionsPlugin = extendSchema((build) => {
  const failedEventsById = build.input.pgRegistry.pgResources.get_failed_events_by_id;
  if (!failedEventsById) throw new Error('api.get_failed_events_by_id is missing: the live view needs it');
  const seesTraceActivity = build.input.pgRegistry.pgResources.sees_trace_activity;
  if (!seesTraceActivity) throw new Error('api.sees_trace_activity is missing: the live view needs it');
  return {
    typeDefs: gql`
      extend type Subscription {
        """
        Each failed event as it fails (inserted failed, or its processing failed later), once its transaction commits. Only events the caller may read are sent.
        """
        failedEvents: Event
        """
        Sent (true) when traces of the caller's organization (any, for an admin) arrive; run the search again to see them.
        """
        traceActivity: Boolean
      }
    `,
    objects: {
      Subscription: {
        plans: {
          failedEvents: {
            subscribePlan() {
              const $subscriber = context().get('pgSubscriber') as never;
              return listen($subscriber, FAILED_EVENTS_CHANNEL);
            },
            plan($id) {
              const $ids = lambda($id, (id) => (/^\d+$/.test(String(id)) ? [String(id)] : []));
              const pgCodec = failedEventsById.parameters![0]!.codec;
              return (failedEventsById.execute([{ step: $ids, pgCodec }]) as PgSelectStep).single();
            },
          },
          traceActivity: {
            subscribePlan() {
              const $subscriber = context().get('pgSubscriber') as never;
              return listen($subscriber as GrafastSubscriber, NEW_TRACES_CHANNEL);
            },
            plan($payload) {
              const $arguments = lambda($payload, traceActivityArguments);
              const [organization, trace] = seesTraceActivity.parameters!;
              const $sees = seesTraceActivity.execute([
                { step: lambda($arguments, ([id]) => id), pgCodec: organization!.codec },
                { step: lambda($arguments, ([, id]) => id), pgCodec: trace!.codec },
              ]);
              return lambda($sees, (sees) => (sees === true ? true : null));
            },
          },
        },
      },
    },
  };
});
