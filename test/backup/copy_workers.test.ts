/**
 * What moving the copy onto worker threads must give: the bytes move while the
 * proxy's event loop is busy, the throttle still reaches every worker, holes stay
 * holes, and a failing worker still leaves no handle or thread behind.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { copyFiles } from '../../src/backup/copier.js';
import { ProgressCounters } from '../../src/backup/progress.js';
import { TokenBucket } from '../../src/backup/throttle.js';
import type { SourceFile } from '../../src/backup/copy_types.js';
import { xxh3Hex } from '../helpers/checksum.js';
import { copyFixture, type CopyFixture } from '../helpers/copy_fixture.js';
import { until } from '../helpers/poll.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** A thread's I/O scheduling class as util-linux's ionice names it: 'idle', 'best-effort' or 'none'. */
const ioClassOf = (tid: number): string => {
  try {
    return execFileSync('ionice', ['-p', String(tid)], { encoding: 'utf8' }).split(':')[0]?.trim() ?? '';
  } catch {
    return 'gone'; // the thread ended meanwhile
  }
};
const openFds = (): number => fs.readdirSync('/proc/self/fd').length;

/** Blocks this thread for `ms` without spinning the CPU. */
const blockFor = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

describe('copy workers', () => {
  let fixture: CopyFixture;
  const freshDest = (): string => fixture.freshDest();
  const source = (name: string, data: Buffer): SourceFile => ({ path: fixture.writeSource(name, data), relativePath: name, size: data.length });

  before(() => (fixture = copyFixture('copy-workers')));
  after(() => fixture.remove());

  it('copies while the event loop that called it is blocked', async () => {
    // On the event loop, at most the one chunk already handed to the thread pool could
    // land while this thread is blocked; the other 31 need the loop. Workers don't.
    const data = randomBytes(8 * MiB);
    const file = source('blocked/a', data);
    const dest = freshDest();
    const counters = new ProgressCounters();
    const copying = copyFiles([file], dest, { limiter: new TokenBucket(0), chunkSize: 256 * KiB, progress: counters });
    // Starting needs the loop (directories, the worker's first file); the bytes must not.
    await until(() => counters.bytesCopied > 0);
    const target = path.join(dest, file.relativePath);
    const size = (): number => (fs.existsSync(target) ? fs.statSync(target).size : 0);
    // A liveness deadline, not a speed bound: a copy on this thread never gets there.
    const deadline = performance.now() + 120_000;
    while (size() < data.length && performance.now() < deadline) blockFor(5);
    assert.equal(size(), data.length, 'the whole file was written while this thread was blocked');
    const { copied } = await copying;
    assert.equal(copied[0]?.checksum, xxh3Hex(data));
  });

  it('sees a throttle set on a running unthrottled copy before its next chunks', async () => {
    // 1 TiB of hole: read and hashed, never written, so the copy runs for minutes and
    // costs no disk. Only a worker that missed the new rate could get far into it.
    const file = path.join(fixture.src, 'huge-hole');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const size = 1024 * 1024 * MiB;
    fs.closeSync(fs.openSync(file, 'w'));
    fs.truncateSync(file, size);
    const limiter = new TokenBucket(0);
    const counters = new ProgressCounters();
    const files: SourceFile[] = [{ path: file, relativePath: 'huge', size }];
    counters.begin(files);
    const progress = {
      ...counters,
      fileStarted: (f: SourceFile) => counters.fileStarted(f),
      fileFinished: (f: SourceFile) => counters.fileFinished(f),
      fileSkipped: () => assert.fail('nothing is skipped'),
      chunkCopied: (f: SourceFile, bytes: number) => {
        // One byte per second, set as the first chunk is reported.
        if (counters.bytesCopied === 0) limiter.setRate(1);
        counters.chunkCopied(f, bytes);
      },
    };
    const controller = new AbortController();
    const fds = openFds();
    const copying = copyFiles(files, freshDest(), { limiter, progress, signal: controller.signal });
    await until(() => limiter.waiting === 1);
    const copiedBeforeWaiting = counters.bytesCopied;
    assert.ok(copiedBeforeWaiting < size / 16, `the worker went on for ${copiedBeforeWaiting} bytes`);
    controller.abort(new Error('enough'));
    await assert.rejects(copying, /enough/);
    assert.equal(openFds(), fds);
  });

  it('sees a throttle lifted from a running copy, and finishes unthrottled', async () => {
    const data = randomBytes(4 * MiB);
    const files = [source('lifted/a', data), source('lifted/b', data)];
    // One byte per second: each worker's first chunk leaves a debt of days.
    const limiter = new TokenBucket(1);
    const counters = new ProgressCounters();
    counters.begin(files);
    const copying = copyFiles(files, freshDest(), { limiter, chunkSize: 64 * KiB, progress: counters, concurrency: files.length });
    await until(() => limiter.waiting === files.length && counters.bytesCopied > 0);
    limiter.setRate(0);
    const { copied } = await copying;
    assert.deepEqual(copied.map((c) => c.checksum), [xxh3Hex(data), xxh3Hex(data)]);
    assert.equal(counters.bytesCopied, 2 * data.length);
    assert.equal(counters.filesCopied, 2);
  });

  it('runs the copy threads at a lower priority than the thread that forwards', async (t) => {
    const data = randomBytes(256 * KiB);
    const files = [source('nice/a', data), source('nice/b', data)];
    /** Nice values of this process's threads, from /proc (field 19 of each task's stat). */
    const niceValues = (): number[] =>
      fs.readdirSync('/proc/self/task').flatMap((tid) => {
        try {
          const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
          return [Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])];
        } catch {
          return []; // the thread ended meanwhile
        }
      });
    const limiter = new TokenBucket(1);
    const controller = new AbortController();
    const copying = copyFiles(files, freshDest(), { limiter, chunkSize: 64 * KiB, signal: controller.signal, threadNiceness: 7, concurrency: files.length, ioClass: 'idle' });
    // Both workers are in the bucket: started, so their priority is set.
    await until(() => limiter.waiting === files.length);
    const base = os.getPriority();
    if (base < 7) assert.equal(niceValues().filter((nice) => nice === 7).length, files.length, 'one thread at nice 7 per worker');
    else t.diagnostic(`this test runs at nice ${base} already: a copy thread never raises its priority, so nothing tells them apart`);
    assert.equal(os.getPriority(), base, 'the process, and so its main thread, keeps its priority');
    // The disk too, when asked: each copy thread's I/O class is idle, the main thread's is not.
    const ioClasses = fs.readdirSync('/proc/self/task').map((tid) => ioClassOf(Number(tid)));
    assert.equal(ioClasses.filter((c) => c === 'idle').length, files.length, `one idle thread per worker, got ${ioClasses.join(', ')}`);
    assert.notEqual(ioClassOf(process.pid), 'idle', 'the main thread keeps its I/O class');
    controller.abort(new Error('enough'));
    await assert.rejects(copying, /enough/);
  });

  it('writes around the page cache by default, byte for byte at any size, and through it when told', async (t) => {
    const fsType = execFileSync('stat', ['-f', '-c', '%T', fixture.src], { encoding: 'utf8' }).trim();
    if (fsType === 'tmpfs') return t.skip('the temp dir is tmpfs: its files live in the page cache whichever way they are written');
    // Sizes around O_DIRECT's 4 KiB blocks: a tail shorter than a block goes through the page cache.
    const sizes = [0, 1, 4095, 4096, 4097, 3 * MiB + 5];
    const datas = sizes.map((size) => randomBytes(size));
    const files = datas.map((data, i) => source(`direct/${i}`, data));
    /** Bytes of `file` in the page cache (util-linux fincore). */
    const cached = (file: string): number => Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], { encoding: 'utf8' }).trim());
    for (const writes of ['direct', 'buffered'] as const) {
      const dest = freshDest();
      const { copied } = await copyFiles(files, dest, { limiter: new TokenBucket(0), concurrency: 2, writes });
      // Before anything reads the copies back into the page cache.
      const large = path.join(dest, `direct/${sizes.length - 1}`);
      if (writes === 'direct') assert.ok(cached(large) <= 4 * KiB, `direct: only the 5-byte tail's page may be cached, got ${cached(large)} bytes`);
      else assert.ok(cached(large) >= 3 * MiB, `buffered: the copy stays in the page cache, got ${cached(large)} bytes`);
      datas.forEach((data, i) => {
        assert.equal(copied[i]?.checksum, xxh3Hex(data));
        assert.ok(fs.readFileSync(path.join(dest, `direct/${i}`)).equals(data), `${writes}: file of ${data.length} bytes copied exactly`);
      });
    }
  });

  it('fails with the error of a limiter that fails, rather than leaving a file out', async () => {
    const data = randomBytes(256 * KiB);
    const files = [source('limiter-fails/a', data), source('limiter-fails/b', data)];
    const broken = new Error('the limiter broke');
    const limiter = { take: () => Promise.reject(broken) };
    await assert.rejects(copyFiles(files, freshDest(), { limiter }), (err) => err === broken);
  });

  it('keeps the holes of a sparse source, and writes the zeros of a dense one', async () => {
    const dir = path.join(fixture.src, 'sparse');
    fs.mkdirSync(dir, { recursive: true });
    // Like a preallocated WiredTiger log that is mostly unwritten: data, a hole, data, a hole to the end.
    const sparsePath = path.join(dir, 'WiredTigerLog.0000000001');
    const head = randomBytes(100 * KiB);
    const middle = randomBytes(10 * KiB);
    const fd = fs.openSync(sparsePath, 'w');
    fs.writeSync(fd, head, 0, head.length, 0);
    fs.writeSync(fd, middle, 0, middle.length, 5 * MiB);
    fs.ftruncateSync(fd, 12 * MiB);
    fs.closeSync(fd);
    const sparseStat = fs.statSync(sparsePath);
    assert.ok(sparseStat.blocks * 512 < sparseStat.size, 'this filesystem keeps holes (the test needs one that does)');
    const dense = Buffer.alloc(4 * MiB);
    const densePath = path.join(dir, 'zeros.wt');
    fs.writeFileSync(densePath, dense);
    const files: SourceFile[] = [
      { path: sparsePath, relativePath: 'journal/WiredTigerLog.0000000001', size: sparseStat.size },
      { path: densePath, relativePath: 'zeros.wt', size: dense.length },
    ];
    const dest = freshDest();
    const { copied } = await copyFiles(files, dest, { limiter: new TokenBucket(0) });

    const sparseCopy = path.join(dest, 'journal/WiredTigerLog.0000000001');
    const original = fs.readFileSync(sparsePath);
    assert.ok(fs.readFileSync(sparseCopy).equals(original), 'same bytes, holes read as zeros');
    assert.equal(copied[0]?.checksum, xxh3Hex(original));
    const copyStat = fs.statSync(sparseCopy);
    assert.equal(copyStat.size, sparseStat.size, 'a hole at the end still counts in the size');
    assert.ok(copyStat.blocks * 512 <= 2 * MiB, `the copy allocates ${copyStat.blocks * 512} bytes, not ${copyStat.size}`);
    const denseCopy = fs.statSync(path.join(dest, 'zeros.wt'));
    assert.ok(denseCopy.blocks * 512 >= dense.length, 'a dense file stays dense: a restore must not need space it did not need before');
  });

  it('stops the other workers when one fails, and leaves no file handle or thread behind', async () => {
    const data = randomBytes(4 * MiB);
    const files: SourceFile[] = [
      source('fail/a', data),
      source('fail/b', data),
      { path: path.join(fixture.src, 'fail', 'missing'), relativePath: 'missing', size: 10 },
    ];
    const fds = openFds();
    // The missing file fails at open, while the big ones wait in the bucket.
    const limiter = new TokenBucket(1);
    // One worker per file: the missing one is opened while the others wait.
    await assert.rejects(copyFiles(files, freshDest(), { limiter, chunkSize: 64 * KiB, concurrency: files.length }), { code: 'ENOENT', syscall: 'open', path: files[2]?.path });
    assert.equal(limiter.waiting, 0, 'no worker still waits on the throttle');
    assert.equal(openFds(), fds, 'every worker closed its files and its thread exited');
  });
});
