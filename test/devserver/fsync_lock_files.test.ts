/**
 * While fsync-locked, the dev server leaves its files alone, as mongod does: no
 * checkpoint (its own timer skips, and WiredTiger's own checkpoint thread, which once
 * ran every 60 s regardless, is off), so a backup copies files that do not change.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { MongoClient } from 'mongodb';
import { startDevServer } from '../helpers/dev_server.js';

/**
 * WiredTiger's checkpoint thread ran every 60 s from wiredtiger_open, so watching for
 * a little longer than that is sure to span one of its runs. There is nothing to wait
 * for here: the test proves an absence over a period.
 */
const OLD_WT_CHECKPOINT_PERIOD_MS = 60_000;
const WATCH_MS = OLD_WT_CHECKPOINT_PERIOD_MS + 5_000;

function filesUnder(dbpath: string): string[] {
  return fs
    .readdirSync(dbpath, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name));
}

/** Relative path → sha256 of every file under the dbpath: byte-identical or not. */
function contents(dbpath: string): Map<string, string> {
  return new Map(filesUnder(dbpath).map((file) => [path.relative(dbpath, file), createHash('sha256').update(fs.readFileSync(file)).digest('hex')]));
}

/** Relative path → size and mtime (ns): a cheap look every second, for an early failure. */
function stamps(dbpath: string): Map<string, string> {
  return new Map(
    filesUnder(dbpath).map((file) => {
      const stat = fs.statSync(file, { bigint: true });
      return [path.relative(dbpath, file), `${stat.size}@${stat.mtimeNs}`];
    }),
  );
}

function changes(before: Map<string, string>, after: Map<string, string>): string[] {
  const names = new Set([...before.keys(), ...after.keys()]);
  return [...names].filter((name) => before.get(name) !== after.get(name)).sort();
}

describe('the dev server while fsync-locked', () => {
  it('keeps every file byte-identical across a full checkpoint period', async () => {
    // Its own checkpoint timer fires every second: it must skip every time while locked.
    const server = await startDevServer({ args: ['--checkpoint-interval', '1'] });
    const client = new MongoClient(server.uri);
    try {
      const docs = client.db('app').collection('docs');
      await docs.insertMany(Array.from({ length: 2000 }, (_, i) => ({ i, pad: 'x'.repeat(300) })));
      const admin = client.db('admin');
      await admin.command({ fsync: 1, lock: true });
      const contentsAtLock = contents(server.dbpath);
      const stampsAtLock = stamps(server.dbpath);
      const until = Date.now() + WATCH_MS;
      while (Date.now() < until) {
        await sleep(1000);
        assert.deepEqual(changes(stampsAtLock, stamps(server.dbpath)), [], 'files written while fsync-locked');
      }
      assert.deepEqual(changes(contentsAtLock, contents(server.dbpath)), [], 'files changed while fsync-locked');
      // The lock held writes back all along; after the unlock they flow again.
      await admin.command({ fsyncUnlock: 1 });
      await docs.insertOne({ after: 'unlock' });
      assert.equal(await docs.countDocuments(), 2001);
    } finally {
      await client.close();
      await server.stop();
      server.cleanup();
    }
  });
});
