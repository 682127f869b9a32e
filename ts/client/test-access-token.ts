/**
 * The access token the client tests sign in with: an HS256 JWT shaped like
 * the auth service's (subject the user id, a session_id claim, role
 * authenticated), from which the client reads its session id.
 */
import { SignJWT } from 'jose';

const SECRET = new TextEncoder().encode('super-secret-jwt-token-with-at-least-32-characters');

export function signAccessToken(user: { userId: string; sessionId: string }): Promise<string> {
  return new SignJWT({ session_id: user.sessionId, role: 'authenticated' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(user.userId)
    .sign(SECRET);
}
