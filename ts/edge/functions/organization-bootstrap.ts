/**
 * organization-bootstrap: creates an organization and hands the slow part
 * (schema, admin account, welcome mail) to a Temporal workflow.
 *
 *   POST { organizationName, adminEmail, organizationId? }
 *   -> 202 { organizationId, workflowId }, event
 *      organization.bootstrap_requested, then
 *      organization.bootstrap_workflow_started once the workflow runs
 *   -> 503 when the workflow could not be started (the request event stays,
 *      so the bootstrap can be retried from it)
 *
 * The request event is written before the workflow starts, so a request is
 * never lost to a workflow outage. The workflow receives the trace context
 * with this function's server span as its parent.
 *
 * Deployed as an edge function:
 *
 *   import postgres from 'npm:postgres';
 *   Deno.serve(createOrganizationBootstrapHandler({
 *     sql: postgres(Deno.env.get('DATABASE_URL')!),
 *     startWorkflow: (params) => temporalClient.startBootstrap(params),
 *   }));
 */
import { emitEvent } from '../../store/emit-event.ts';
import { errorResponse } from '../error-response.ts';
import { ORGANIZATION_ATTRIBUTE } from '../../trace-context/span-record.ts';
import { withTracing } from '../with-tracing.ts';
import type { StartBootstrapWorkflow } from '../../workflows/organization-bootstrap-types.ts';
import { readInput, tracingOptions, type FunctionDependencies } from './common.ts';

export type { OrganizationBootstrapParams, StartBootstrapWorkflow } from '../../workflows/organization-bootstrap-types.ts';

export interface OrganizationBootstrapDependencies extends FunctionDependencies {
  startWorkflow?: StartBootstrapWorkflow;
}

export function createOrganizationBootstrapHandler(deps: OrganizationBootstrapDependencies): (request: Request) => Promise<Response> {
  return withTracing(
    async (request, { span }) => {
      const input = await readInput(request, span, (check) => ({
        organizationName: check.string('organizationName', { min: 2, max: 100 }),
        adminEmail: check.email('adminEmail'),
        organizationId: check.uuid('organizationId', { optional: true }),
      }));
      if (!input.ok) return input.response;
      const { organizationName, adminEmail } = input.value;
      if (organizationName === undefined || adminEmail === undefined) throw new Error('unreachable: checked input');
      const organizationId = input.value.organizationId ?? crypto.randomUUID();

      span.attributes[ORGANIZATION_ATTRIBUTE] = organizationId;
      await emitEvent(
        deps.sql,
        {
          streamType: 'organization',
          streamId: organizationId,
          eventType: 'organization.bootstrap_requested',
          organizationId,
          data: { organizationId, organizationName, adminEmail },
        },
        span,
      );

      if (deps.startWorkflow === undefined) {
        // No workflow engine wired: the request event is the whole effect.
        return Response.json({ organizationId, workflowId: null }, { status: 202 });
      }

      let workflowId: string;
      try {
        ({ workflowId } = await deps.startWorkflow({
          organizationId,
          organizationName,
          adminEmail,
          correlationId: span.correlationId,
          sessionId: span.sessionId,
          traceId: span.traceId,
          parentSpanId: span.spanId,
          traceFlags: span.traceFlags,
          tracestate: span.tracestate,
        }));
      } catch (error) {
        const err = error instanceof Error ? error : new Error(String(error));
        span.attributes['exception.type'] = err.name;
        span.attributes['exception.message'] = err.message;
        return errorResponse(span, 503, 'The organization bootstrap could not be started; please retry');
      }

      span.attributes['workflow.id'] = workflowId;
      await emitEvent(
        deps.sql,
        {
          streamType: 'organization',
          streamId: organizationId,
          eventType: 'organization.bootstrap_workflow_started',
          organizationId,
          data: { organizationId, workflowId },
        },
        span,
      );
      return Response.json({ organizationId, workflowId }, { status: 202 });
    },
    tracingOptions('organization-bootstrap', deps),
  );
}
