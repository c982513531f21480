/**
 * REVIEW (issue 14, S3 write path): a LOCAL failure while uploading (a source file gone,
 * shorter than listed, unreadable) is reported as an S3 failure: S3Target.copy wraps every
 * error in s3CommandError (s3_target.ts copy()), so the reply says "S3 upload of s3://…
 * failed: ENOENT" with `s3Code: 'ENOENT'`, and loses the errno/strerror a local backup
 * reports (io_error.ts). No S3 request is made: no server is needed. Expected to FAIL on main.
 */
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Writable } from 'node:stream';
import { tempDir } from '../helpers/paths.js';
import { S3Target } from '../../src/s3/s3_target.js';
import { createS3Client, s3SettingsFromEnvironment } from '../../src/s3/s3_client.js';
import { TokenBucket } from '../../src/backup/throttle.js';
import { ProgressCounters } from '../../src/backup/progress.js';
import { createLogger } from '../../src/log.js';
import { CommandError } from '../../src/errors.js';

const scratch = tempDir('review-local-errors');
after(() => scratch.remove());

it('a source file that is gone fails the upload as a local I/O error, not as an S3 one', async () => {
  // Never reached: the file is opened before any request.
  const settings = s3SettingsFromEnvironment({ AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' });
  const client = createS3Client(settings);
  const closing = new AbortController();
  const target = new S3Target({
    location: { bucket: 'bucket', prefix: 'p' },
    settings,
    client,
    backup: { backupId: '0b7c1d5e-8f3a-4c2b-9d6e-1a2b3c4d5e6f', startedAt: new Date() },
    backoff: { firstMs: 100, maxMs: 100 },
    closing: closing.signal,
    log: createLogger({ name: 'review', format: 'json', destination: new Writable({ write: (_c, _e, cb) => cb() }) }),
  });
  try {
    const missing = path.join(scratch.dir, 'gone.wt');
    await assert.rejects(
      target.copy([{ path: missing, relativePath: 'gone.wt', size: 10 }], { limiter: new TokenBucket(0), concurrency: 1, progress: new ProgressCounters(), signal: new AbortController().signal }),
      (err: CommandError) => {
        assert.equal(err.extra['s3Code'], undefined, `a local error named as S3's: ${err.message}`);
        assert.doesNotMatch(err.message, /^S3 /, err.message);
        assert.equal(err.extra['errno'], 2, 'errno, as a local backup reports it');
        return true;
      },
    );
  } finally {
    closing.abort();
    client.destroy();
  }
});
