/**
 * What a verify leaves so that `hotbackup list` can say a backup was verified, and when:
 * `hotbackup-verified.json`, beside the manifest of the backup it checked.
 *
 * In the backup's own directory, not in a file of the proxy's or of a catalog root: the
 * CLI verifies without a proxy, a backup may be verified where no catalog root is, and
 * both faces of verify (`hotbackup verify`, backupVerify) must find the one record to
 * replace. Beside the manifest, it goes where the backup goes: purge deletes it with
 * the backup, and verify and restore know it as the backup's (neither an extra file
 * nor one to restore).
 *
 * A record speaks only for the backup it was written for. readVerification ignores one
 * (list shows '-') unless it names
 * - this manifest: its backupId and the XXH3-64 of the manifest file's bytes, so that a
 *   manifest rewritten since (another backup in the same directory, a hand edit) is not
 *   taken for the one verified;
 * - this directory (its real path): a copy of a backup (cp -a, rsync) carries the
 *   record along, but its bytes were never checked where they are now.
 *
 * Every verify that reaches a verdict on the files replaces the record, good or bad: a
 * damaged backup's record says `ok: false` (list: FAILED), so "verified" never outlives
 * the verify that found the backup damaged. Written durably (durable.ts); where the
 * directory takes no new file (full, or made read-only), an existing record is written
 * over in place, as the incomplete marker is.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { isTempFileOf, fsyncDirectory, replaceFileOrRewriteInPlace } from './durable.js';
import { MANIFEST_FORMAT, type Manifest } from './manifest.js';
import { parseRecordText, readRecordFile } from './versioned_record.js';
import { errorCode } from './io_error.js';
import { selfIdentity } from './process_identity.js';
import type { OpenedBackup } from './backup_dir.js';
import type { Verification } from './backup_catalog.js';
import type { VerifyVerdict } from './verify_verdict.js';

export const VERIFICATION_FILENAME = 'hotbackup-verified.json';
const RECORD_VERSION = 1;

/** Who verified: the CLI, or the proxy's command. */
export type VerifiedBy = 'hotbackup verify' | 'backupVerify';

const isoTime = z.iso.datetime({ offset: true });
const count = z.int().nonnegative();

const RecordSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  kind: z.literal('verification'),
  version: z.literal(RECORD_VERSION),
  /** The backup directory, with every symbolic link resolved; or the backup's s3:// URL. */
  directory: z.string(),
  backupId: z.uuid(),
  /** XXH3-64 of the bytes of the manifest verified. */
  manifestChecksum: z.string().regex(/^[0-9a-f]{16}$/),
  verifiedAt: isoTime,
  ok: z.boolean(),
  state: z.enum(['complete', 'damaged']),
  /** How many files did not match (0 when ok). */
  problems: count,
  files: count,
  bytes: count,
  bytesHashed: count,
  seconds: z.number().nonnegative(),
  by: z.enum(['hotbackup verify', 'backupVerify']),
  writer: z.object({ pid: z.int().positive(), hostname: z.string(), start: z.string().optional() }),
});

export type VerificationRecord = z.infer<typeof RecordSchema>;

/** Whether `name`, at the top of a backup directory, is the record or a temp file left while writing it. */
export function isVerificationFile(name: string): boolean {
  return name === VERIFICATION_FILENAME || isTempFileOf(name, VERIFICATION_FILENAME);
}

/**
 * The record of `verdict`, a verdict on the files of `backup`, found at `directory` (a
 * directory's real path, or a backup's s3:// URL). Throws for a verdict on no files.
 */
export function verificationRecordOf(backup: OpenedBackup, verdict: VerifyVerdict, by: VerifiedBy, directory: string, at: Date = new Date()): VerificationRecord {
  if (verdict.state !== 'complete' && verdict.state !== 'damaged') throw new Error(`a ${verdict.state} verdict is no verdict on the files`);
  return {
    format: MANIFEST_FORMAT,
    kind: 'verification',
    version: RECORD_VERSION,
    directory,
    backupId: backup.manifest.backupId,
    manifestChecksum: backup.manifestChecksum,
    verifiedAt: at.toISOString(),
    ok: verdict.ok,
    state: verdict.state,
    problems: verdict.problems.length,
    files: verdict.files,
    bytes: verdict.bytes,
    bytesHashed: verdict.bytesHashed,
    seconds: verdict.seconds,
    by,
    writer: selfIdentity(),
  };
}

/** The record's text, as it is written (a directory's file, an S3 object). */
export function serializeVerificationRecord(record: VerificationRecord): string {
  return `${JSON.stringify(record, null, 2)}\n`;
}

/** Writes (or replaces) the record of `verdict`, a verdict on the files of `backup`. */
export async function writeVerificationRecord(backup: OpenedBackup, verdict: VerifyVerdict, by: VerifiedBy, at: Date = new Date()): Promise<VerificationRecord> {
  const record = verificationRecordOf(backup, verdict, by, await fs.realpath(backup.directory), at);
  await replaceFileOrRewriteInPlace(path.join(backup.directory, VERIFICATION_FILENAME), serializeVerificationRecord(record));
  return record;
}

/** Removes the record in `dir`, durably; resolves with whether there was one. */
export async function removeVerificationRecord(dir: string): Promise<boolean> {
  try {
    await fs.rm(path.join(dir, VERIFICATION_FILENAME));
  } catch (err) {
    if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') return false;
    throw err;
  }
  await fsyncDirectory(dir);
  return true;
}

export type RecordRead = { kind: 'absent' } | { kind: 'invalid'; reason: string } | { kind: 'present'; record: VerificationRecord };

/** The record in `dir`, if any, validated; whose it is is not checked here. */
export async function readVerificationRecord(dir: string): Promise<RecordRead> {
  const read = await readRecordFile(path.join(dir, VERIFICATION_FILENAME), RecordSchema, 'record');
  return read.kind === 'present' ? { kind: 'present', record: read.value } : read;
}

/** A record's text, as read from a file or an S3 object, validated; whose it is is not checked here. */
export function parseVerificationRecordText(text: string): RecordRead {
  const read = parseRecordText(text, RecordSchema, 'record');
  return read.kind === 'present' ? { kind: 'present', record: read.value } : read;
}

/**
 * The verification of the backup in `dir` whose manifest is `manifest` (its file's
 * XXH3-64 `manifestChecksum`): the record's verdict when the record names this manifest
 * and this directory; undefined otherwise (none, unreadable, or another backup's).
 */
export async function readVerification(dir: string, manifest: Manifest, manifestChecksum: string): Promise<Verification | undefined> {
  const read = await readVerificationRecord(dir);
  if (read.kind !== 'present') return undefined;
  const here = await fs.realpath(dir).catch(() => undefined);
  return here === undefined ? undefined : verificationFor(read, manifest, manifestChecksum, here);
}

/**
 * What `read` says of the backup at `where` (a real path, or the backup's `s3://` URL)
 * whose manifest is `manifest`: its verdict when it names that manifest and that place.
 */
export function verificationFor(read: RecordRead, manifest: Manifest, manifestChecksum: string, where: string): Verification | undefined {
  if (read.kind !== 'present') return undefined;
  const { record } = read;
  if (record.backupId !== manifest.backupId || record.manifestChecksum !== manifestChecksum || record.directory !== where) return undefined;
  return { ok: record.ok, verifiedAt: record.verifiedAt };
}
