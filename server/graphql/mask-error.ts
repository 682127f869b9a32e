// Which database errors reach GraphQL clients verbatim. The api functions
// reject bad arguments with a plpgsql RAISE of SQLSTATE 22023
// (invalid_parameter_value) whose message starts with the argument's name
// (`p_first must be ...`, see db/functions/070-api-arguments.sql), or with a
// place inside a JSON argument (`p_filter.traces.and[0].spans.op must be
// ...`, db/functions/105-trace-search.sql); those are the
// caller's to read. Other class 22 errors (a cast failing inside a function,
// a value out of range) may quote stored data, so they stay masked with
// everything else (grafserv logs it with a hash and id the client can
// quote). A statement cancelled by statement_timeout says so, and a role
// refused a function or a row (a reader calling an admin's mutation) is told
// it lacks the permission, in Postgres's words, which name only the object.
import { defaultMaskError } from 'postgraphile/grafserv';
import { GraphQLError } from 'postgraphile/graphql';

export interface DatabaseError extends Error {
  code?: unknown;
  routine?: unknown;
}

export function isApiArgumentError(error: DatabaseError): boolean {
  return error.code === '22023' && error.routine === 'exec_stmt_raise' && /^p_[a-z0-9_.[\]/]+ /.test(error.message);
}

export function maskError(error: GraphQLError): GraphQLError {
  const original = error.originalError as DatabaseError | undefined;
  const code = original && codeOf(original);
  if (original && code) {
    return new GraphQLError(original.message, {
      nodes: error.nodes,
      source: error.source,
      positions: error.positions,
      path: error.path,
      extensions: { code, sqlstate: original.code },
    });
  }
  return defaultMaskError(error);
}

function codeOf(error: DatabaseError): string | undefined {
  if (isApiArgumentError(error)) return 'INVALID_ARGUMENT';
  if (error.code === '57014') return 'STATEMENT_TIMEOUT';
  if (error.code === '42501') return 'FORBIDDEN';
  return undefined;
}
