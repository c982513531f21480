/**
 * The mongosh snippet (snippets/hotbackup) driven through the real npm mongosh, in
 * scripts (--eval), against the proxy in front of the dev server: progress while a
 * backup runs, status and throttle in human units, errors as one line, help, and
 * `snippet install` from a local index. The interactive display is in
 * hotbackup_interactive.test.ts.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { runMongosh } from '../helpers/mongosh.js';
import { startMongoshTty } from '../helpers/mongosh_tty.js';
import { MONGOSH, tempDir } from '../helpers/paths.js';
import { formatBytes } from '../../src/backup/units.js';
import { startProxy } from '../helpers/proxy.js';
import { MongoClient } from 'mongodb';
import { until } from '../helpers/poll.js';
import { LOAD, LOCAL_INDEX, MANIFEST, PROGRESS_LINE, mongoshEnv, startFixture, streamMongosh, type Fixture } from './support.js';

const exec = promisify(execFile);
const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const js = (value: unknown) => JSON.stringify(value);
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function nonEmptyLines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '');
}

describe('hotbackup snippet in mongosh scripts', () => {
  let fx: Fixture;

  before(async () => {
    fx = await startFixture(24);
    const stats = await fx.client.db('app').command({ dbStats: 1 });
    assert.ok(Number(stats['dataSize']) >= 20 * 1024 * 1024, `database holds ${String(stats['dataSize'])} bytes`);
  });

  after(async () => {
    await fx?.stop();
  });

  it('follows an async backup: start line, progress about every second, summary, complete directory', async () => {
    const dest = path.join(fx.scratch.dir, 'progress');
    // At 2 MiB/s the copy (24 MB of data, and the journal) lasts far longer than three
    // progress lines take, however busy the machine; then full speed, so the suite stays
    // short.
    const run = streamMongosh(
      fx.proxy.uri,
      `${LOAD} const r = hotbackup.start(${js(dest)}, {throttle: '2MB'});
       print('returned ok=' + r.ok + ' files=' + r.files + ' id=' + r.backupId);`,
    );
    const throttled = await until(() => {
      const progress = run.lines.filter((l) => PROGRESS_LINE.test(l.text));
      if (progress.length >= 3) return progress;
      if (run.exited) assert.fail(`mongosh exited after ${progress.length} progress lines:\n${run.lines.map((l) => l.text).join('\n')}`);
      return undefined;
    });
    await fx.throttle(0);
    const { code, stdout, stderr } = await run.done;
    assert.equal(code, 0, stderr);
    assert.ok(!stdout.includes('\r'), 'no in-place updates when not interactive');

    const lines = nonEmptyLines(stdout);
    const started = new RegExp(`^backup (${UUID}) started -> ${escape(dest)} \\(throttle 2\\.0 MiB/s\\)$`).exec(lines[0] ?? '');
    assert.ok(started, lines.join('\n'));
    const backupId = started[1];
    // The Ctrl-C advice comes before following starts (an interrupt may not let code run).
    assert.match(lines[1] ?? '', /^Ctrl-C stops watching, not the backup/);
    assert.match(lines[2] ?? '', /hotbackup\.wait\(\); stop it with hotbackup\.abort\(\)/);

    const progress = lines.filter((line) => PROGRESS_LINE.test(line));
    assert.ok(progress.length >= 2, `progress lines:\n${stdout}`);
    const percents = progress.map((line) => Number(PROGRESS_LINE.exec(line)?.[1]));
    assert.ok(new Set(percents).size >= 2, `percentages move: ${percents.join(', ')}`);
    assert.deepEqual([...percents].sort((a, b) => a - b), percents, 'percentages never go back');
    assert.match(progress[0] ?? '', /ETA \d+(?:m\d\ds|s)?\s+\S+/, 'ETA and the current file');
    // The rate shown follows the throttle: never far above it (the bucket's burst and the
    // rate's 2 s window allow a little), and not far below it.
    assert.ok(throttled.some((l) => /\s(?:1\.[0-9]|2\.[0-7]) MiB\/s\s/.test(l.text)), `rate near 2 MiB/s:\n${throttled.map((l) => l.text).join('\n')}`);
    // "About every second": the snippet sleeps a second between two lines, so they never
    // come faster than that. How much later they come is the machine's business, so no
    // upper bound.
    const span = (throttled.at(-1)?.at ?? 0) - (throttled[0]?.at ?? 0);
    const gap = span / (throttled.length - 1);
    assert.ok(gap >= 800, `mean gap between progress lines: ${gap} ms`);

    const manifest = JSON.parse(fs.readFileSync(path.join(dest, MANIFEST), 'utf8')) as { files: unknown[] };
    const files = manifest.files.length;
    const summary = lines.at(-2) ?? '';
    assert.match(summary, new RegExp(`^backup ok: [\\d.]+ MiB, ${files} files, [\\d.]+ s, strategy backupCursor, destination ${escape(dest)}$`));
    assert.equal(lines.at(-1), `returned ok=true files=${files} id=${backupId}`);
  });

  it('round-trips the throttle in human (binary) units', async () => {
    await fx.throttle(3 * 1024 * 1024);
    const first = await runMongosh(fx.proxy.uri, `${LOAD} hotbackup.throttle(); hotbackup.throttle('50MB');`);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(nonEmptyLines(first.stdout), ['backup throttle: 3.0 MiB/s', 'backup throttle set to 50.0 MiB/s']);
    assert.equal(Number((await fx.status())['throttleBytesPerSec']), 52_428_800);

    const second = await runMongosh(
      fx.proxy.uri,
      `${LOAD} for (const v of [52428800, '1.5 GiB', '512k', 1000, 0]) { hotbackup.throttle(v); hotbackup.throttle(); }`,
    );
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(nonEmptyLines(second.stdout), [
      'backup throttle set to 50.0 MiB/s',
      'backup throttle: 50.0 MiB/s',
      'backup throttle set to 1.5 GiB/s',
      'backup throttle: 1.5 GiB/s',
      'backup throttle set to 512.0 KiB/s',
      'backup throttle: 512.0 KiB/s',
      'backup throttle set to 1000 B/s',
      'backup throttle: 1000 B/s',
      'backup throttle set to unlimited',
      'backup throttle: unlimited',
    ]);
    assert.equal(Number((await fx.status())['throttleBytesPerSec']), 0);
  });

  it('shows a running backup in status(), refuses a second start, and wait() follows it to the end', async () => {
    const dest = path.join(fx.scratch.dir, 'status');
    // At 1 MiB/s the copy outlasts the script's status() calls by far; the script waits
    // for the copy to be under way (bytes moved, a current file, a rate), not for a time.
    const run = await runMongosh(
      fx.proxy.uri,
      `${LOAD}
       const r = hotbackup.start(${js(dest)}, {throttle: '1MB', wait: false});
       print('id=' + r.backupId + ' ok=' + r.ok);
       for (let s = hotbackup.status({raw: true}); s.inProgress && !(s.phase === 'copying' && s.bytesCopied >= 1024 && s.currentFiles.length > 0 && s.etaSecs != null); s = hotbackup.status({raw: true})) sleep(50);
       hotbackup.status();
       const raw = hotbackup.status({raw: true});
       print('raw inProgress=' + raw.inProgress + ' throttle=' + raw.throttleBytesPerSec + ' id=' + raw.backupId);
       try { hotbackup.start(${js(path.join(fx.scratch.dir, 'second'))}); } catch (e) { print('second start: ' + e.message + ' / ' + e.code + ' ' + e.codeName); }
       hotbackup.throttle(0);
       const last = hotbackup.wait();
       print('wait returned ok=' + last.ok + ' id=' + last.backupId);
       hotbackup.status();
       hotbackup.wait();`,
    );
    assert.equal(run.code, 0, run.stderr);
    const out = run.stdout;
    const id = new RegExp(`^id=(${UUID}) ok=1$`, 'm').exec(out)?.[1];
    assert.ok(id, out);
    assert.match(out, new RegExp(`^backup ${id} started -> ${escape(dest)} \\(throttle 1\\.0 MiB/s\\)$`, 'm'));
    assert.match(out, /^hotbackup\.wait\(\) watches it, hotbackup\.status\(\) shows it\.$/m);
    // status() while it runs
    assert.match(out, new RegExp(`^backup in progress: ${id}$`, 'm'));
    assert.match(out, new RegExp(`^  destination  ${escape(dest)}$`, 'm'));
    assert.match(out, /^ {2}strategy {5}backupCursor, phase copying$/m);
    assert.match(out, /^ {2}started {6}\d{4}-\d\d-\d\dT[\d:.]+Z \(\d+s ago\)$/m);
    assert.match(out, /^ {2}progress {5}\d{1,3}\.\d%, [\d.]+ (?:KiB|MiB) of [\d.]+ MiB, \d+ of \d+ files$/m);
    assert.match(out, /^ {2}rate {9}[\d.]+ (?:B|KiB|MiB)\/s, ETA (?:\d+m)?\d+s$/m);
    assert.match(out, /^ {2}copying {6}\S/m);
    assert.match(out, /^ {2}throttle {5}1\.0 MiB\/s$/m);
    assert.match(out, new RegExp(`^raw inProgress=true throttle=1048576 id=${id}$`, 'm'));
    assert.match(out, /^second start: Cannot initiate backup\. There already is a backup in progress\. \(code 117\) \/ 117 ConflictingOperationInProgress$/m);
    assert.match(out, /^backup throttle set to unlimited \(the running backup follows it now\)$/m);
    assert.match(out, new RegExp(`^watching backup ${id} -> ${escape(dest)}$`, 'm'));
    assert.match(out, new RegExp(`^backup ok: [\\d.]+ MiB, \\d+ files, [\\d.]+ s, strategy backupCursor, destination ${escape(dest)}$`, 'm'));
    assert.match(out, new RegExp(`^wait returned ok=true id=${id}$`, 'm'));
    // status() and wait() once it is over
    assert.match(out, /^no backup in progress\n {2}throttle {5}unlimited\n {2}last backup {2}ok: [\d.]+ MiB, \d+ files, [\d.]+ s, strategy backupCursor, destination /m);
    assert.match(out, new RegExp(`^no backup in progress\\nlast backup ok: .*destination ${escape(dest)}$`, 'm'));
    assert.ok(fs.existsSync(path.join(dest, MANIFEST)));
  });

  it('starts an incremental backup, and shows what it took from the base in its progress, status() and summary', async () => {
    const base = path.join(fx.scratch.dir, 'incremental-base');
    const dest = path.join(fx.scratch.dir, 'incremental');
    // A proxy of its own. Files taken from the base go first (copy_pool.ts), so the
    // progress shows the reuse while the (100 MB) journal files still crawl at 2 MiB/s,
    // however many of them the dev server has made by then; then full speed.
    const proxy = await startProxy(fx.server, ['--state-dir', path.join(fx.scratch.dir, 'state-incremental')]);
    const client = await MongoClient.connect(proxy.uri);
    const admin = client.db('admin');
    try {
      assert.equal((await admin.command({ backupStart: base }))['ok'], 1);
      const run = streamMongosh(
        proxy.uri,
        `${LOAD} const r = hotbackup.start(${js(dest)}, {incrementalBase: ${js(base)}, throttle: '2MB'});
         print('returned ok=' + r.ok + ' filesReused=' + r.filesReused);
         hotbackup.status();`,
      );
      const reusedProgress = /^\s*\d{1,3}\.\d%\s+[\d.]+ (?:B|KiB|MiB|GiB) \+ [\d.]+ (?:KiB|MiB|GiB) reused of [\d.]+ (?:KiB|MiB|GiB), \d+\/\d+ files\s/;
      await until(() => {
        if (run.lines.some((l) => reusedProgress.test(l.text))) return true;
        if (run.exited) assert.fail(`mongosh exited with no progress line showing reuse:\n${run.lines.map((l) => l.text).join('\n')}`);
        return undefined;
      });
      const running = await runMongosh(proxy.uri, `${LOAD} hotbackup.status()`);
      assert.equal(running.code, 0, running.stderr);
      assert.match(running.stdout, /^ {2}progress {5}\d{1,3}\.\d%, [\d.]+ (?:B|KiB|MiB|GiB) \+ [\d.]+ (?:KiB|MiB|GiB) reused of [\d.]+ (?:KiB|MiB|GiB), \d+ of \d+ files$/m);
      await admin.command({ backupThrottle: 0 });
      const { code, stdout, stderr } = await run.done;
      assert.equal(code, 0, stderr);

      // The summary, what start() returned, and status() after, against backupStatus.last.
      const last = (await admin.command({ backupStatus: 1 }))['last'] as Record<string, unknown>;
      const [bytes = 0, files = 0, bytesReused = 0, filesReused = 0] = ['bytes', 'files', 'bytesReused', 'filesReused'].map((k) => Number(last[k]));
      assert.ok(filesReused > 0 && bytesReused > 0, JSON.stringify(last));
      const counts = `${escape(formatBytes(bytes))}, ${files} files \\(\\+ ${escape(formatBytes(bytesReused))}, ${filesReused} files reused\\)`;
      assert.match(stdout, new RegExp(`^backup ok: ${counts}, [\\d.]+ s, strategy backupCursor, destination ${escape(dest)}$`, 'm'));
      assert.match(stdout, new RegExp(`^returned ok=true filesReused=${filesReused}$`, 'm'));
      assert.match(stdout, new RegExp(`^ {2}last backup {2}ok: ${counts}, `, 'm'));
    } finally {
      await client.close();
      await proxy.stop();
    }
  });

  it("prints server errors as one line with the code, never a stack trace", async () => {
    const empty = await runMongosh(fx.proxy.uri, `${LOAD} hotbackup.start('')`);
    assert.equal(empty.code, 1, 'a failed command fails the script');
    const shown = nonEmptyLines(empty.stdout + empty.stderr);
    assert.deepEqual(shown, ["HotbackupError: invalid destination directory: '' (code 2)"]);

    const more = await runMongosh(
      fx.proxy.uri,
      `${LOAD}
       const tries = [() => hotbackup.start('relative/dir'), () => hotbackup.throttle('fast'), () => hotbackup.throttle(-1),
                      () => hotbackup.start(), () => hotbackup.start('/tmp/x', {throttle: 'lots'})];
       for (const t of tries) { try { t(); print('no error'); } catch (e) { print(e.name + ': ' + e.message); } }`,
    );
    assert.equal(more.code, 0, more.stderr);
    assert.deepEqual(nonEmptyLines(more.stdout), [
      'HotbackupError: Destination path must be absolute (code 2)',
      'HotbackupError: backupThrottle argument must be a number (code 2)',
      'HotbackupError: backupThrottle argument cannot be negative (code 2)',
      'HotbackupError: hotbackup.start(dir): dir must be a string, an absolute path or an s3://bucket/prefix URL',
      'HotbackupError: backupThrottle argument must be a number (code 2)',
    ]);
    assert.equal((await fx.status())['inProgress'], false, 'a bad throttle option starts nothing');

    // Straight to mongod (the dev server), not through the proxy: say what is wrong.
    const direct = await runMongosh(fx.server.uri, `${LOAD} hotbackup.status()`);
    assert.equal(direct.code, 1);
    const line = nonEmptyLines(direct.stdout + direct.stderr);
    assert.equal(line.length, 1, line.join('\n'));
    assert.match(line[0] ?? '', /^HotbackupError: no such command: 'backupStatus' \(code 59\); is mongosh connected to `hotbackup serve`/);
    for (const text of [empty.stdout, empty.stderr, direct.stdout, direct.stderr]) {
      assert.doesNotMatch(text, /^\s+at /m, 'no stack trace');
    }
  });

  it('stops the running backup with hotbackup.abort(), and says so when none runs', async () => {
    const dest = path.join(fx.scratch.dir, 'aborted');
    const run = await runMongosh(
      fx.proxy.uri,
      `${LOAD} hotbackup.start(${js(dest)}, {throttle: '1MB', wait: false});
       while (hotbackup.status({raw: true}).phase !== 'copying') sleep(50);
       const r = hotbackup.abort();
       print('returned state=' + r.state + ' ok=' + r.ok + ' code=' + r.code);
       try { hotbackup.abort(); } catch (e) { print(e.name + ': ' + e.message); }
       hotbackup.throttle(0);`,
    );
    assert.equal(run.code, 0, run.stderr);
    const out = run.stdout;
    assert.match(
      out,
      new RegExp(`^backup ABORTED: operation was interrupted: backup ${UUID} was aborted by \\{backupAbort: 1\\} from 127\\.0\\.0\\.1:\\d+; ${escape(dest)} has no manifest, .* \\(code 11601 Interrupted\\); .*destination ${escape(dest)}$`, 'm'),
    );
    assert.match(out, /^returned state=aborted ok=false code=11601$/m);
    assert.match(out, /^HotbackupError: backupAbort called when no backup is running \(code 20\)$/m);
    assert.equal(fs.existsSync(path.join(dest, MANIFEST)), false);
    assert.equal((await fx.status())['inProgress'], false);
  });

  it('has help: hotbackup.help() and a .help() on every helper', async () => {
    const run = await runMongosh(
      fx.proxy.uri,
      `${LOAD} hotbackup.help();
       for (const name of ['start', 'wait', 'status', 'throttle', 'abort', 'help']) { print('== ' + name); hotbackup[name].help(); }`,
    );
    assert.equal(run.code, 0, run.stderr);
    const [overview, ...sections] = run.stdout.split(/^== /m);
    for (const signature of ['hotbackup.start(dir, {throttle, wait})', 'hotbackup.wait()', 'hotbackup.status({raw})', 'hotbackup.throttle(rate?)', 'hotbackup.abort()', 'hotbackup.help()']) {
      assert.ok(overview?.includes(signature), `overview lists ${signature}`);
    }
    assert.equal(sections.length, 6);
    for (const section of sections) {
      const [name, firstLine, ...rest] = section.split('\n');
      if (name === 'help') assert.match(firstLine ?? '', /^hotbackup: /);
      else assert.ok(firstLine?.startsWith(`hotbackup.${name}(`), section);
      if (name !== 'help') assert.ok(rest.join('\n').trim().length > 40, `hotbackup.${name}.help() explains it`);
    }
  });

  it("keeps the README's transcripts true to what the snippet prints", async () => {
    const readme = fs.readFileSync(path.join(path.dirname(LOCAL_INDEX), 'README.md'), 'utf8');
    // Every helper is shown being used, followed by its output.
    for (const call of ['hotbackup.start(', 'hotbackup.wait()', 'hotbackup.status()', 'hotbackup.status({raw: true})', 'hotbackup.throttle(', 'hotbackup.abort()', 'hotbackup.help()']) {
      assert.ok(readme.includes(call), `README shows ${call}`);
    }
    // The help texts are pasted verbatim.
    const help = await runMongosh(fx.proxy.uri, `${LOAD} hotbackup.help(); hotbackup.throttle.help();`);
    assert.equal(help.code, 0, help.stderr);
    const [overview, throttleHelp] = help.stdout.trimEnd().split(/\n(?=hotbackup\.throttle\(rate\?\)\n)/);
    assert.ok(readme.includes(`test> hotbackup.help()\n${overview}\n`), 'README pastes hotbackup.help()');
    assert.ok(readme.includes(`test> hotbackup.throttle.help()\n${throttleHelp}\n`), 'README pastes hotbackup.throttle.help()');
    // Progress and summary lines have the shapes the snippet prints today.
    const progress = readme.split('\n').filter((line) => /^\s*\d{1,3}\.\d%/.test(line));
    assert.ok(progress.length >= 10);
    for (const line of progress) assert.match(line, PROGRESS_LINE);
    const summaries = readme.split('\n').filter((line) => line.startsWith('backup ok: '));
    assert.ok(summaries.length >= 3);
    for (const line of summaries) assert.match(line, /^backup ok: [\d.]+ MiB, \d+ files(?: \(\+ [\d.]+ (?:KiB|MiB|GiB), \d+ files reused\))?, [\d.]+ s, strategy (?:backupCursor|fsyncLock), destination \/\S+$/);
    assert.ok(summaries.some((line) => line.includes(' files reused), ')), 'README shows an incremental backup\'s summary');
  });

  it('installs with `snippet install hotbackup` from a local index, no public registry', async (t) => {
    try {
      execFileSync('npm', ['--version'], { stdio: 'pipe' });
    } catch {
      t.skip('npm is not on PATH (mongosh would download it)');
      return;
    }
    const home = tempDir('snippet-install');
    // stdin answers the "load them now? [Y/n]" question of `snippet install`.
    const mongosh = (args: string[]) => {
      const running = exec(MONGOSH, args, { env: mongoshEnv(home.dir), encoding: 'utf8', timeout: 30_000 });
      running.child.stdin?.end('n\n');
      return running;
    };
    try {
      const index = await mongosh(['--nodb', '--quiet', LOCAL_INDEX]);
      assert.match(index.stdout, /Run: snippet install hotbackup/);
      const search = await mongosh(['--nodb', '--quiet', '--eval', "snippet('search')"]);
      assert.match(search.stdout, /'hotbackup'\s*│\s*'0\.1\.0'/);
      const install = await mongosh(['--nodb', '--quiet', '--eval', "snippet('install', 'hotbackup')"]);
      assert.match(install.stdout, /Finished installing snippets: hotbackup/);
      const used = await mongosh([fx.proxy.uri, '--quiet', '--eval', "snippet('load-all'); hotbackup.throttle()"]);
      assert.equal(used.stdout.trim(), 'backup throttle: unlimited');
      // An interactive shell loads installed snippets by itself.
      const tty = await startMongoshTty(fx.proxy.uri, { home: home.dir });
      try {
        await tty.send('hotbackup.throttle()');
        await tty.waitFor((rows) => (rows.includes('backup throttle: unlimited') ? true : undefined), 'the autoloaded snippet');
      } finally {
        await tty.close();
      }
    } finally {
      home.remove();
    }
  });
});

describe('hotbackup snippet with a mongod that has no $backupCursor', () => {
  let fx: Fixture;

  before(async () => {
    fx = await startFixture(1, ['--no-backup-cursor']);
  });

  after(async () => {
    await fx?.stop();
  });

  it('reports a failed backup in its summary line, and allowWriteBlocking gets a copy under fsyncLock', async () => {
    const refused = path.join(fx.scratch.dir, 'refused');
    const blocking = path.join(fx.scratch.dir, 'blocking');
    const run = await runMongosh(
      fx.proxy.uri,
      `${LOAD}
       const r1 = hotbackup.start(${js(refused)});
       print('r1 ok=' + r1.ok + ' code=' + r1.code);
       const r2 = hotbackup.start(${js(blocking)}, {allowWriteBlocking: true});
       print('r2 ok=' + r2.ok + ' strategy=' + r2.strategy);`,
    );
    assert.equal(run.code, 0, run.stderr);
    const lines = nonEmptyLines(run.stdout);
    const failed = lines.find((line) => line.startsWith('backup FAILED: '));
    assert.match(
      failed ?? '',
      new RegExp(`^backup FAILED: This mongod has no \\$backupCursor .* \\(code 268 CannotBackup\\); 0 B, 0 files, [\\d.]+ s, strategy none, destination ${escape(refused)}$`),
      run.stdout,
    );
    assert.ok(lines.includes('hotbackup.start(dir, {allowWriteBlocking: true}) allows it: writes then wait for the whole copy.'));
    assert.ok(lines.includes('r1 ok=false code=268'));
    assert.match(run.stdout, new RegExp(`^backup ok: [\\d.]+ MiB, \\d+ files, [\\d.]+ s, strategy fsyncLock, destination ${escape(blocking)}$`, 'm'));
    assert.ok(lines.includes('r2 ok=true strategy=fsyncLock'));
    assert.ok(fs.existsSync(path.join(blocking, MANIFEST)));
    assert.ok(!fs.existsSync(path.join(refused, MANIFEST)));
  });
});
