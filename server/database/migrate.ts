// Brings a database to the current schema: graphile-migrate's committed
// migrations, then every db/functions file listed in .gmrc's
// afterAllMigrations (forceActions, so the functions are re-applied even when
// no migration ran; see the README's Migrations section).
import { Logger, migrate } from 'graphile-migrate';
// graphile-migrate keeps its pg pools alive for a moment after a command;
// closing them at once lets callers drop the database right away.
import { clearAllPools } from 'graphile-migrate/dist/pgReal.js';
import JSON5 from 'json5';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export async function readMigrationSettings(): Promise<Record<string, unknown>> {
  return JSON5.parse(await readFile(path.join(projectRoot, '.gmrc'), 'utf8'));
}

// graphile-migrate logs every step at info level; keep warnings and errors.
const quietLogger = new Logger(() => (level, message) => {
  if (level === 'error' || level === 'warning') console.error(`graphile-migrate: ${message}`);
});

export interface MigrateOptions {
  verbose?: boolean;
  /** Another migrations folder (tests replay older states of the schema). */
  migrationsFolder?: string;
  /** Skip afterAllMigrations, i.e. the db/functions files. */
  withoutFunctions?: boolean;
}

export async function migrateDatabase(connectionString: string, options: MigrateOptions = {}): Promise<void> {
  const settings = await readMigrationSettings();
  // Absolute, so migrating works from any working directory.
  const migrationsFolder = options.migrationsFolder ?? path.join(projectRoot, String(settings.migrationsFolder));
  await migrate(
    {
      ...settings,
      migrationsFolder,
      connectionString,
      ...(options.withoutFunctions ? { afterAllMigrations: [] } : {}),
      ...(options.verbose ? {} : { logger: quietLogger }),
    } as never,
    false,
    !options.withoutFunctions,
  );
  clearAllPools();
}
