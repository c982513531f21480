/**
 * `hotbackup restore --oplog DIR --until TS`, the CLI as a child process: a backup taken
 * through the proxy, restored, brought forward by the oplog files from the backup's own
 * last oplog entry up to TS (through the dev server it starts on the restore and stops),
 * and opened afterwards.
 *
 * The server here is a standalone whose `local.oplog.rs` is written by the test, one
 * entry standing for the backup's last; the end-to-end test on a replica set, with the
 * files `hotbackup oplog` streams, belongs with those slices.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { runCli } from '../helpers/cli_run.js';
import { makeOplogBackup, SECS, seqDocsIn as idsIn } from '../helpers/oplog_backup.js';
import { tempDir } from '../helpers/paths.js';

describe('hotbackup restore --oplog --until', () => {
  const scratch = tempDir('restore-oplog');
  let backup: string;
  let oplogDir: string;

  before(async () => {
    ({ backup, oplogDir } = await makeOplogBackup(scratch.dir));
  });

  after(() => {
    scratch.remove();
  });

  it('restores, replays from the backup\'s last entry up to --until, stops the server: nothing after --until', async () => {
    const target = path.join(scratch.dir, 'restored');
    const run = await runCli(['restore', backup, '--to', target, '--oplog', oplogDir, '--until', `${SECS},6`]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /Replaying .* from the backup's last oplog entry, ts 1700000100,3, up to 1700000100,6, through the dev server\./);
    assert.match(run.stdout, /Replayed 3 oplog entries .*: 3 applied\./);
    assert.match(run.stdout, /holds the backup and the oplog up to 1700000100,6\. Start mongod with --dbpath/);
    assert.deepEqual(await idsIn(target), [0, 1, 2, 3, 4, 5].map((i) => ({ _id: i })));
  });

  it('exit 5 when the backup already holds entries past --until; the files are restored', async () => {
    const target = path.join(scratch.dir, 'too-early');
    const run = await runCli(['restore', backup, '--to', target, '--oplog', oplogDir, '--until', `${SECS},1`]);
    assert.equal(run.code, 5, run.stderr);
    assert.match(run.stderr, /the backup already holds entries up to ts 1700000100,3, after --until 1700000100,1: a restore cannot go back in time/);
    assert.deepEqual(await idsIn(target), [0, 1, 2].map((i) => ({ _id: i })));
  });

  it('--oplog without --until is a usage error', async () => {
    const run = await runCli(['restore', backup, '--to', path.join(scratch.dir, 'x'), '--oplog', oplogDir]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--oplog <dir> and --until <secs,inc> go together/);
  });
});
