#!/usr/bin/env node
// `npx tracegres ...`: the CLI is TypeScript (cli/main.ts), run through tsx's
// loader registered in this process, so no build step stands between a
// checkout and the command.
import { register } from 'tsx/esm/api';

// Piped into head or less that exits early: stop quietly, like other CLIs.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
