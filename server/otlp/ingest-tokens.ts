// Ingest tokens: random secrets bound to one organization, of which the
// database keeps only the SHA-256 (tracing.ingest_tokens,
// db/functions/190-ingest-tokens.sql). Made and hashed here so the token itself
// never travels into a SQL statement (or a statement log).
import { createHash, randomBytes } from 'node:crypto';

// Recognisable in a leaked-secret scan; 32 random bytes after it.
const PREFIX = 'tgi_';

export function generateIngestToken(): string {
  return PREFIX + randomBytes(32).toString('base64url');
}

export function hashIngestToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
