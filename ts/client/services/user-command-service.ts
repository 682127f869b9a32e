/**
 * Example service: administrative commands on an organization member
 * through the `manage-user` edge function. The types mirror that function's
 * request and response bodies.
 */
import { type CallOptions, type EdgeFunctionConfig, invokeEdgeFunction } from './edge-function.ts';
import type { MemberRole } from './invitation-service.ts';

interface MemberCommand {
  organizationId: string;
  userId: string;
  /** The acting admin's user id, recorded on the event. */
  changedBy?: string;
}

/** One command per call; the `action` tag decides which other fields the function requires. */
export type ManageUserCommand =
  | (MemberCommand & { action: 'change_role'; role: MemberRole })
  | (MemberCommand & { action: 'deactivate'; reason?: string })
  | (MemberCommand & { action: 'reactivate' });

export interface ManageUserOutput {
  userId: string;
  action: ManageUserCommand['action'];
  /** The id of the event the command recorded (a bigint, as text). */
  eventId: string;
}

export interface UserCommandService {
  manageUser(command: ManageUserCommand, options?: CallOptions): Promise<ManageUserOutput>;
}

export function createUserCommandService(config: EdgeFunctionConfig): UserCommandService {
  return {
    manageUser: (command, options) => invokeEdgeFunction<ManageUserOutput>(config, 'manage-user', command, options),
  };
}
