/**
 * The pieces of an S3 backup's destination policy that need no server: which opener a
 * request goes to and what is refused before any request is made, where a location lies
 * against a root or a base, and the background retry of a cleanup.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TargetsByKind, type OpenedTarget, type TargetContext, type TargetOpener, type TargetRequest } from '../../src/backup/target_opener.js';
import { isBelow, locationsOverlap } from '../../src/s3/s3_incremental.js';
import { cleanupBackoffFromEnvironment, retryInBackground } from '../../src/s3/s3_retry.js';
import { CommandError, ErrorCodes } from '../../src/errors.js';

/** An opener that records what reached it and opens nothing. */
function recording(name: string, seen: string[]): TargetOpener {
  return {
    open: async (request: TargetRequest): Promise<OpenedTarget> => {
      seen.push(`${name}:${String(request.destination)}`);
      throw new CommandError(ErrorCodes.InternalError, 'not opened in this test');
    },
  };
}

const context: TargetContext = {
  backupId: '00000000-0000-4000-8000-000000000000',
  startedAt: new Date(),
  source: { dbpath: '/data/db', host: '127.0.0.1:27017' },
  closing: new AbortController().signal,
};

async function refusal(opener: TargetOpener, request: TargetRequest): Promise<CommandError> {
  const err = await opener.open(request, context).then(
    () => assert.fail('refused'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof CommandError, String(err));
  return err;
}

describe('TargetsByKind', () => {
  it('sends each destination to the opener of its kind', async () => {
    const seen: string[] = [];
    const targets = new TargetsByKind({ directories: recording('dir', seen), s3: recording('s3', seen) });
    await refusal(targets, { destination: '/backups/a' });
    await refusal(targets, { destination: 's3://bucket/a' });
    await refusal(targets, { destination: 'S3://bucket/b', incrementalBase: 's3://bucket/a' });
    assert.deepEqual(seen, ['dir:/backups/a', 's3:s3://bucket/a', 's3:S3://bucket/b']);
  });

  it('refuses a base of the other kind, and a kind the root excludes, before either opener is asked', async () => {
    const seen: string[] = [];
    const both = new TargetsByKind({ directories: recording('dir', seen), s3: recording('s3', seen) });
    const mixedUp = await refusal(both, { destination: 's3://bucket/b', incrementalBase: '/backups/a' });
    assert.equal(mixedUp.code, ErrorCodes.BadValue);
    assert.match(mixedUp.message, /^incrementalBase \/backups\/a cannot be used: the destination is on S3 and the base is a local directory/);
    const mixedDown = await refusal(both, { destination: '/backups/b', incrementalBase: 's3://bucket/a' });
    assert.match(mixedDown.message, /^incrementalBase s3:\/\/bucket\/a cannot be used: the destination is a local directory and the base is on S3/);
    const localOnly = new TargetsByKind({ directories: recording('dir', seen), s3: recording('s3', seen), refuseS3: 'local root' });
    assert.equal((await refusal(localOnly, { destination: 's3://bucket/b' })).message, 'Backup destination s3://bucket/b is refused: local root');
    const s3Only = new TargetsByKind({ directories: recording('dir', seen), s3: recording('s3', seen), refuseLocal: 's3 root' });
    assert.equal((await refusal(s3Only, { destination: '/backups/b' })).message, 'Backup destination /backups/b is refused: s3 root');
    assert.deepEqual(seen, []);
  });
});

describe('S3 locations against a root and a base', () => {
  const at = (bucket: string, prefix: string) => ({ bucket, prefix });

  it('isBelow: strictly below, in the same bucket, by whole segments', () => {
    assert.equal(isBelow(at('b', 'root/x'), at('b', 'root')), true);
    assert.equal(isBelow(at('b', 'root/x/y'), at('b', 'root')), true);
    assert.equal(isBelow(at('b', 'x'), at('b', '')), true);
    assert.equal(isBelow(at('b', 'root'), at('b', 'root')), false);
    assert.equal(isBelow(at('b', 'rooted/x'), at('b', 'root')), false);
    assert.equal(isBelow(at('c', 'root/x'), at('b', 'root')), false);
  });

  it('locationsOverlap: one is the other or below it', () => {
    assert.equal(locationsOverlap(at('b', 'a'), at('b', 'a')), true);
    assert.equal(locationsOverlap(at('b', 'a/b'), at('b', 'a')), true);
    assert.equal(locationsOverlap(at('b', 'a'), at('b', 'a/b')), true);
    assert.equal(locationsOverlap(at('b', ''), at('b', 'a')), true);
    assert.equal(locationsOverlap(at('b', 'a'), at('b', 'ab')), false);
    assert.equal(locationsOverlap(at('b', 'a'), at('c', 'a')), false);
  });
});

describe('retryInBackground', () => {
  it('retries until an attempt succeeds, telling of each failure', async () => {
    let calls = 0;
    const retries: number[] = [];
    const outcome = await retryInBackground(
      async () => {
        calls++;
        if (calls < 3) throw new Error(`down ${calls}`);
        return 'swept';
      },
      { backoff: { firstMs: 1, maxMs: 4 }, signal: new AbortController().signal, onRetry: (_err, inMs) => retries.push(inMs) },
    );
    assert.deepEqual(outcome, { state: 'done', value: 'swept' });
    assert.equal(calls, 3);
    assert.deepEqual(retries, [2, 4]);
  });

  it('stops when its signal aborts', async () => {
    const stop = new AbortController();
    let calls = 0;
    const outcome = retryInBackground(
      async () => {
        calls++;
        if (calls === 2) stop.abort();
        throw new Error('down');
      },
      { backoff: { firstMs: 1, maxMs: 1 }, signal: stop.signal },
    );
    assert.deepEqual(await outcome, { state: 'stopped' });
    assert.equal(calls, 2);
  });

  it('takes a fixed backoff for tests from HOTBACKUP_TEST_S3_CLEANUP_BACKOFF_MS, and refuses a bad one', () => {
    assert.equal(cleanupBackoffFromEnvironment({}), undefined);
    assert.deepEqual(cleanupBackoffFromEnvironment({ HOTBACKUP_TEST_S3_CLEANUP_BACKOFF_MS: '200' }), { firstMs: 200, maxMs: 200 });
    assert.throws(() => cleanupBackoffFromEnvironment({ HOTBACKUP_TEST_S3_CLEANUP_BACKOFF_MS: 'soon' }), /must be a positive whole number of milliseconds/);
  });
});
