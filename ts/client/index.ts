/**
 * The browser side of tracing. A page typically:
 *
 *   const action = startUserAction({ accessToken });   // one id per click or submit
 *   logger.setContext({ correlationId: action.correlationId, sessionId: getSessionId(accessToken) });
 *   try { await action.fetch(url, init); }
 *   catch (error) { if (isTracedRequestError(error)) render <ErrorWithCorrelation error={error} />; }
 *
 * and the edge function reads the same ids back with extractTracingContext
 * from the shared trace-context core (ts/trace-context).
 */
export { CORRELATION_ID_HEADER, SESSION_ID_HEADER, TRACEPARENT_HEADER } from '../trace-context/headers.ts';
export {
  buildTracingHeaders,
  generateCorrelationId,
  generateTraceparent,
  getSessionId,
  traceIdOf,
  type TraceparentOptions,
  type TracingHeaderInput,
  type TracingHeaders,
} from './tracing.ts';
export {
  createLogger,
  logger,
  serializeError,
  type Environment,
  type LogContext,
  type LogFields,
  type LogLevel,
  type LogSink,
  type Logger,
  type LoggerOptions,
} from './logger.ts';
export {
  TracedRequestError,
  isTracedRequestError,
  startUserAction,
  tracedFetch,
  tracedFetchJson,
  type TracedFetchOptions,
  type TracedRequestErrorInit,
  type UserAction,
} from './traced-fetch.ts';
export {
  ErrorWithCorrelation,
  copyText,
  type CopyState,
  type CorrelatedError,
  type ErrorWithCorrelationProps,
} from './error-with-correlation.tsx';
export { edgeFunctionUrl, invokeEdgeFunction, type CallOptions, type EdgeFunctionConfig } from './services/edge-function.ts';
export {
  createInvitationService,
  type AcceptInvitationInput,
  type AcceptInvitationOutput,
  type InvitationService,
  type InviteUserInput,
  type InviteUserOutput,
  type MemberRole,
} from './services/invitation-service.ts';
export {
  createUserCommandService,
  type ManageUserCommand,
  type ManageUserOutput,
  type UserCommandService,
} from './services/user-command-service.ts';
