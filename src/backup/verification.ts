/**
 * One verify as both its faces run it (`hotbackup verify`, and backupVerify in the
 * proxy): the checker (checker.ts), its verdict (verify_verdict.ts), and the verdict
 * recorded in the backup for `hotbackup list` (verification_record.ts), for a backup
 * directory or one on S3 (src/s3/s3_verification.ts gives its reader and record store).
 *
 * - A verdict on the files (complete, or damaged: files that do not match) is recorded,
 *   replacing any earlier record.
 * - A manifest that cannot be trusted (invalid) or read removes the record: nothing
 *   may go on saying the backup was verified.
 * - Any other verdict (no manifest: running, aborted, failed...; no backup at all)
 *   leaves the backup alone: there is no backup to speak for.
 * A record that cannot be written or removed does not change the verdict; a note says
 * so, and whether `hotbackup list` will still show an older one.
 */
import path from 'node:path';
import { verifyBackup, type VerifyOptions, type VerifyReport } from './checker.js';
import { verdictOfError, verdictOfReport, type VerifyVerdict } from './verify_verdict.js';
import { readManifestFile } from './manifest.js';
import { readVerification, removeVerificationRecord, VERIFICATION_FILENAME, writeVerificationRecord, type VerifiedBy } from './verification_record.js';
import { localBackupReader } from './local_reader.js';
import type { BackupReader } from './backup_reader.js';
import type { OpenedBackup } from './backup_dir.js';
import type { Verification } from './backup_catalog.js';

/** Where a backup's verification record is kept: beside its manifest, in a directory or under an S3 prefix. */
export interface VerificationStore {
  /** The record's path or URL, for notes. */
  readonly where: string;
  write(backup: OpenedBackup, verdict: VerifyVerdict, by: VerifiedBy): Promise<void>;
  /**
   * Set when an `unreadable` verdict says nothing of the backup and the earlier record
   * must stay: on S3 it is a refused or unreachable request (a listing that failed once),
   * not the backup's own files being unreadable. Only a manifest found invalid removes it.
   */
  readonly keepsOnUnreadable?: boolean;
  remove(): Promise<void>;
  /** The verification `hotbackup list` shows now, if any (exactly as list reads it). */
  shown(): Promise<Verification | undefined>;
}

/** The record store of the backup directory `directory`. */
export function localVerificationStore(directory: string): VerificationStore {
  return {
    where: path.join(directory, VERIFICATION_FILENAME),
    write: async (backup, verdict, by) => {
      await writeVerificationRecord(backup, verdict, by);
    },
    remove: async () => {
      await removeVerificationRecord(directory);
    },
    shown: () =>
      readManifestFile(directory).then(
        ({ manifest, fileChecksum }) => readVerification(directory, manifest, fileChecksum),
        () => undefined,
      ),
  };
}

/** Verifies the backup directory `directory` and records the verdict. Rejects only when `options.signal` aborts it (with the signal's reason). */
export async function verifyAndRecord(directory: string, options: VerifyOptions, by: VerifiedBy): Promise<VerifyVerdict> {
  const reader = localBackupReader(directory);
  return verifyReaderAndRecord(reader, localVerificationStore(reader.where), options, by);
}

/** Verifies what `reader` reads and records the verdict in `store`. Rejects only when `options.signal` aborts it. */
export async function verifyReaderAndRecord(reader: BackupReader, store: VerificationStore, options: VerifyOptions, by: VerifiedBy): Promise<VerifyVerdict> {
  const started = performance.now();
  let verdict: VerifyVerdict;
  let report: VerifyReport | undefined;
  try {
    report = await verifyBackup(reader, options);
    verdict = verdictOfReport(report);
  } catch (err) {
    if (options.signal?.aborted === true) throw options.signal.reason;
    verdict = verdictOfError(err, reader.where, (performance.now() - started) / 1000);
  }
  const note = await record(store, verdict, report, by);
  if (note !== undefined) verdict.notes.push(note);
  return verdict;
}

/** Records `verdict`; resolves with a note when that could not be done. */
async function record(store: VerificationStore, verdict: VerifyVerdict, report: VerifyReport | undefined, by: VerifiedBy): Promise<string | undefined> {
  if (report !== undefined) {
    try {
      await store.write(report.backup, verdict, by);
      return undefined;
    } catch (err) {
      return `this verification could not be recorded in ${store.where} (${(err as Error).message})${await staleWarning(store)}`;
    }
  }
  if (verdict.state !== 'damaged' && verdict.state !== 'unreadable') return undefined;
  if (verdict.state === 'unreadable' && store.keepsOnUnreadable === true) return undefined;
  try {
    await store.remove();
    return undefined;
  } catch (err) {
    return `the earlier verification recorded in ${store.where} could not be removed (${(err as Error).message})${await staleWarning(store)}`;
  }
}

/** What an operator must know when an older record stays: `hotbackup list` still shows it. */
async function staleWarning(store: VerificationStore): Promise<string> {
  const shown = await store.shown().catch(() => undefined);
  if (shown === undefined) return '';
  return `; hotbackup list will go on showing the earlier verification (${shown.ok ? 'ok' : 'FAILED'}, ${shown.verifiedAt}) until ${VERIFICATION_FILENAME} is removed, or the directory is writable and verified again`;
}
