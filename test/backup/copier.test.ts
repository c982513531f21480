import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { copyFiles, SourceTooShortError, type Limiter } from '../../src/backup/copier.js';
import { ProgressCounters, type CopyProgress } from '../../src/backup/progress.js';
import { TokenBucket } from '../../src/backup/throttle.js';
import type { SourceFile } from '../../src/backup/copy_types.js';
import { xxh3Hex } from '../helpers/checksum.js';
import { copyFixture, type CopyFixture } from '../helpers/copy_fixture.js';
import { until } from '../helpers/poll.js';

const KiB = 1024;
const MiB = 1024 * KiB;

const openFds = (): number => fs.readdirSync('/proc/self/fd').length;

describe('copyFiles', () => {
  let fixture: CopyFixture;
  let src: string;
  const freshDest = (): string => fixture.freshDest();
  const writeSource = (name: string, data: Buffer): string => fixture.writeSource(name, data);

  before(() => {
    fixture = copyFixture('copier');
    src = fixture.src;
  });
  after(() => fixture.remove());

  it('copies each file exactly up to its listed size, into subdirectories, with their checksums', async () => {
    // A journal file still growing: 3 MiB + 12345 bytes on disk, listed at 2 MiB + 7.
    const growing = randomBytes(3 * MiB + 12345);
    const table = randomBytes(200 * KiB);
    const files: SourceFile[] = [
      { path: writeSource('WiredTiger.wt', table), relativePath: 'WiredTiger.wt', size: table.length },
      { path: writeSource('journal/WiredTigerLog.0000000001', growing), relativePath: 'journal/WiredTigerLog.0000000001', size: 2 * MiB + 7 },
      { path: writeSource('empty', Buffer.alloc(0)), relativePath: 'a/b/c/empty.wt', size: 0 },
    ];
    const dest = freshDest();
    const counters = new ProgressCounters();
    counters.begin(files);
    const { copied, skipped } = await copyFiles(files, dest, { limiter: new TokenBucket(0), progress: counters });
    assert.deepEqual(skipped, []);

    const prefix = growing.subarray(0, 2 * MiB + 7);
    assert.deepEqual(copied, [
      { relativePath: 'WiredTiger.wt', size: table.length, checksum: xxh3Hex(table) },
      { relativePath: 'journal/WiredTigerLog.0000000001', size: prefix.length, checksum: xxh3Hex(prefix) },
      { relativePath: 'a/b/c/empty.wt', size: 0, checksum: xxh3Hex(Buffer.alloc(0)) },
    ]);
    assert.deepEqual(fs.readFileSync(path.join(dest, 'journal/WiredTigerLog.0000000001')), prefix);
    assert.deepEqual(fs.readFileSync(path.join(dest, 'WiredTiger.wt')), table);
    assert.equal(fs.statSync(path.join(dest, 'a/b/c/empty.wt')).size, 0);
    assert.equal(fs.statSync(path.join(dest, 'WiredTiger.wt')).mode & 0o777, 0o600);
    assert.equal(counters.bytesCopied, table.length + prefix.length);
    assert.equal(counters.filesCopied, 3);
    assert.equal(counters.percent, 100);
    assert.deepEqual(counters.currentFiles, []);
  });

  it('gives the same result with 1 and 4 workers, starting with the largest file', async () => {
    const sizes = [0, 1, 4095, 64 * KiB, 64 * KiB + 1, 700 * KiB, 3 * MiB - 5, 1234567, 10, MiB];
    const files: SourceFile[] = sizes.map((size, i) => ({
      path: writeSource(`many/f${i}`, randomBytes(size)),
      relativePath: `${i % 3 === 0 ? 'journal/' : ''}collection-${i}.wt`,
      size,
    }));
    const started: string[] = [];
    const progress: CopyProgress = { fileStarted: (f) => started.push(f.relativePath), chunkCopied: () => {}, fileFinished: () => {}, fileSkipped: () => {} };
    const destA = freshDest();
    const destB = freshDest();
    const { copied: one } = await copyFiles(files, destA, { limiter: new TokenBucket(0), concurrency: 1, chunkSize: 64 * KiB, progress });
    const { copied: four } = await copyFiles(files, destB, { limiter: new TokenBucket(0), concurrency: 4, chunkSize: 64 * KiB });
    assert.deepEqual(four, one);
    assert.deepEqual(one.map((f) => f.relativePath), files.map((f) => f.relativePath));
    for (const [i, f] of files.entries()) {
      assert.equal(one[i]?.checksum, xxh3Hex(fs.readFileSync(f.path)));
      assert.deepEqual(fs.readFileSync(path.join(destA, f.relativePath)), fs.readFileSync(path.join(destB, f.relativePath)));
    }
    const bySize = [...files].sort((a, b) => b.size - a.size).map((f) => f.relativePath);
    assert.deepEqual(started, bySize);
  });

  it('asks the limiter for each chunk before reading it, and waits for its answer', async () => {
    const files: SourceFile[] = [
      { path: writeSource('limited/big', randomBytes(MiB + 5)), relativePath: 'big', size: MiB + 5 },
      { path: writeSource('limited/small', randomBytes(3)), relativePath: 'small', size: 3 },
      { path: writeSource('limited/empty', Buffer.alloc(0)), relativePath: 'empty', size: 0 },
    ];
    const held: Array<{ bytes: number; grant: () => void }> = [];
    const limiter: Limiter = {
      take: (bytes, signal) => {
        assert.ok(signal instanceof AbortSignal, 'the copier passes its stop signal');
        return new Promise((resolve) => held.push({ bytes, grant: resolve }));
      },
    };
    let copied = 0;
    const progress: CopyProgress = { fileStarted: () => {}, chunkCopied: (_, n) => (copied += n), fileFinished: () => {}, fileSkipped: () => {} };
    const copying = copyFiles(files, freshDest(), { limiter, concurrency: 1, progress });
    const nextRequest = (count: number) => until(() => (held.length === count ? (held[count - 1] as (typeof held)[number]) : undefined));

    const first = await nextRequest(1);
    assert.equal(first.bytes, MiB);
    assert.equal(copied, 0);
    first.grant();
    const second = await nextRequest(2);
    assert.equal(copied, MiB);
    assert.equal(second.bytes, 5);
    second.grant();
    (await nextRequest(3)).grant();
    const { copied: result } = await copying;
    assert.equal(result.length, 3);
    // The empty file needs no read, so no request.
    assert.deepEqual(held.map((h) => h.bytes), [MiB, 5, 3]);
    assert.equal(copied, MiB + 8);
  });

  it('never copies faster than the throttle allows (32 MiB at 16 MiB/s)', async (t) => {
    const rate = 16 * MiB;
    // The bucket's default: 100 ms worth. It starts empty, so this covers what it saved
    // between its construction and `started`; 1 MiB chunks fit in it, so it never runs
    // into debt, which would let one more chunk through early.
    const capacity = rate / 10;
    /** Rounding in the bucket and the clock: far below one chunk. */
    const slackMs = 1;
    const data = randomBytes(8 * MiB);
    const files: SourceFile[] = [0, 1, 2, 3].map((i) => ({ path: writeSource(`timed/${i}`, data), relativePath: `t${i}`, size: data.length }));
    const total = files.length * data.length;
    const chunks: Array<{ at: number; bytes: number }> = [];
    let copied = 0;
    const progress: CopyProgress = {
      fileStarted: () => {},
      // Stamped after the chunk was granted, read and written: never earlier than its grant.
      chunkCopied: (_, n) => chunks.push({ at: performance.now(), bytes: (copied += n) }),
      fileFinished: () => {},
      fileSkipped: () => {},
    };
    const limiter = new TokenBucket(rate);
    const started = performance.now();
    await copyFiles(files, freshDest(), { limiter, progress });
    const seconds = (performance.now() - started) / 1000;
    t.diagnostic(`copied and fsynced ${total / MiB} MiB in ${seconds.toFixed(3)} s at ${rate / MiB} MiB/s`);

    assert.equal(copied, total);
    for (const { at, bytes } of chunks) {
      const allowed = capacity + (rate * (at - started + slackMs)) / 1000;
      assert.ok(bytes <= allowed, `${bytes} bytes copied ${(at - started).toFixed(1)} ms in; the throttle allows ${Math.floor(allowed)}`);
    }
    // Not far too slow either; busy machines get a wide margin.
    assert.ok(seconds < (5 * total) / rate, `took ${seconds.toFixed(3)} s`);
  });

  it('fails on a source shorter than listed, naming it, with every handle closed', async () => {
    const good = writeSource('short/good', randomBytes(4 * MiB));
    const short = writeSource('short/short', randomBytes(1000));
    const files: SourceFile[] = [
      { path: good, relativePath: 'good', size: 4 * MiB },
      { path: short, relativePath: 'short', size: 5000 },
    ];
    const fds = openFds();
    await assert.rejects(copyFiles(files, freshDest(), { limiter: new TokenBucket(64 * MiB), concurrency: 2, chunkSize: 256 * KiB }), (err) => {
      assert.ok(err instanceof SourceTooShortError);
      assert.equal(err.message, `source ${short} is shorter than its listed size 5000`);
      assert.equal(err.actualSize, 1000);
      return true;
    });
    assert.equal(openFds(), fds);
  });

  it('skips an optional file that vanished or shrank, removing its partial copy and its progress', async () => {
    const good = randomBytes(300 * KiB);
    const shrunk = writeSource('optional/shrunk.log', randomBytes(1000));
    const files: SourceFile[] = [
      { path: writeSource('optional/good.wt', good), relativePath: 'good.wt', size: good.length },
      { path: shrunk, relativePath: 'logs/shrunk.log', size: 5000, optional: true },
      { path: path.join(src, 'optional/gone'), relativePath: 'gone', size: 10, optional: true },
    ];
    const dest = freshDest();
    const counters = new ProgressCounters();
    counters.begin(files);
    const fds = openFds();
    const result = await copyFiles(files, dest, { limiter: new TokenBucket(0), progress: counters });
    assert.deepEqual(result.copied, [{ relativePath: 'good.wt', size: good.length, checksum: xxh3Hex(good) }]);
    assert.deepEqual(result.skipped, [
      { relativePath: 'logs/shrunk.log', path: shrunk, reason: 'shrank', detail: 'ended after 1000 bytes while being copied (listed at 5000)' },
      { relativePath: 'gone', path: path.join(src, 'optional/gone'), reason: 'vanished', detail: 'vanished before it could be copied (ENOENT)' },
    ]);
    assert.deepEqual(fs.readdirSync(path.join(dest, 'logs')), [], 'the partial copy is removed');
    assert.equal(fs.existsSync(path.join(dest, 'gone')), false);
    assert.deepEqual(
      [counters.bytesCopied, counters.bytesTotal, counters.filesCopied, counters.filesTotal, counters.percent],
      [good.length, good.length, 1, 1, 100],
    );
    assert.deepEqual(counters.currentFiles, []);
    assert.equal(openFds(), fds);
  });

  it('skips an optional file it may not read, and still fails on a required one', async () => {
    const good = randomBytes(64 * KiB);
    const privateLog = writeSource('unreadable/mongod.log', randomBytes(1000));
    const privateTable = writeSource('unreadable/collection-9.wt', randomBytes(1000));
    fs.chmodSync(privateLog, 0o000);
    fs.chmodSync(privateTable, 0o000);
    const files = (table: boolean): SourceFile[] => [
      { path: writeSource(`unreadable/good-${table}.wt`, good), relativePath: 'good.wt', size: good.length },
      table
        ? { path: privateTable, relativePath: 'collection-9.wt', size: 1000 }
        : { path: privateLog, relativePath: 'mongod.log', size: 1000, optional: true },
    ];
    // A sidecar running as another user than mongod. Root reads anything, so a root test
    // runs the copy without the capabilities that let it bypass file modes.
    const copyAsOtherUser = async (list: SourceFile[]): Promise<{ skipped?: unknown; code?: string }> => {
      const script = [
        `import { copyFiles } from ${JSON.stringify(new URL('../../src/backup/copier.js', import.meta.url).href)};`,
        `import { TokenBucket } from ${JSON.stringify(new URL('../../src/backup/throttle.js', import.meta.url).href)};`,
        `copyFiles(${JSON.stringify(list)}, ${JSON.stringify(freshDest())}, { limiter: new TokenBucket(0) })`,
        '  .then((r) => console.log(JSON.stringify({ skipped: r.skipped })), (e) => console.log(JSON.stringify({ code: e.code })));',
      ].join('\n');
      const node = [process.execPath, '--input-type=module', '-e', script];
      const argv = process.getuid?.() === 0 ? ['setpriv', '--bounding-set=-dac_override,-dac_read_search', ...node] : node;
      const { execFileSync } = await import('node:child_process');
      return JSON.parse(execFileSync(argv[0] as string, argv.slice(1), { encoding: 'utf8' })) as { skipped?: unknown; code?: string };
    };
    assert.deepEqual(await copyAsOtherUser(files(false)), {
      skipped: [{ relativePath: 'mongod.log', path: privateLog, reason: 'unreadable', detail: 'could not be read by the proxy (EACCES)' }],
    });
    assert.deepEqual(await copyAsOtherUser(files(true)), { code: 'EACCES' });
  });

  it('still fails on a required file that vanished', async () => {
    const files: SourceFile[] = [{ path: path.join(src, 'required-gone'), relativePath: 'x.wt', size: 1 }];
    await assert.rejects(copyFiles(files, freshDest(), { limiter: new TokenBucket(0) }), { code: 'ENOENT', syscall: 'open' });
  });

  it('never overwrites: an existing destination file fails with EEXIST', async () => {
    const dest = freshDest();
    fs.writeFileSync(path.join(dest, 'taken.wt'), 'precious');
    const file: SourceFile = { path: writeSource('exists', randomBytes(100)), relativePath: 'taken.wt', size: 100 };
    const fds = openFds();
    await assert.rejects(copyFiles([file], dest, { limiter: new TokenBucket(0) }), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'EEXIST');
      assert.equal(typeof err.errno, 'number');
      assert.equal(err.syscall, 'open');
      assert.equal(err.path, path.join(dest, 'taken.wt'));
      return true;
    });
    assert.equal(fs.readFileSync(path.join(dest, 'taken.wt'), 'utf8'), 'precious');
    assert.equal(openFds(), fds);
  });

  it('refuses to write through a symbolic link found where it makes a directory, and writes nothing through it', async () => {
    const dest = freshDest();
    const outside = path.join(path.dirname(dest), `outside-of-${path.basename(dest)}`);
    fs.mkdirSync(outside);
    fs.symlinkSync(outside, path.join(dest, 'journal'));
    const file: SourceFile = { path: writeSource('linked', randomBytes(100)), relativePath: 'journal/WiredTigerLog.0000000001', size: 100 };
    await assert.rejects(copyFiles([file], dest, { limiter: new TokenBucket(0) }), /journal: it is a symbolic link/);
    assert.deepEqual(fs.readdirSync(outside), []);
  });

  it("keeps Node's error fields for a missing source", async () => {
    const missing = path.join(src, 'no-such-file');
    await assert.rejects(copyFiles([{ path: missing, relativePath: 'x', size: 1 }], freshDest(), { limiter: new TokenBucket(0) }), {
      code: 'ENOENT',
      syscall: 'open',
      path: missing,
    });
  });

  it('stops every worker on abort, releasing those waiting on the throttle, and rejects with the reason', async () => {
    const chunkSize = 256 * KiB;
    const data = randomBytes(4 * MiB);
    const files: SourceFile[] = [0, 1, 2].map((i) => ({ path: writeSource(`abort/${i}`, data), relativePath: `a${i}`, size: data.length }));
    const controller = new AbortController();
    const reason = new Error('operation was interrupted');
    const fds = openFds();
    // One byte per second: the first chunk goes through once the bucket (0.1 byte) is
    // full, and its debt holds every later one for three days.
    const limiter = new TokenBucket(1);
    let copied = 0;
    const progress: CopyProgress = { fileStarted: () => {}, chunkCopied: (_, n) => (copied += n), fileFinished: () => {}, fileSkipped: () => {} };
    // One worker per file, so that every one of them is waiting when the abort comes.
    const copying = copyFiles(files, freshDest(), { limiter, signal: controller.signal, chunkSize, progress, concurrency: files.length });
    await until(() => (copied > 0 && limiter.waiting === files.length ? true : undefined));
    controller.abort(reason);
    await assert.rejects(copying, (err) => err === reason);
    assert.equal(copied, chunkSize);
    assert.equal(limiter.waiting, 0);
    assert.equal(openFds(), fds);
    await assert.rejects(copyFiles(files, freshDest(), { limiter: new TokenBucket(0), signal: AbortSignal.abort(reason) }), (err) => err === reason);
  });

  it('sees an abort that comes while it creates the destination directories', async () => {
    const data = randomBytes(64 * KiB);
    const files: SourceFile[] = [{ path: writeSource('abort-early/0', data), relativePath: 'sub/dir/a0', size: data.length }];
    const controller = new AbortController();
    const reason = new Error('closing');
    let copied = 0;
    const progress: CopyProgress = { fileStarted: () => {}, chunkCopied: (_, n) => (copied += n), fileFinished: () => {}, fileSkipped: () => {} };
    const copying = copyFiles(files, freshDest(), { limiter: new TokenBucket(0), signal: controller.signal, progress });
    // copyFiles is now awaiting its mkdirs: the abort lands before any worker starts.
    controller.abort(reason);
    await assert.rejects(copying, (err) => err === reason);
    assert.equal(copied, 0, 'nothing copied after the abort');
  });

  it('refuses paths outside the destination before writing anything', async () => {
    const file = writeSource('refuse', Buffer.from('x'));
    for (const relativePath of ['/etc/passwd', '../escape', 'a/../../escape', 'journal/..', '', 'dir/', '.']) {
      const dest = freshDest();
      await assert.rejects(copyFiles([{ path: file, relativePath, size: 1 }], dest, { limiter: new TokenBucket(0) }), /refusing to copy/);
      assert.deepEqual(fs.readdirSync(dest), []);
    }
    const twice: SourceFile[] = [
      { path: file, relativePath: 'same', size: 1 },
      { path: file, relativePath: './same', size: 1 },
    ];
    await assert.rejects(copyFiles(twice, freshDest(), { limiter: new TokenBucket(0) }), /listed twice/);
  });
});
