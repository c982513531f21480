/**
 * fsync lock helpers for tests: which fsyncUnlock a relay should fault, and the lock
 * count as a DBA would read it.
 */
import type { Db } from 'mongodb';
import type { CommandMatch } from './relay.js';

/**
 * Matches the fsyncUnlock that follows (`probe` true) or does not follow (`probe` false)
 * an fsync lock: the proxy measures the lock count with a lock/unlock probe, so an
 * fsyncUnlock right after a lock is a probe's, any other is a real unlock. The driver's
 * handshakes and heartbeats, on connections of their own, are not counted.
 */
export function fsyncUnlockMatch(probe: boolean): CommandMatch {
  let previous = '';
  return (name) => {
    if (name === 'hello' || name.toLowerCase() === 'ismaster') return false;
    const hit = name === 'fsyncUnlock' && (previous === 'fsync') === probe;
    previous = name;
    return hit;
  };
}

/** `{fsync: 1, lock: true}`, not a plain fsync. */
export const fsyncLockMatch: CommandMatch = (name, frame) => name === 'fsync' && frame.includes(Buffer.from('lock'));

/**
 * The lock count, read the only way mongod tells it: by unlocking until currentOp says
 * unlocked (each fsyncUnlock answers the count that remains). Leaves mongod unlocked.
 */
export async function drainLockCount(admin: Db): Promise<number> {
  let count = 0;
  while ((await admin.command({ currentOp: 1 }))['fsyncLock'] === true) {
    count = Math.max(count, Number((await admin.command({ fsyncUnlock: 1 }))['lockCount']) + 1);
  }
  return count;
}
