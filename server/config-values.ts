// A whole-number setting of the environment, read alike by every part of the
// server: unset or blank is the fallback, anything else must be an integer
// from 1 to `max`. Each part throws its own error class, which its callers
// and tests tell apart.
export function positiveInteger(
  value: string | undefined,
  name: string,
  fallback: number,
  ConfigError: new (message: string) => Error,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined || value.trim() === '') return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > max)
    throw new ConfigError(
      max === Number.MAX_SAFE_INTEGER
        ? `${name} must be a positive integer, got ${JSON.stringify(value)}`
        : `${name} must be an integer from 1 to ${max}, got ${JSON.stringify(value)}`,
    );
  return parsed;
}
