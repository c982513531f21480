/**
 * The S3 cleanups a backup owes, kept on disk in the proxy's state dir until they are done,
 * so that a restart cannot forget one. A backup to S3 leaves, when it does not complete,
 * unfinished multipart uploads (billing for their parts until aborted) and a marker that
 * still says `running`; when S3 cannot be reached as it ends (the server died, which may
 * be why it failed), or the proxy dies or stops first, nothing in memory survives to
 * finish that. So a record `<stateDir>/s3-cleanups/<backupId>.json` is written BEFORE the
 * backup writes anything to S3 and removed only once it completed or its cleanup
 * succeeded; the next start sweeps every record left (s3_recovery.ts), and a sweep that
 * fails leaves the record for the one after.
 *
 * One file per backup rather than a field of the run's state file (run_state_file.ts):
 * that record goes as soon as mongod holds nothing of the backup's, and a new backup
 * begins its own while an earlier one's S3 cleanup may still be pending.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { fsyncDirectory, writeFileDurably } from '../backup/durable.js';
import type { MarkerState } from '../backup/backup_marker.js';
import type { BackupFailure } from '../backup/engine_status.js';

const DIR_NAME = 's3-cleanups';
const FILE_SUFFIX = '.json';

const RecordSchema = z.object({
  backupId: z.string().regex(/^[0-9A-Za-z-]{1,64}$/),
  destination: z.string().startsWith('s3://'),
  /** Set once the backup failed: what its marker is to say. Absent: it was interrupted. */
  ended: z
    .object({
      state: z.enum(['failed', 'aborted', 'interrupted']),
      failure: z.object({ code: z.number(), codeName: z.string(), errmsg: z.string(), extra: z.record(z.string(), z.unknown()) }),
    })
    .optional(),
});

export type S3CleanupRecord = z.infer<typeof RecordSchema>;

export class S3CleanupRecords {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, DIR_NAME);
  }

  /** Written durably: the record is on disk once this resolves. */
  async write(record: S3CleanupRecord): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileDurably(this.file(record.backupId), `${JSON.stringify(record, null, 2)}\n`, 0o600);
  }

  /** Adds what the failed backup's marker is to say. */
  async ended(backupId: string, destination: string, state: Exclude<MarkerState, 'running'>, failure: BackupFailure): Promise<void> {
    await this.write({ backupId, destination, ended: { state, failure: { ...failure, extra: { ...failure.extra } } } });
  }

  async remove(backupId: string): Promise<void> {
    await fs.rm(this.file(backupId), { force: true });
    await fsyncDirectory(this.dir).catch(() => undefined);
  }

  /** Every record left; an unreadable one is reported by `onInvalid` and kept (a human decides). */
  async list(onInvalid: (file: string, reason: string) => void): Promise<S3CleanupRecord[]> {
    const names = await fs.readdir(this.dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [];
      throw err;
    });
    const records: S3CleanupRecord[] = [];
    for (const name of names.filter((n) => n.endsWith(FILE_SUFFIX)).sort()) {
      const file = path.join(this.dir, name);
      try {
        const parsed = RecordSchema.safeParse(JSON.parse(await fs.readFile(file, 'utf8')));
        if (parsed.success) records.push(parsed.data);
        else onInvalid(file, parsed.error.message);
      } catch (err) {
        onInvalid(file, err instanceof Error ? err.message : String(err));
      }
    }
    return records;
  }

  private file(backupId: string): string {
    return path.join(this.dir, `${backupId}${FILE_SUFFIX}`);
  }
}
