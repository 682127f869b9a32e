// The request parameters of the Tempo query API, checked before any query
// runs: each bad one is answered with 400 and a message that starts with
// the parameter's name.

/** A bad request parameter; the message starts with its name. */
export class BadParameter extends Error {}

/** The widest window a search or tag lookup reads (api.find_traces' bound). */
const MAX_WINDOW_SECONDS = 7 * 24 * 3600;

/**
 * A trace id as Tempo takes it: 1-32 hex characters, any case, shorter ids
 * (64-bit ones from older tracers) padded with zeros on the left.
 */
export function traceIdParameter(value: string): string {
  if (!/^[0-9a-fA-F]{1,32}$/.test(value) || /^0+$/.test(value)) {
    throw new BadParameter(`trace id must be 1 to 32 hex characters, not all zeros; got ${JSON.stringify(value.slice(0, 64))}`);
  }
  return value.toLowerCase().padStart(32, '0');
}

/** An integer parameter within [min, max], or the default when absent. */
export function integerParameter(params: URLSearchParams, name: string, min: number, max: number, fallback: number): number {
  const text = params.get(name);
  if (text === null || text === '') return fallback;
  const value = Number(text);
  if (!/^\d{1,10}$/.test(text) || value < min || value > max) {
    throw new BadParameter(`${name} must be an integer from ${min} to ${max}; got ${JSON.stringify(text.slice(0, 32))}`);
  }
  return value;
}

function unixSeconds(params: URLSearchParams, name: string): Date | undefined {
  const text = params.get(name);
  if (text === null || text === '') return undefined;
  if (!/^\d{1,12}(\.\d{1,9})?$/.test(text)) {
    throw new BadParameter(`${name} must be a time in Unix seconds; got ${JSON.stringify(text.slice(0, 32))}`);
  }
  return new Date(Number(text) * 1000);
}

export interface TimeWindow {
  from: Date;
  to: Date;
}

/**
 * The [start, end) window of a search or tag lookup, in Unix seconds: end
 * defaults to now and start to `lookbackSeconds` before end; at most 7 days.
 */
export function windowParameters(params: URLSearchParams, lookbackSeconds: number, now = new Date()): TimeWindow {
  const to = unixSeconds(params, 'end') ?? now;
  const from = unixSeconds(params, 'start') ?? new Date(to.getTime() - lookbackSeconds * 1000);
  if (from >= to) throw new BadParameter('start must be before end');
  if (to.getTime() - from.getTime() > MAX_WINDOW_SECONDS * 1000) {
    throw new BadParameter('end must be at most 7 days (604800 seconds) after start');
  }
  return { from, to };
}

/** The optional start/end of a trace lookup: checked, both or neither needed. */
export function optionalWindow(params: URLSearchParams): TimeWindow | undefined {
  const from = unixSeconds(params, 'start');
  const to = unixSeconds(params, 'end');
  if (!from || !to) return undefined;
  if (from > to) throw new BadParameter('start must not be after end');
  return { from, to };
}

const DURATION_UNITS_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration ("1.5s", "100ms", "1m30s") in milliseconds, or undefined when absent. */
export function durationParameter(params: URLSearchParams, name: string): number | undefined {
  const text = params.get(name);
  if (text === null || text === '') return undefined;
  // Each number is followed by a unit, so the pattern cannot backtrack.
  if (text.length > 64 || !/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(text)) {
    throw new BadParameter(`${name} must be a duration such as 100ms, 1.5s or 1m30s; got ${JSON.stringify(text.slice(0, 64))}`);
  }
  let ms = 0;
  for (const [, amount, , unit] of text.matchAll(/(\d+(\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ms += Number(amount) * DURATION_UNITS_MS[unit!]!;
  return ms;
}

/**
 * The `tags` parameter of the older search form, in logfmt: `key=value`
 * pairs apart by spaces, a value in double quotes when it holds spaces
 * (with \" and \\ escaped). At most 32 pairs.
 */
export function logfmtParameter(params: URLSearchParams, name: string): Array<[string, string]> {
  const text = params.get(name) ?? '';
  if (text.length > 4096) throw new BadParameter(`${name} must be at most 4096 characters`);
  const pairs: Array<[string, string]> = [];
  let i = 0;
  const fail = (why: string) => new BadParameter(`${name} must be logfmt (key=value key2="a value"): ${why} at character ${i + 1}`);
  while (i < text.length) {
    if (text[i] === ' ') {
      i++;
      continue;
    }
    let key = '';
    while (i < text.length && text[i] !== '=' && text[i] !== ' ') key += text[i++];
    if (!key) throw fail('a key is missing');
    if (text[i] !== '=') throw fail(`${key} has no =value`);
    i++;
    let value = '';
    if (text[i] === '"') {
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        value += text[i++];
      }
      if (text[i] !== '"') throw fail('a quoted value is not closed');
      i++;
    } else {
      while (i < text.length && text[i] !== ' ') value += text[i++];
    }
    pairs.push([key, value]);
    if (pairs.length > 32) throw new BadParameter(`${name} may hold at most 32 pairs`);
  }
  return pairs;
}
