/**
 * `hotbackup oplog` as an operator runs it: its help and usage errors. (Streaming against
 * the replica-set dev server, SIGINT and resume, kill -9, a rolled-over oplog: added with
 * the replica-set dev server.)
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli_run.js';
import { tempDir } from '../helpers/paths.js';
import { renderStreamLine } from '../../src/cli/oplog_progress.js';

describe('hotbackup oplog', () => {
  const scratch = tempDir('oplog-cli');
  after(() => scratch.remove());

  it('draws the progress line: entries, bytes, the newest ts and its lag, the file', () => {
    const snap = { entries: 12345, bytes: 3 * 1024 * 1024, newestTs: { secs: 1466234959, inc: 1 }, file: '/b/oplog/oplog000003.bson', reconnecting: false };
    assert.equal(renderStreamLine(snap, 1466234961_500), 'oplog  12,345 entries  3.0 MiB  newest Timestamp 1466234959000|1 (lag 2s)  oplog000003.bson');
    assert.equal(renderStreamLine({ ...snap, entries: 0, bytes: 0, newestTs: undefined, file: undefined, reconnecting: true }, 0), 'oplog  0 entries  0 B  waiting for the first entry  reconnecting…');
  });

  it('prints its help, and refuses bad flags with exit code 2', async () => {
    const help = await runCli(['oplog', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: hotbackup oplog --upstream URI --out DIR/);
    assert.match(help.stdout, /Exit codes:\n  0 /);
    for (const [args, message] of [
      [['--upstream', 'mongodb://127.0.0.1:1'], /--out DIR is required/],
      [['--out', scratch.dir], /--upstream is required/],
      [['--out', scratch.dir, '--upstream', 'mongodb://127.0.0.1:1', '--from', '1466234959'], /--from takes a timestamp as <secs>,<inc>/],
      [['--out', scratch.dir, '--upstream', 'mongodb://127.0.0.1:1', '--rotate-size', '0'], /--rotate-size must be a positive number/],
      [['--out', scratch.dir, '--bogus'], /Unknown option '--bogus'/],
    ] as const) {
      const run = await runCli(['oplog', ...args], { HOTBACKUP_UPSTREAM_URI: '' });
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, message);
      assert.equal(run.stdout, '');
    }
  });

});
