/**
 * The snippet in an interactive mongosh (a tmux pane), loaded from ~/.mongoshrc.js:
 * one progress line rewritten in place, Ctrl-C returning the shell while the backup
 * runs on in the proxy, and hotbackup.wait() following it again to its summary.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startMongoshTty, type MongoshTty } from '../helpers/mongosh_tty.js';
import { LOAD, MANIFEST, PROGRESS_LINE, startFixture, type Fixture } from './support.js';

const progressRows = (rows: string[]) =>
  rows.map((row, index) => ({ row, index })).filter(({ row }) => PROGRESS_LINE.test(row));
const percentOf = (row: string) => Number(PROGRESS_LINE.exec(row)?.[1]);

describe('hotbackup snippet in an interactive mongosh', () => {
  let fx: Fixture;
  let tty: MongoshTty;

  before(async () => {
    fx = await startFixture(24);
    tty = await startMongoshTty(fx.proxy.uri, { rc: `${LOAD}\n` });
  });

  after(async () => {
    await tty?.close();
    await fx?.stop();
  });

  it('shows one progress line updated in place; Ctrl-C leaves the backup running; wait() follows it', async () => {
    const dest = path.join(fx.scratch.dir, 'interactive');
    // At 1 MiB/s the copy (24 MB of data, and the journal) lasts far longer than the
    // looks, the Ctrl-C and the status check below take, however busy the machine. The
    // throttle is lifted once wait() follows the copy again.
    await tty.send(`hotbackup.start(${JSON.stringify(dest)}, {throttle: '1MB'})`);

    // Two looks at the screen during the copy: the first progress line, then the screen
    // once a different percentage shows. One progress line each time, on the same row.
    const first = await tty.waitFor((rows) => (progressRows(rows).length > 0 ? rows : undefined), 'a progress line');
    const [a, ...moreA] = progressRows(first);
    assert.ok(a && moreA.length === 0, `one progress line:\n${first.join('\n')}`);
    const second = await tty.waitFor(
      (rows) => (progressRows(rows).some(({ row }) => percentOf(row) !== percentOf(a.row)) ? rows : undefined),
      'the percentage to move',
    );
    const [b, ...moreB] = progressRows(second);
    assert.ok(b && moreB.length === 0, `one progress line:\n${second.join('\n')}`);
    assert.equal(b.index, a.index, 'rewritten on the same row');
    assert.ok(percentOf(b.row) > percentOf(a.row), `${a.row}\n${b.row}`);
    // The advice about Ctrl-C is on screen before the progress line.
    const hint = second.findIndex((row) => row.startsWith('Ctrl-C stops watching, not the backup'));
    assert.ok(hint >= 0 && hint < b.index, second.join('\n'));
    const backupId = /^backup (\S+) started -> /.exec(second.find((row) => row.startsWith('backup ')) ?? '')?.[1];
    assert.ok(backupId, second.join('\n'));

    // Ctrl-C: the shell comes back, the backup does not stop.
    await tty.keys('C-c');
    await tty.waitFor((rows) => (rows.some((row) => row.endsWith('Stopping execution...')) ? true : undefined), 'the interrupt');
    await tty.waitForPrompt();
    await tty.untilResumed();
    const running = await fx.status();
    assert.equal(running['inProgress'], true, 'still copying after Ctrl-C');
    assert.equal(running['backupId'], backupId);

    // Follow it again; let it finish at full speed once wait() shows progress.
    await tty.send('hotbackup.wait()');
    await tty.waitFor((rows) => {
      const at = rows.lastIndexOf('test> hotbackup.wait()');
      return at >= 0 && rows.slice(at).some((row) => PROGRESS_LINE.test(row)) ? true : undefined;
    }, 'wait() to show progress');
    await fx.throttle(0);
    await tty.waitForPrompt();
    const done = await tty.screen();
    const at = done.lastIndexOf('test> hotbackup.wait()');
    const after = done.slice(at + 1).filter((row) => row !== '');
    assert.equal(after[0], `watching backup ${backupId} -> ${dest}`);
    assert.match(after[1] ?? '', /^Ctrl-C stops watching/);
    // The progress line was replaced by the summary: no progress row is left behind.
    assert.match(after[3] ?? '', new RegExp(`^backup ok: [\\d.]+ MiB, \\d+ files, [\\d.]+ s, strategy backupCursor, destination ${dest.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
    assert.equal(after.filter((row) => PROGRESS_LINE.test(row)).length, 0, after.join('\n'));
    assert.ok(fs.existsSync(path.join(dest, MANIFEST)));
  });
});
