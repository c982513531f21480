/**
 * One verify as both its faces run it (`hotbackup verify`, and backupVerify in the
 * proxy): the checker (checker.ts), its verdict (verify_verdict.ts), and the verdict
 * recorded in the backup for `hotbackup list` (verification_record.ts).
 *
 * - A verdict on the files (complete, or damaged: files that do not match) is recorded,
 *   replacing any earlier record.
 * - A manifest that cannot be trusted (invalid) or read removes the record: nothing
 *   may go on saying the backup was verified.
 * - Any other verdict (no manifest: running, aborted, failed...; no backup at all)
 *   leaves the directory alone: there is no backup to speak for.
 * A record that cannot be written or removed does not change the verdict; a note says
 * so, and whether `hotbackup list` will still show an older one.
 */
import path from 'node:path';
import { verifyBackup, type VerifyOptions, type VerifyReport } from './checker.js';
import { verdictOfError, verdictOfReport, type VerifyVerdict } from './verify_verdict.js';
import { readManifestFile } from './manifest.js';
import { readVerification, removeVerificationRecord, VERIFICATION_FILENAME, writeVerificationRecord, type VerifiedBy } from './verification_record.js';

/** Verifies `directory` and records the verdict. Rejects only when `options.signal` aborts it (with the signal's reason). */
export async function verifyAndRecord(directory: string, options: VerifyOptions, by: VerifiedBy): Promise<VerifyVerdict> {
  const started = performance.now();
  let verdict: VerifyVerdict;
  let report: VerifyReport | undefined;
  try {
    report = await verifyBackup(directory, options);
    verdict = verdictOfReport(report);
  } catch (err) {
    if (options.signal?.aborted === true) throw options.signal.reason;
    verdict = verdictOfError(err, directory, (performance.now() - started) / 1000);
  }
  const note = await record(verdict, report, by);
  if (note !== undefined) verdict.notes.push(note);
  return verdict;
}

/** Records `verdict`; resolves with a note when that could not be done. */
async function record(verdict: VerifyVerdict, report: VerifyReport | undefined, by: VerifiedBy): Promise<string | undefined> {
  const file = path.join(verdict.directory, VERIFICATION_FILENAME);
  if (report !== undefined) {
    try {
      await writeVerificationRecord(report.backup, verdict, by);
      return undefined;
    } catch (err) {
      return `this verification could not be recorded in ${file} (${(err as Error).message})${await staleWarning(verdict.directory)}`;
    }
  }
  if (verdict.state !== 'damaged' && verdict.state !== 'unreadable') return undefined;
  try {
    await removeVerificationRecord(verdict.directory);
    return undefined;
  } catch (err) {
    return `the earlier verification recorded in ${file} could not be removed (${(err as Error).message})${await staleWarning(verdict.directory)}`;
  }
}

/** What an operator must know when an older record stays: `hotbackup list` still shows it (exactly as list reads it). */
async function staleWarning(directory: string): Promise<string> {
  const shown = await readManifestFile(directory).then(
    ({ manifest, fileChecksum }) => readVerification(directory, manifest, fileChecksum),
    () => undefined,
  );
  if (shown === undefined) return '';
  return `; hotbackup list will go on showing the earlier verification (${shown.ok ? 'ok' : 'FAILED'}, ${shown.verifiedAt}) until ${VERIFICATION_FILENAME} is removed, or the directory is writable and verified again`;
}
