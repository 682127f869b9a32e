// Which database errors reach GraphQL clients verbatim. The api functions
// reject bad arguments with SQLSTATE class 22 (data exception, e.g. 22023
// invalid_parameter_value) and a message that names the argument; those are
// the caller's to read. Everything else stays masked (grafserv logs it with
// a hash and id the client can quote).
import { defaultMaskError } from 'postgraphile/grafserv';
import { GraphQLError } from 'postgraphile/graphql';

export function maskError(error: GraphQLError): GraphQLError {
  const original = error.originalError as (Error & { code?: unknown }) | undefined;
  if (original && typeof original.code === 'string' && original.code.startsWith('22')) {
    return new GraphQLError(original.message, {
      nodes: error.nodes,
      source: error.source,
      positions: error.positions,
      path: error.path,
      extensions: { code: 'INVALID_ARGUMENT', sqlstate: original.code },
    });
  }
  return defaultMaskError(error);
}
