// Verifies request tokens and turns their claims into Postgres settings.
// Row-level security then decides what each role sees:
//   no token          -> tracegres_anonymous (sees nothing)
//   role "reader"     -> tracegres_reader, limited to organization_id
//   role "admin"      -> tracegres_admin (sees every organization)
import { importSPKI, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { LRUCache } from 'lru-cache';

export interface JwtConfig {
  /** HS256 shared secret (TRACEGRES_JWT_SECRET). */
  secret?: string;
  /** RS256 public key in PEM (TRACEGRES_JWT_PUBLIC_KEY). */
  publicKey?: string;
  /** Required `aud` (TRACEGRES_JWT_AUDIENCE); unchecked when unset. */
  audience?: string;
  /** Required `iss` (TRACEGRES_JWT_ISSUER); unchecked when unset. */
  issuer?: string;
}

export type PgSettings = Record<string, string>;

export class InvalidTokenError extends Error {
  override name = 'InvalidTokenError';
}

const ROLES: Record<string, string> = {
  reader: 'tracegres_reader',
  admin: 'tracegres_admin',
};

export const ANONYMOUS_SETTINGS: PgSettings = Object.freeze({ role: 'tracegres_anonymous' });

/**
 * How many verified tokens a verifier remembers. A dashboard sends the same
 * token with every request, and an HMAC check through WebCrypto costs more
 * than the rest of a small GraphQL request.
 */
export const VERIFIED_TOKEN_CACHE_SIZE = 1_000;

export function createTokenVerifier(config: JwtConfig) {
  const keys: Array<Promise<{ key: Uint8Array | CryptoKey; alg: string }>> = [];
  if (config.secret) keys.push(Promise.resolve({ key: new TextEncoder().encode(config.secret), alg: 'HS256' }));
  if (config.publicKey) keys.push(importSPKI(config.publicKey, 'RS256').then((key) => ({ key, alg: 'RS256' })));

  // A token verified once is the same token until it expires: remembered by
  // its exact text (signature included, so no other text can hit it), with
  // its expiry checked on every use as jose checks it. Only tokens that
  // verified are kept, so refused ones cannot push valid ones out.
  const verified = new LRUCache<string, { settings: PgSettings; exp: number }>({ max: VERIFIED_TOKEN_CACHE_SIZE });

  /** Settings for a request's `Authorization` header; throws InvalidTokenError. */
  return async function pgSettingsFor(authorization: string | undefined): Promise<PgSettings> {
    if (!authorization) return ANONYMOUS_SETTINGS;
    const match = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (!match) throw new InvalidTokenError('Authorization header must be "Bearer <token>"');
    if (keys.length === 0) throw new InvalidTokenError('this server accepts no tokens: no JWT secret or key is configured');
    const token = match[1]!;
    const known = verified.get(token);
    if (known) {
      if (Math.floor(Date.now() / 1000) < known.exp) return known.settings;
      verified.delete(token);
    }
    let payload: JWTPayload | undefined;
    for (const pending of keys) {
      const { key, alg } = await pending;
      try {
        ({ payload } = await jwtVerify(token, key, {
          algorithms: [alg],
          audience: config.audience,
          issuer: config.issuer,
          // A token without an expiry would be valid forever once leaked.
          requiredClaims: ['exp'],
        }));
        break;
      } catch {
        // Try the next configured key; the error below names no detail an
        // attacker could use.
      }
    }
    if (!payload) throw new InvalidTokenError('invalid or expired token');
    const settings = claimsToSettings(payload);
    // requiredClaims made jose check that exp is a number.
    verified.set(token, { settings, exp: payload.exp! });
    return settings;
  };
}

function claimsToSettings(claims: JWTPayload): PgSettings {
  // Own keys only: `role: "constructor"` must not find Object.prototype's.
  const claimed = String(claims.role ?? '');
  const role = Object.hasOwn(ROLES, claimed) ? ROLES[claimed] : undefined;
  if (!role) throw new InvalidTokenError(`token role must be one of: ${Object.keys(ROLES).join(', ')}`);
  const organizationId = claims.organization_id;
  if (role === 'tracegres_reader' && typeof organizationId !== 'string') {
    throw new InvalidTokenError('a reader token must carry an organization_id claim');
  }
  const settings: PgSettings = { role, 'jwt.claims.role': String(claims.role) };
  if (typeof organizationId === 'string') settings['jwt.claims.organization_id'] = organizationId;
  if (typeof claims.sub === 'string') settings['jwt.claims.user_id'] = claims.sub;
  // Shared by every request with this token: nobody may change it.
  return Object.freeze(settings);
}

/** Signs an HS256 token; for the local development token and for tests. */
export function signToken(
  secret: string,
  claims: { role: 'reader' | 'admin'; organization_id?: string; sub?: string },
  expiresIn = '12h',
  { audience, issuer }: { audience?: string; issuer?: string } = {},
): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime(expiresIn);
  if (audience) jwt.setAudience(audience);
  if (issuer) jwt.setIssuer(issuer);
  return jwt.sign(new TextEncoder().encode(secret));
}
