/**
 * An abort that comes while the backup is still opening its snapshot: mongod has not
 * answered the `$backupCursor` aggregate yet (it may wait minutes for a checkpoint; here a
 * relay swallows the aggregate, so mongod never answers). The abort must not wait for that
 * answer: the backup stops within the 1 s, its cursor session is killed (a cursor
 * opened late would die with it), and the next backup opens its cursor at once.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient, type Document } from 'mongodb';
import { startSpiedProxy, type BackupCursorSpy, type SpiedProxy } from '../helpers/backup_cursor_spy.js';
import { tempDir } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';

const ABORT_WITHIN_MS = 1000;

describe('aborting a backup whose $backupCursor mongod has not answered yet', () => {
  let stack: SpiedProxy;
  let spy: BackupCursorSpy;
  let client: MongoClient;
  const scratch = tempDir('abort-open');

  before(async () => {
    stack = await startSpiedProxy();
    ({ spy, client } = stack);
  });

  after(async () => {
    await stack?.stop();
    scratch.remove();
  });

  it('stops within 1 s, kills the cursor session, and the next backup succeeds', async (t) => {
    const admin = client.db('admin');
    const swallowed = spy.failNext('aggregate', 'swallow', (frame) => frame.includes('$backupCursor'));
    const dest = path.join(scratch.dir, 'never-opened');
    const started = await admin.command({ backupStart: dest, async: true });
    await swallowed;
    const waiting = await admin.command({ backupStatus: 1 });
    assert.equal(waiting['inProgress'], true);
    assert.equal(waiting['phase'], 'snapshot', 'the backup waits for its snapshot');
    const killsBefore = spy.accepted('killSessions');

    const sent = performance.now();
    const reply = await admin.command({ backupAbort: 1 });
    const answered = performance.now() - sent;
    t.diagnostic(`backupAbort answered in ${answered.toFixed(0)} ms, the open abandoned`);
    assert.equal(reply['state'], 'aborted');
    assert.equal(reply['backupId'], started['backupId']);
    assert.ok(answered < ABORT_WITHIN_MS, `answered ${answered.toFixed(0)} ms after it was sent`);

    const last = (await admin.command({ backupStatus: 1 }))['last'] as Document;
    assert.equal(last['state'], 'aborted');
    assert.equal(last['code'], 11601);
    assert.equal(last['strategy'], null, 'no snapshot was ever open');
    assert.equal(fs.existsSync(path.join(dest, 'hotbackup-manifest.json')), false);
    // The abandoned open's session is killed, so a cursor mongod opened after all would die with it.
    await until(() => spy.accepted('killSessions') > killsBefore);

    const next = path.join(scratch.dir, 'next');
    assert.deepEqual(await admin.command({ backupStart: next }), { ok: 1 });
    assert.ok(fs.existsSync(path.join(next, 'hotbackup-manifest.json')));
  });
});
