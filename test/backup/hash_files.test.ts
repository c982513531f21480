/**
 * The copy threads' hash-only mode, which verify runs: the bytes are read on the worker
 * threads (never on the event loop that asked, the proxy's forwarding loop for
 * backupVerify), through the same throttle, and one unreadable file is reported as such
 * while the others are still hashed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { hashFiles } from '../../src/backup/hash_files.js';
import { SourceTooShortError } from '../../src/backup/file_copy.js';
import { ProgressCounters } from '../../src/backup/progress.js';
import { TokenBucket } from '../../src/backup/throttle.js';
import type { Limiter } from '../../src/backup/copy_pool.js';
import type { SourceFile } from '../../src/backup/copy_types.js';
import { xxh3Hex } from '../helpers/checksum.js';
import { copyFixture, type CopyFixture } from '../helpers/copy_fixture.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Blocks this thread for `ms` without spinning the CPU. */
const blockFor = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
/** Bytes this process has read through read(2) and friends, on any thread (proc(5), /proc/[pid]/io). */
const rchar = (): number => Number(/^rchar: (\d+)$/m.exec(fs.readFileSync('/proc/self/io', 'utf8'))?.[1]);

describe('hashFiles', () => {
  let fixture: CopyFixture;
  const source = (name: string, data: Buffer): SourceFile => ({ path: fixture.writeSource(name, data), relativePath: name, size: data.length });

  before(() => (fixture = copyFixture('hash-files')));
  after(() => fixture.remove());

  it('hashes on the copy threads while the event loop that called it is blocked', async () => {
    const data = randomBytes(32 * MiB);
    const file = source('blocked', data);
    const counters = new ProgressCounters();
    counters.begin([file]);
    const from = rchar();
    // hashFiles starts its thread and hands it the file before it first awaits: from here
    // on, this thread is blocked, and only a worker thread can read the file.
    const hashing = hashFiles([file], { limiter: new TokenBucket(0), chunkSize: 256 * KiB, progress: counters });
    // Polls what the process has read, this thread blocked between polls. No deadline: a
    // hashing that needed this thread would never get there, and node --test's per-test
    // timeout, enforced by the runner from its own process, ends the file then.
    while (rchar() - from < data.length) blockFor(20);
    const [result] = await hashing;
    assert.ok(result !== undefined && 'hashed' in result);
    assert.deepEqual(result.hashed, { relativePath: 'blocked', size: data.length, actualSize: data.length, checksum: xxh3Hex(data) });
    assert.equal(counters.percent, 100);
  });

  it('reports a file it cannot read, or that is shorter than listed, and still hashes the others', async () => {
    const good = randomBytes(3 * MiB + 17);
    const files: SourceFile[] = [
      { path: `${fixture.src}/nowhere`, relativePath: 'nowhere', size: 10 },
      { ...source('short', Buffer.alloc(100, 1)), size: 200 },
      source('good', good),
      // Longer than listed: the listed bytes are hashed, and the size at open says so.
      { ...source('grown', Buffer.alloc(300, 2)), size: 100 },
    ];
    const results = await hashFiles(files, { limiter: new TokenBucket(0), concurrency: 2 });
    const [missing, short, hashed, grown] = results;
    assert.ok(missing !== undefined && 'error' in missing);
    assert.equal((missing.error as NodeJS.ErrnoException).code, 'ENOENT');
    assert.ok(short !== undefined && 'error' in short && short.error instanceof SourceTooShortError);
    assert.equal(short.error.actualSize, 100);
    assert.ok(hashed !== undefined && 'hashed' in hashed);
    assert.equal(hashed.hashed.checksum, xxh3Hex(good));
    assert.ok(grown !== undefined && 'hashed' in grown);
    assert.deepEqual(grown.hashed, { relativePath: 'grown', size: 100, actualSize: 300, checksum: xxh3Hex(Buffer.alloc(100, 2)) });
  });

  it('asks the limiter for every byte it reads, as a copy does', async () => {
    const data = randomBytes(5 * MiB + 3);
    const file = source('throttled', data);
    let granted = 0;
    const limiter: Limiter = {
      take: async (bytes) => void (granted += bytes),
      watchUnlimited: (listener) => (listener(false), () => undefined),
    };
    const [result] = await hashFiles([file], { limiter });
    assert.ok(result !== undefined && 'hashed' in result);
    assert.equal(granted, data.length);
  });
});
