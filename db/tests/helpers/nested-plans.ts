// The plans of the statements a function runs inside, which EXPLAIN of the
// call cannot show: auto_explain logs every nested statement's plan, and at
// log level NOTICE the server sends them to this client.
import postgres from 'postgres';

export async function nestedPlans(
  url: string,
  query: string,
  params: unknown[] = [],
  /** Statements run first in the same transaction, e.g. `set local role ...`. */
  setup: string[] = [],
): Promise<string[]> {
  const plans: string[] = [];
  const sql = postgres(url, { max: 1, onnotice: (notice) => plans.push(String(notice.message)) });
  try {
    await sql.begin(async (tx) => {
      await tx.unsafe(`load 'auto_explain'`);
      await tx.unsafe(`set local auto_explain.log_min_duration = 0`);
      await tx.unsafe(`set local auto_explain.log_nested_statements = on`);
      await tx.unsafe(`set local auto_explain.log_level = notice`);
      await tx.unsafe(`set local client_min_messages = notice`);
      for (const statement of setup) await tx.unsafe(statement);
      plans.length = 0;
      await tx.unsafe(query, params as never[]);
    });
  } finally {
    await sql.end();
  }
  return plans;
}
