/**
 * Structured browser logs: one JSON object per line, with the current trace
 * context on every line, so a line copied from a user's console can be
 * joined to the server's events by correlation id or trace id.
 */

export type LogLevel = 'info' | 'warn' | 'error';

export type Environment = 'production' | 'development';

export interface LogContext {
  correlationId?: string | null;
  traceId?: string | null;
  sessionId?: string | null;
}

/** Receives each finished line; the level lets a sink route lines (e.g. to console.error). */
export type LogSink = (line: string, level: LogLevel) => void;

export type LogFields = Record<string, unknown>;

export interface LoggerOptions {
  sink?: LogSink;
  /** Stacks are only written outside production: they leak code layout and bloat shipped logs. */
  environment?: Environment;
  /** Clock for the `time` field; injectable so tests get stable output. */
  now?: () => Date;
}

export interface Logger {
  /** Merges into the context; a key set to null clears it. Applies to every later line. */
  setContext(context: LogContext): void;
  getContext(): Readonly<LogContext>;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  /** `error` is serialised under the `error` key; any value is accepted since `catch` gives `unknown`. */
  error(message: string, error?: unknown, fields?: LogFields): void;
}

const consoleSink: LogSink = (line, level) => {
  // Looked up at call time so a console patched after import (devtools, tests) still receives lines.
  console[level](line);
};

/** Keys every line owns; caller fields cannot overwrite them. */
const RESERVED_KEYS = new Set(['time', 'level', 'message']);

const MAX_CAUSE_DEPTH = 5;

export function serializeError(error: unknown, environment: Environment = 'production', depth = 0): Record<string, unknown> {
  if (!(error instanceof Error)) {
    // A thrown string or object is still worth a line; keep it as the message.
    return { name: 'NonError', message: safeString(error) };
  }
  const serialized: Record<string, unknown> = { name: error.name, message: error.message };
  // Own primitive properties carry the useful detail of custom errors
  // (status, code, correlationId) without this module knowing their classes.
  for (const [key, value] of Object.entries(error)) {
    if (key in serialized || key === 'stack' || key === 'cause') continue;
    if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) {
      serialized[key] = value;
    }
  }
  if (environment !== 'production' && typeof error.stack === 'string') serialized['stack'] = error.stack;
  if (error.cause !== undefined && depth < MAX_CAUSE_DEPTH) {
    serialized['cause'] = serializeError(error.cause, environment, depth + 1);
  }
  return serialized;
}

function safeString(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * JSON.stringify for values JSON has no answer for: cycles become
 * "[Circular]", bigints strings, errors their serialised form.
 */
function stringifyLine(record: Record<string, unknown>, environment: Environment): string {
  const ancestors: object[] = [];
  return JSON.stringify(record, function (this: unknown, _key, raw: unknown) {
    if (typeof raw === 'bigint') return raw.toString();
    const value = raw instanceof Error ? serializeError(raw, environment) : raw;
    if (typeof value !== 'object' || value === null) return value;
    // `this` is the object holding `value`; unwinding to it leaves exactly the
    // ancestors of `value` on the stack, so shared (non-cyclic) references still print.
    while (ancestors.length > 0 && ancestors[ancestors.length - 1] !== this) ancestors.pop();
    if (ancestors.includes(value)) return '[Circular]';
    ancestors.push(value);
    return value;
  });
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const sink = options.sink ?? consoleSink;
  const environment = options.environment ?? 'production';
  const now = options.now ?? (() => new Date());
  let context: LogContext = {};

  function write(level: LogLevel, message: string, fields: LogFields | undefined, error?: { value: unknown }): void {
    // Everything inside the try: a log call must never break the code that
    // logs, whatever getters, toJSON methods or sinks it meets.
    try {
      const record: Record<string, unknown> = {
        time: now().toISOString(),
        level,
        message,
        correlation_id: context.correlationId ?? null,
        trace_id: context.traceId ?? null,
      };
      if (context.sessionId != null) record['session_id'] = context.sessionId;
      // Fields may override the context keys (a line about another request),
      // but not the keys that make it a log line.
      for (const [key, value] of Object.entries(fields ?? {})) {
        if (!RESERVED_KEYS.has(key)) record[key] = value;
      }
      if (error !== undefined) record['error'] = serializeError(error.value, environment);
      sink(stringifyLine(record, environment), level);
    } catch {
      // Nothing sensible is left to report to; dropping the line is the lesser harm.
    }
  }

  return {
    setContext(next) {
      context = { ...context, ...next };
    },
    getContext() {
      return { ...context };
    },
    info(message, fields) {
      write('info', message, fields);
    },
    warn(message, fields) {
      write('warn', message, fields);
    },
    error(message, error, fields) {
      write('error', message, fields, error === undefined ? undefined : { value: error });
    },
  };
}

/** The page-wide logger; pages that need a different sink or environment call createLogger. */
export const logger: Logger = createLogger();
