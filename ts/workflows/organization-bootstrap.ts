/**
 * The organization-bootstrap workflow: create the organization, invite its
 * first admin, welcome them, and mark the bootstrap complete.
 *
 * Started by the organization-bootstrap edge function with
 * OrganizationBootstrapParams, whose trace fields make the edge function's
 * server span this workflow's parent. Workflow code does no I/O: the
 * activities do, and the tracing interceptors give the workflow and each
 * activity their spans.
 */
import { proxyActivities, uuid4 } from '@temporalio/workflow';
import { ORGANIZATION_ATTRIBUTE } from '../trace-context/span-record.ts';
import { setWorkflowSpanAttribute } from './interceptors/workflow.ts';
import type { OrganizationBootstrapActivities } from './organization-bootstrap-activities.ts';
import type { OrganizationBootstrapParams } from './organization-bootstrap-types.ts';

export type { OrganizationBootstrapParams };

export interface OrganizationBootstrapResult {
  organizationId: string;
  slug: string;
  invitationId: string;
  notificationId: string;
}

/** How long the first admin's invitation stays valid. */
export const INVITATION_TTL_MS = 7 * 24 * 60 * 60 * 1000;

const { createOrganization, inviteFirstAdmin, sendWelcomeNotification, completeBootstrap } =
  proxyActivities<OrganizationBootstrapActivities>({
    startToCloseTimeout: '30 seconds',
    // Bounded, so a failure that persists ends the activity (and its span
    // gets written with the error) instead of retrying forever.
    retry: { maximumAttempts: 5, initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
  });

export async function organizationBootstrap(params: OrganizationBootstrapParams): Promise<OrganizationBootstrapResult> {
  setWorkflowSpanAttribute(ORGANIZATION_ATTRIBUTE, params.organizationId);
  // Made here, not in the activity, so every attempt and every replay uses
  // the same id and expiry (uuid4 and Date are deterministic in workflows).
  const invitationId = uuid4();
  const expiresAt = new Date(Date.now() + INVITATION_TTL_MS).toISOString();

  const { slug } = await createOrganization({
    organizationId: params.organizationId,
    organizationName: params.organizationName,
  });
  await inviteFirstAdmin({
    organizationId: params.organizationId,
    organizationName: params.organizationName,
    invitationId,
    email: params.adminEmail,
    expiresAt,
  });
  const { notificationId } = await sendWelcomeNotification({
    organizationId: params.organizationId,
    organizationName: params.organizationName,
    recipient: params.adminEmail,
  });
  await completeBootstrap({ organizationId: params.organizationId, invitationId, notificationId });
  return { organizationId: params.organizationId, slug, invitationId, notificationId };
}
