/**
 * A backup whose snapshot could not be released: an fsyncUnlock that did not go through
 * (mongod may still be fsync-locked), a killCursors that failed (a cursor may still pin
 * files). Whatever else happened, that backup has failed, an aborted one included: a
 * reply or a status saying "aborted" would tell the operator that everything was let go.
 */
import { CommandError } from '../errors.js';
import { toCommandError } from './io_error.js';

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class SnapshotReleaseFailed extends CommandError {
  private constructor(
    error: CommandError,
    /** The release's own error, as a command error. */
    readonly release: CommandError,
    /** The release's own words, without the "backup failed:" a bare Error gets. */
    readonly releaseMessage: string,
    cause: unknown,
  ) {
    super(error.code, error.message, { extra: { ...error.extra }, codeName: error.codeName, cause });
  }

  /**
   * `stopped` is what ended the backup before the release (a copy error), if anything
   * did: it leads, since it went wrong first, and the release is said after it. Without
   * one, the release's error is the backup's.
   */
  static of(stopped: unknown, releaseError: unknown): SnapshotReleaseFailed {
    const release = toCommandError(releaseError, 'backup');
    const releaseMessage = messageOf(releaseError);
    if (stopped === undefined) return new SnapshotReleaseFailed(release, release, releaseMessage, releaseError);
    const first = toCommandError(stopped, 'backup');
    const both = new CommandError(first.code, `${first.message}; releasing the snapshot failed too: ${releaseMessage}`, { extra: { ...first.extra }, codeName: first.codeName });
    return new SnapshotReleaseFailed(both, release, releaseMessage, stopped);
  }

  /**
   * The same failure, of a backup that `abort` stopped: the abort is said first (what the
   * operator asked for did happen), then the release, whose code the error takes: this
   * is no Interrupted, a clean abort.
   */
  afterAbort(abort: CommandError): SnapshotReleaseFailed {
    const error = new CommandError(this.release.code, `${abort.message} While it stopped, releasing its snapshot failed: ${this.releaseMessage}`, {
      extra: { ...this.release.extra },
      codeName: this.release.codeName,
    });
    return new SnapshotReleaseFailed(error, this.release, this.releaseMessage, this);
  }
}
