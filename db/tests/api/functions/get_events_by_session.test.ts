// api.get_events_by_session: a session's events, newest first, in keyset pages.
import { useTestDatabase } from '../../helpers/test-database.ts';
import { describeEventLookup } from '../../helpers/event-lookup-suite.ts';

const db = useTestDatabase();

describeEventLookup(db, {
  fn: 'get_events_by_session',
  argument: 'p_session_id',
  tag: (id) => ({ session: id }),
  index: 'domain_events_session_id_idx',
});
