/**
 * The roles a member of an organization can hold: what the invite-user and
 * manage-user edge functions accept and the browser's invitation service
 * sends. Shared here so neither side imports the other.
 */
export const MEMBER_ROLES = ['owner', 'admin', 'member', 'viewer'] as const;
export type MemberRole = (typeof MEMBER_ROLES)[number];
