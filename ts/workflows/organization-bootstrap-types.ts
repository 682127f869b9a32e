/**
 * How the organization-bootstrap workflow is started: its input, with the
 * trace context it continues, and the function that starts it. The edge
 * function (ts/edge/functions/organization-bootstrap.ts) and the workflow
 * client both use these types.
 *
 * Types only, so any runtime can import this module.
 */

/** What the bootstrap workflow is started with: its input and the trace context to continue. */
export interface OrganizationBootstrapParams {
  organizationId: string;
  organizationName: string;
  adminEmail: string;
  correlationId: string;
  sessionId: string | null;
  traceId: string;
  /** The edge function's server span: the workflow's spans are its children. */
  parentSpanId: string;
  traceFlags: number;
  tracestate: string | null;
}

export type StartBootstrapWorkflow = (params: OrganizationBootstrapParams) => Promise<{ workflowId: string }>;
