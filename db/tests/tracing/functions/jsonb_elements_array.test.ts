// tracing.jsonb_elements_array: how OTLP ingest sends one jsonb per span as a
// single JSON array. Element i must stay span i, and a span without the
// field must stay a JSON null, or attributes would move between spans.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/test-database.ts';

const db = useTestDatabase();

describe('tracing.jsonb_elements_array', () => {
  it('answers the elements in order, JSON nulls kept, as a jsonb[]', async () => {
    const items = [{ a: 1 }, null, { 'b "quoted"': ['x', { c: null }] }, [], 'text', 7];
    const [row] = await db.sql<{ elements: string[]; types: string[]; type: string }[]>`
      select array(select e::text from unnest(a) as e) as elements, array(select jsonb_typeof(e) from unnest(a) as e) as types,
             pg_typeof(a)::text as type
        from tracing.jsonb_elements_array(${JSON.stringify(items)}::text::jsonb) as a`;
    expect(row!.type).toBe('jsonb[]');
    expect(row!.types).toEqual(['object', 'null', 'object', 'array', 'string', 'number']);
    expect(row!.elements.map((text) => JSON.parse(text))).toEqual(items);
  });

  it('answers null for null (a field no span has) and an empty array for []', async () => {
    const [row] = await db.sql<{ none: unknown; empty: number }[]>`
      select tracing.jsonb_elements_array(null) as none, cardinality(tracing.jsonb_elements_array('[]')) as empty`;
    expect(row).toEqual({ none: null, empty: 0 });
  });
});
