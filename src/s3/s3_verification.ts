/**
 * Verify of a backup on S3, as of a directory (src/backup/verification.ts): the same
 * checker and verdict through the S3 reader (s3_reader.ts), and the verdict recorded in
 * the same JSON under the same name beside the manifest, `<prefix>/hotbackup-verified.json`,
 * where `hotbackup list s3://root` finds it. Its `directory` is the backup's s3:// URL: a
 * copy of the objects elsewhere (another bucket or prefix) does not carry the verdict along.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { VerifyOptions } from '../backup/checker.js';
import type { VerifyVerdict } from '../backup/verify_verdict.js';
import { verifyReaderAndRecord, type VerificationStore } from '../backup/verification.js';
import { parseVerificationRecordText, serializeVerificationRecord, VERIFICATION_FILENAME, verificationFor, verificationRecordOf, type VerifiedBy } from '../backup/verification_record.js';
import { createS3Client, type S3Settings } from './s3_client.js';
import { readS3Manifest, recordUrl } from './s3_backup_records.js';
import { s3BackupReader } from './s3_reader.js';
import { s3CommandError } from './s3_errors.js';
import { deleteObjects, getObjectBytes, putObjectBytes } from './s3_objects.js';
import { objectKey, s3Url, type S3Location } from './s3_location.js';

/** Verifies the backup at `location` and records the verdict there. Rejects only when `options.signal` aborts it. */
export async function verifyS3AndRecord(location: S3Location, settings: S3Settings, options: VerifyOptions, by: VerifiedBy): Promise<VerifyVerdict> {
  const client = createS3Client(settings, { maxSockets: 64 });
  try {
    return await verifyReaderAndRecord(s3BackupReader(location, { settings, client }), s3VerificationStore(client, location), options, by);
  } finally {
    client.destroy();
  }
}

export function s3VerificationStore(client: S3Client, location: S3Location): VerificationStore {
  const key = objectKey(location, VERIFICATION_FILENAME);
  const url = recordUrl(location, VERIFICATION_FILENAME);
  return {
    where: url,
    keepsOnUnreadable: true,
    write: async (backup, verdict, by) => {
      const record = verificationRecordOf(backup, verdict, by, s3Url(location));
      await putObjectBytes(client, location.bucket, key, Buffer.from(serializeVerificationRecord(record)), 'application/json').catch((err: unknown) => {
        throw s3CommandError(err, 'upload', url);
      });
    },
    remove: async () => {
      await deleteObjects(client, location.bucket, [key]).catch((err: unknown) => {
        throw s3CommandError(err, 'delete', url);
      });
    },
    shown: async () => {
      const { manifest, fileChecksum } = await readS3Manifest(client, location);
      const bytes = await getObjectBytes(client, location.bucket, key, 1024 * 1024);
      if (bytes === undefined) return undefined;
      return verificationFor(parseVerificationRecordText(bytes.toString('utf8')), manifest, fileChecksum, s3Url(location));
    },
  };
}
