/**
 * fsyncLock for the whole copy: mongod flushes and blocks every writer until the
 * unlock. Allowed only when the operator says so (--allow-write-blocking or
 * `allowWriteBlocking: true`), because writers wait for the full copy.
 *
 * Lock and unlock go over one dedicated connection (a pool of one), and the unlock
 * is retried: a lock left behind would hang every writer of the database. A
 * watchdog process unlocks if the proxy itself dies while locked (unlock_watchdog.ts).
 */
import { MongoClient } from 'mongodb';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Snapshot, SnapshotStrategy } from './types.js';
import { listDbpath } from './files.js';
import { onceAsync } from './backup_cursor.js';
import { startUnlockWatchdog } from './unlock_watchdog.js';
import type { Logger } from '../../log.js';

const UNLOCK_ATTEMPTS = 5;

export class FsyncLockStrategy implements SnapshotStrategy {
  readonly name = 'fsyncLock' as const;

  constructor(
    private readonly upstreamUri: string,
    private readonly dbpath: string,
    private readonly log: Logger,
  ) {}

  async open(): Promise<Snapshot> {
    const client = new MongoClient(this.upstreamUri, { maxPoolSize: 1, minPoolSize: 1, directConnection: true });
    await client.connect();
    const admin = client.db('admin');
    let locked = false;
    let watchdog: Awaited<ReturnType<typeof startUnlockWatchdog>> | undefined;
    const release = onceAsync(async () => {
      try {
        if (locked) await this.unlock(admin);
        // Disarm only once unlocked: if the unlock failed, the watchdog's retry is still wanted
        // should this process die next.
        await watchdog?.disarm();
      } finally {
        await client.close();
      }
    });
    try {
      watchdog = await startUnlockWatchdog(this.upstreamUri);
      await admin.command({ fsync: 1, lock: true });
      locked = true;
      this.log.info({ dbpath: this.dbpath }, 'fsyncLock held: writes are blocked until the copy ends');
      const files = await listDbpath(this.dbpath);
      return { strategy: this.name, backupId: undefined, files, lost: new AbortController().signal, release };
    } catch (err) {
      await release().catch(() => undefined);
      throw err;
    }
  }

  private async unlock(admin: ReturnType<MongoClient['db']>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await admin.command({ fsyncUnlock: 1 });
        this.log.info('fsyncUnlock: writes resumed');
        return;
      } catch (err) {
        this.log.error({ err: String(err), attempt }, 'fsyncUnlock failed');
        if (attempt >= UNLOCK_ATTEMPTS) throw err;
        await sleep(200 * attempt);
      }
    }
  }
}
