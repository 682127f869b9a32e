// A port setting of the environment: a number, 0 for any free port, or
// `off` (undefined: the server is not started). Unset: the fallback.
export class PortSettingError extends Error {}

export function readPortSetting(value: string | undefined, name: string, fallback: number): number | undefined {
  const setting = value?.trim().toLowerCase();
  if (!setting) return fallback;
  if (setting === 'off') return undefined;
  const port = Number(setting);
  if (!/^\d+$/.test(setting) || port > 65535) {
    throw new PortSettingError(`${name} must be a port number (0 for any free one) or off, got ${JSON.stringify(value)}`);
  }
  return port;
}
