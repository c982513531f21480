/**
 * The reflink strategy's staging directory, `<stagingRoot>/hotbackup-staging-<backupId>/`: where the
 * clones wait to be copied. It is written down in the run journal before it exists and
 * struck out only once it is gone, so that a proxy killed in between leaves a record of
 * what to remove (work_dirs.ts has where the root is, and why never inside the dbpath).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { RunJournal } from '../run_journal.js';
import { toCommandError } from '../io_error.js';
import { STAGING_PREFIX } from '../work_dirs.js';

/** Records, then creates, this backup's staging directory; returns its path. */
export async function createStaging(stagingRoot: string, backupId: string, journal: RunJournal): Promise<string> {
  const dir = path.join(path.resolve(stagingRoot), `${STAGING_PREFIX}${backupId}`);
  await journal.record({ strategy: 'reflink', staging: dir });
  try {
    await fs.mkdir(path.dirname(dir), { recursive: true, mode: 0o700 });
    // Not recursive: a backupId is new, so a directory already there is not ours to fill.
    await fs.mkdir(dir, { mode: 0o700 });
  } catch (err) {
    // Nothing was made (an existing directory is not ours): nothing is left to clean up after.
    await journal.record({ staging: undefined }).catch(() => undefined);
    throw toCommandError(err, `creating the reflink staging directory ${dir} (--staging-dir)`);
  }
  return dir;
}

/** Removes the staging directory and everything in it, then strikes it from the journal. */
export async function removeStaging(dir: string, journal: RunJournal): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true, maxRetries: 3 });
  await journal.record({ staging: undefined });
}
