import { test } from 'node:test';
import assert from 'node:assert/strict';
import { childLocation, isS3Url, objectKey, parseS3Url, relativeKey, s3Url } from '../../src/s3/s3_location.js';
import { s3SettingsFromEnvironment } from '../../src/s3/s3_client.js';
import { s3CommandError } from '../../src/s3/s3_errors.js';
import { CommandError, ErrorCodes } from '../../src/errors.js';

test('s3:// locations parse into bucket and prefix, and back', () => {
  assert.deepEqual(parseS3Url('s3://backups/nightly/2026-11-30/'), { bucket: 'backups', prefix: 'nightly/2026-11-30' });
  assert.deepEqual(parseS3Url('s3://backups'), { bucket: 'backups', prefix: '' });
  assert.equal(s3Url(parseS3Url('s3://backups/a/b/')), 's3://backups/a/b');
  const root = parseS3Url('s3://backups/root');
  assert.equal(objectKey(root, 'journal/WiredTigerLog.0000000001'), 'root/journal/WiredTigerLog.0000000001');
  assert.equal(s3Url(childLocation(root, 'nightly-1')), 's3://backups/root/nightly-1');
  assert.equal(relativeKey(root, 'root/x/y'), 'x/y');
  assert.equal(relativeKey(root, 'rootx/y'), undefined, 'a sibling prefix is not below the location');
  assert.equal(isS3Url('S3://x'), true);
  assert.equal(isS3Url('/var/backups'), false);
});

test('malformed s3:// locations are refused with BadValue, naming why', () => {
  for (const [url, why] of [
    ['s3://', /names no bucket/],
    ['s3:///p', /names no bucket/],
    ['s3://Upper/p', /not a valid bucket name/],
    ['s3://ab/p', /not a valid bucket name/],
    ['s3://10.0.0.1/p', /not a valid bucket name/],
    ['s3://bucket/a//b', /empty segment/],
    ['s3://bucket/a/../b', /'\.\.' segment/],
    ['s3://bucket/./b', /'\.' segment/],
    ['s3://bucket/a\nb', /control character/],
  ] as const) {
    assert.throws(() => parseS3Url(url, 'Backup destination'), (err: unknown) => {
      assert.ok(err instanceof CommandError);
      assert.equal(err.code, ErrorCodes.BadValue);
      assert.match(err.message, /^Backup destination .* is not a valid S3 location: /s);
      assert.match(err.message, why);
      return true;
    }, url);
  }
});

test('settings follow the AWS environment variables, path-style for an S3-compatible endpoint', () => {
  assert.deepEqual(
    { ...s3SettingsFromEnvironment({ AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:7480', AWS_ENDPOINT_URL: 'http://other', AWS_REGION: 'eu-west-3' }) },
    { region: 'eu-west-3', endpoint: 'http://127.0.0.1:7480', forcePathStyle: true, maxAttempts: 5, connectionTimeoutMs: 10_000, requestTimeoutMs: 300_000 },
  );
  const aws = s3SettingsFromEnvironment({ AWS_DEFAULT_REGION: 'us-west-2', AWS_MAX_ATTEMPTS: '2' });
  assert.equal(aws.endpoint, undefined);
  assert.equal(aws.forcePathStyle, false);
  assert.equal(aws.region, 'us-west-2');
  assert.equal(aws.maxAttempts, 2);
  assert.equal(s3SettingsFromEnvironment({}).region, 'us-east-1');
  assert.throws(() => s3SettingsFromEnvironment({ AWS_ENDPOINT_URL: 'http://key:secret@host' }), /must not carry credentials/);
  assert.throws(() => s3SettingsFromEnvironment({ AWS_ENDPOINT_URL: 'ftp://host' }), /http:\/\/ or https:\/\//);
  assert.throws(() => s3SettingsFromEnvironment({ AWS_MAX_ATTEMPTS: '0' }), /positive integer/);
});

test("S3's error code and status reach the command error, with a code that says what kind", () => {
  const sdkError = (name: string, status?: number): Error =>
    Object.assign(new Error(name), { name, Code: name, ...(status === undefined ? {} : { $metadata: { httpStatusCode: status } }) });
  const noBucket = s3CommandError(sdkError('NoSuchBucket', 404), 'upload', 's3://nope/x');
  assert.equal(noBucket.code, ErrorCodes.NonExistentPath);
  assert.match(noBucket.message, /^S3 upload of s3:\/\/nope\/x failed: NoSuchBucket \(HTTP 404\): the bucket does not exist/);
  assert.equal(noBucket.extra['s3Code'], 'NoSuchBucket');
  // Our own multipart upload gone under us (aborted by another's sweep): a failure, not a missing destination.
  const noUpload = s3CommandError(sdkError('NoSuchUpload', 404), 'upload', 's3://b/x');
  assert.equal(noUpload.code, ErrorCodes.OperationFailed);
  assert.equal(noUpload.extra['s3Code'], 'NoSuchUpload');
  const badKey = s3CommandError(sdkError('InvalidAccessKeyId', 403), 'check', 's3://b/x');
  assert.equal(badKey.code, ErrorCodes.OperationFailed);
  assert.match(badKey.message, /InvalidAccessKeyId \(HTTP 403\): the credentials were refused/);
  const refused = s3CommandError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), 'upload', 's3://b/x');
  assert.equal(refused.code, ErrorCodes.HostUnreachable);
  assert.equal(refused.codeName, 'HostUnreachable');
  const ours = new CommandError(ErrorCodes.Interrupted, 'aborted');
  assert.equal(s3CommandError(ours, 'upload', 's3://b/x'), ours, 'our own errors pass through');
});
