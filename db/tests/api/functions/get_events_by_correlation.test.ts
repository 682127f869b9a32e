// api.get_events_by_correlation: one user action's events across services,
// newest first, in keyset pages.
import { useTestDatabase } from '../../helpers/test-database.ts';
import { describeEventLookup } from '../../helpers/event-lookup-suite.ts';

const db = useTestDatabase();

describeEventLookup(db, {
  fn: 'get_events_by_correlation',
  argument: 'p_correlation_id',
  tag: (id) => ({ correlation: id }),
  index: 'domain_events_correlation_id_idx',
});
