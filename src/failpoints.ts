/**
 * Fail points, as mongod has them (src/mongo/util/fail_point.h, enabled in tests with
 * `configureFailPoint` under `enableTestCommands`): named places where a test can make
 * the proxy stop, so that it can kill it at exactly that moment. A kill -9 in the few
 * milliseconds a reflink backup blocks writes cannot be timed any other way.
 *
 * They are set only through the environment variable HOTBACKUP_TEST_FAILPOINTS (a
 * comma-separated list of names), read once at start: nothing a client sends can turn
 * one on. Unset, each check costs one Set lookup.
 */
export type FailPointName =
  /** Hang while mongod is fsync-locked by the reflink strategy, after the lock and before the clones. */
  | 'hangWhileWritesBlocked'
  /** Hang in the middle of the copy, after the first file is copied. */
  | 'hangDuringCopy'
  /** Fail the backup once its files are copied (or cloned and sealed), before its manifest is written. */
  | 'failBeforeManifest'
  /** restore --force: hang (saying so on stderr) before deleting the last entry the target held. */
  | 'hangDuringForceDelete'
  /** restore: fail the last step after its first rename, as an I/O error there would. */
  | 'failDuringRestoreCompletion'
  /** purge of an S3 root: fail a backup's deletion once its manifest object is deleted, before its other objects. */
  | 'failPurgeAfterManifestDeletion'
  /** purge: fail the deletion of a backup's manifest itself (after its purge marker is written), as a refused DELETE or unlink would. */
  | 'failPurgeManifestDeletion';

const ENV = 'HOTBACKUP_TEST_FAILPOINTS';

const enabled: ReadonlySet<string> = new Set(
  (process.env[ENV] ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== ''),
);

export function failPointEnabled(name: FailPointName): boolean {
  return enabled.has(name);
}

/**
 * When `name` is on: logs through `onHang`, then waits until `signal` aborts (and throws
 * its reason), or forever. Off: returns at once.
 */
export async function hangIfEnabled(name: FailPointName, signal: AbortSignal | undefined, onHang: () => void): Promise<void> {
  if (!enabled.has(name)) return;
  onHang();
  // A timer keeps the process alive while it hangs: a CLI has nothing else pending, and
  // would exit mid-hang.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  try {
    await new Promise<never>((_resolve, reject) => {
      if (signal === undefined) return;
      if (signal.aborted) reject(signal.reason);
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
  } finally {
    clearInterval(keepAlive);
  }
}
