/**
 * An abort whose snapshot cannot be released cleanly is no clean abort: here the
 * connection carrying the backup cursor's killCursors is cut (a relay between the proxy
 * and mongod drops it), so nothing proves the cursor was closed by the proxy. backupAbort
 * must say so with an error a script cannot miss (`ok: 0`), still saying the backup was
 * aborted; backupStatus.last and the marker in the destination say `failed`, as it does.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient, MongoServerError, type Document } from 'mongodb';
import { startSpiedProxy, type BackupCursorSpy, type SpiedProxy } from '../helpers/backup_cursor_spy.js';
import { tempDir } from '../helpers/paths.js';
import { untilCopying } from '../helpers/poll.js';
import { readIncompleteMarker } from '../../src/backup/backup_marker.js';

describe('an abort whose snapshot release fails', () => {
  let stack: SpiedProxy;
  let spy: BackupCursorSpy;
  let client: MongoClient;
  const scratch = tempDir('abort-release');
  const admin = () => client.db('admin');

  before(async () => {
    stack = await startSpiedProxy();
    ({ spy, client } = stack);
  });

  after(async () => {
    await stack?.stop();
    scratch.remove();
  });

  it('answers backupAbort with ok: 0 saying it was aborted and the release failed; status and marker say failed', async (t) => {
    await admin().command({ backupThrottle: '1MB' });
    const dest = path.join(scratch.dir, 'cut');
    const started = await admin().command({ backupStart: dest, async: true });
    await untilCopying(admin());
    const cut = spy.failNext('killCursors', 'cut');

    const err = await admin().command({ backupAbort: 1 }).then(
      (reply) => assert.fail(`backupAbort answered ok: ${JSON.stringify(reply)}`),
      (e: unknown) => e,
    );
    await cut;
    assert.ok(err instanceof MongoServerError, String(err));
    t.diagnostic(`backupAbort: ${err.code} ${err.codeName}: ${err.message}`);
    assert.notEqual(err.code, 11601, 'not Interrupted: this was no clean abort');
    assert.match(err.message, /^operation was interrupted: backup [0-9a-f-]{36} was aborted by \{backupAbort: 1\} from 127\.0\.0\.1:\d+; .* While it stopped, releasing its snapshot failed: /);
    assert.equal(err.errorResponse['backupId'], started['backupId']);
    assert.equal(err.errorResponse['state'], 'failed');

    const status = await admin().command({ backupStatus: 1 });
    assert.equal(status['inProgress'], false);
    const last = status['last'] as Document;
    assert.equal(last['state'], 'failed');
    assert.equal(last['code'], err.code);
    assert.equal(last['errmsg'], err.message);
    const marker = await readIncompleteMarker(dest);
    assert.ok(marker.kind === 'present');
    assert.equal(marker.marker.state, 'failed', 'the marker agrees with backupStatus');
    assert.equal(fs.existsSync(path.join(dest, 'hotbackup-manifest.json')), false);

    // The proxy killed the cursor's session after the cut: nothing is left open, and the next backup runs.
    await admin().command({ backupThrottle: 0 });
    assert.deepEqual(await admin().command({ backupStart: path.join(scratch.dir, 'next') }), { ok: 1 });
  });
});
