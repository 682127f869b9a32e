// A subcommand's command line: its own options plus the two every
// subcommand takes (--database-url, --help), positionals allowed. A line
// the parser refuses is reported with the subcommand's usage, and the
// caller exits with status 2.
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';

const COMMON_OPTIONS = {
  'database-url': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** The parsed command line, or undefined after printing why it was refused. */
export function parseCommandLine<T extends ParseArgsOptionsConfig>(argv: string[], options: T, usage: string) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options: { ...options, ...COMMON_OPTIONS } });
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${usage}`);
    return undefined;
  }
}
