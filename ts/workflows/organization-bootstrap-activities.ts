/**
 * The activities of the organization-bootstrap workflow: the only code of
 * the bootstrap that touches the world (database, mail).
 *
 * Each activity runs inside the span the workflow assigned it (see
 * interceptors/activity.ts) and writes its domain events through
 * emitActivityEvent, so a retried activity neither duplicates its events
 * nor its span. Ids and times that end up in events (invitation id, expiry)
 * come from the workflow, so every attempt writes the same facts.
 */
import type { Sql } from 'postgres';
import { ORGANIZATION_ATTRIBUTE } from '../trace-context/span-record.ts';
import { emitActivityEvent } from './activity-events.ts';
import { activityTraceContext } from './interceptors/activity.ts';
import { derivedUuid } from './span-ids.ts';

export type MailTemplate = 'organization-invitation' | 'organization-welcome';

export interface MailMessage {
  to: string;
  template: MailTemplate;
  data: Record<string, unknown>;
  /** Stable across attempts, for providers that deduplicate sends by key. */
  idempotencyKey: string;
}

/** Sends mail; a real deployment plugs in its provider. */
export interface Mailer {
  send(message: MailMessage): Promise<{ messageId: string }>;
}

/**
 * The mailer used when none is configured: logs the message as one JSON line
 * and reports it sent. Its message id derives from the idempotency key, like
 * a provider that deduplicates by key would answer a repeated send.
 */
export const loggingMailer: Mailer = {
  async send(message) {
    const messageId = derivedUuid(['mail', message.idempotencyKey]);
    console.log(JSON.stringify({ level: 'info', message: 'mail sent', to: message.to, template: message.template, message_id: messageId }));
    return { messageId };
  },
};

export interface OrganizationBootstrapActivityDependencies {
  sql: Sql;
  mailer?: Mailer;
}

export interface CreateOrganizationInput {
  organizationId: string;
  organizationName: string;
}

export interface InviteFirstAdminInput {
  organizationId: string;
  organizationName: string;
  invitationId: string;
  email: string;
  /** ISO 8601, fixed by the workflow. */
  expiresAt: string;
}

export interface SendWelcomeNotificationInput {
  organizationId: string;
  organizationName: string;
  recipient: string;
}

export interface CompleteBootstrapInput {
  organizationId: string;
  invitationId: string;
  notificationId: string;
}

/** URL-safe handle for an organization name: "Acme Ltd." -> "acme-ltd". */
export function organizationSlug(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 48)
    .replace(/-+$/g, '');
  return slug === '' ? 'organization' : slug;
}

function fileUnder(organizationId: string): void {
  // Files the activity's span under the tenant, like its events.
  activityTraceContext().span.attributes[ORGANIZATION_ATTRIBUTE] = organizationId;
}

export function createOrganizationBootstrapActivities(deps: OrganizationBootstrapActivityDependencies) {
  const { sql } = deps;
  const mailer = deps.mailer ?? loggingMailer;

  return {
    async createOrganization(input: CreateOrganizationInput): Promise<{ organizationId: string; slug: string }> {
      fileUnder(input.organizationId);
      const slug = organizationSlug(input.organizationName);
      await emitActivityEvent(sql, {
        streamType: 'organization',
        streamId: input.organizationId,
        eventType: 'organization.created',
        organizationId: input.organizationId,
        data: { organizationId: input.organizationId, name: input.organizationName, slug },
      });
      return { organizationId: input.organizationId, slug };
    },

    /**
     * Records the invitation, then mails it. If the mail fails the attempt
     * fails after the invitation event was stored; the retry finds that
     * event by its key and only sends the mail.
     */
    async inviteFirstAdmin(input: InviteFirstAdminInput): Promise<{ invitationId: string; messageId: string }> {
      fileUnder(input.organizationId);
      const trace = activityTraceContext();
      await emitActivityEvent(sql, {
        streamType: 'invitation',
        streamId: input.invitationId,
        eventType: 'invitation.created',
        organizationId: input.organizationId,
        data: {
          invitationId: input.invitationId,
          organizationId: input.organizationId,
          email: input.email,
          role: 'owner',
          invitedBy: null,
          expiresAt: input.expiresAt,
        },
      });
      const { messageId } = await mailer.send({
        to: input.email,
        template: 'organization-invitation',
        data: { organizationName: input.organizationName, invitationId: input.invitationId, expiresAt: input.expiresAt },
        idempotencyKey: trace.idempotencyKey('mail.organization-invitation'),
      });
      await emitActivityEvent(sql, {
        streamType: 'invitation',
        streamId: input.invitationId,
        eventType: 'invitation.email_sent',
        organizationId: input.organizationId,
        data: { invitationId: input.invitationId, messageId },
      });
      return { invitationId: input.invitationId, messageId };
    },

    async sendWelcomeNotification(input: SendWelcomeNotificationInput): Promise<{ notificationId: string }> {
      fileUnder(input.organizationId);
      const trace = activityTraceContext();
      const { messageId } = await mailer.send({
        to: input.recipient,
        template: 'organization-welcome',
        data: { organizationName: input.organizationName },
        idempotencyKey: trace.idempotencyKey('mail.organization-welcome'),
      });
      await emitActivityEvent(sql, {
        streamType: 'organization',
        streamId: input.organizationId,
        eventType: 'notification.sent',
        organizationId: input.organizationId,
        data: {
          organizationId: input.organizationId,
          channel: 'email',
          template: 'organization-welcome',
          recipient: input.recipient,
          messageId,
        },
      });
      return { notificationId: messageId };
    },

    async completeBootstrap(input: CompleteBootstrapInput): Promise<void> {
      fileUnder(input.organizationId);
      const trace = activityTraceContext();
      await emitActivityEvent(sql, {
        streamType: 'organization',
        streamId: input.organizationId,
        eventType: 'organization.bootstrap_completed',
        organizationId: input.organizationId,
        data: {
          organizationId: input.organizationId,
          invitationId: input.invitationId,
          notificationId: input.notificationId,
          workflowId: trace.workflowId,
        },
      });
    },
  };
}

export type OrganizationBootstrapActivities = ReturnType<typeof createOrganizationBootstrapActivities>;
