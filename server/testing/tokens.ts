// The tokens the GraphQL tests call with: a reader of each test organization
// and an admin, signed with the test's secret.
import { ORG_A, ORG_B } from '../../db/tests/helpers/trace-fixtures.ts';
import { signToken } from '../auth/jwt.ts';

export interface TestTokens {
  readerA: string;
  readerB: string;
  admin: string;
}

/** A reader of ORG_A (sub support-a), a reader of ORG_B (sub support-b) and an admin whose sub is `adminSub`. */
export async function signTestTokens(secret: string, adminSub = 'ops'): Promise<TestTokens> {
  return {
    readerA: await signToken(secret, { role: 'reader', organization_id: ORG_A, sub: 'support-a' }),
    readerB: await signToken(secret, { role: 'reader', organization_id: ORG_B, sub: 'support-b' }),
    admin: await signToken(secret, { role: 'admin', sub: adminSub }),
  };
}
