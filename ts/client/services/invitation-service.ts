/**
 * Example service: invitations through the `invite-user` and
 * `accept-invitation` edge functions. The types mirror those functions'
 * request and response bodies.
 */
import type { MemberRole } from '../../contracts/member-roles.ts';
import { type CallOptions, type EdgeFunctionConfig, invokeEdgeFunction } from './edge-function.ts';

export type { MemberRole };

export interface InviteUserInput {
  organizationId: string;
  email: string;
  role: MemberRole;
  /** The inviting user's id, recorded on the invitation event. */
  invitedBy?: string;
  /** 1 to 30; the function defaults to 7. */
  expiresInDays?: number;
}

export interface InviteUserOutput {
  invitationId: string;
  /** ISO 8601 timestamp. */
  expiresAt: string;
}

export interface AcceptInvitationInput {
  invitationId: string;
  /** The signed-in user who accepts. */
  userId: string;
}

export interface AcceptInvitationOutput {
  organizationId: string;
  role: MemberRole;
}

export interface InvitationService {
  inviteUser(input: InviteUserInput, options?: CallOptions): Promise<InviteUserOutput>;
  acceptInvitation(input: AcceptInvitationInput, options?: CallOptions): Promise<AcceptInvitationOutput>;
}

export function createInvitationService(config: EdgeFunctionConfig): InvitationService {
  return {
    inviteUser: (input, options) => invokeEdgeFunction<InviteUserOutput>(config, 'invite-user', input, options),
    acceptInvitation: (input, options) => invokeEdgeFunction<AcceptInvitationOutput>(config, 'accept-invitation', input, options),
  };
}
