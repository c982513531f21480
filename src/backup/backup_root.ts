/**
 * `hotbackup serve --backup-root DIR`: the one tree that paths named by clients
 * (backupStart's destination and incrementalBase, backupVerify's directory) must lie
 * in. A client names a path; it must not make the proxy write (or read) elsewhere.
 *
 * A path is taken as written, made absolute by the client and never resolved against
 * anything: any `..` component is refused outright (path.resolve would turn
 * `/b/../etc/x` into `/etc/x`, and the kernel resolves `/b/link/../x` through the link),
 * and so is any symbolic link below the root. The root itself is resolved once, at
 * start (fs.realpath): the operator chose it, and links above it are the operator's.
 *
 * Node has no openat(2)/mkdirat(2). Opening `/proc/self/fd/<fd>/<name>` is the same
 * thing on Linux: the kernel follows the magic link to the directory `fd` has open (its
 * dentry, not a path name), then looks up `name` in it. So the walk below opens the root,
 * then each component relative to the directory opened before with O_NOFOLLOW and
 * O_DIRECTORY, and a symbolic link swapped in anywhere on the path after the walk began
 * can no longer redirect it: the directories already open stay the ones checked. The
 * same holds for the mkdir of a destination (backup_destination.ts).
 *
 * Each directory opened below the root must be one nobody but the proxy's user (or
 * root) may rename entries in, since that is what a swap takes (trusted_dir.ts).
 *
 * Residual risk, said also in docs/backups.md: once checked, a path is used by name (the
 * copier writes `<destination>/<file>`; a verify reads so). A local user who may write
 * in a directory below the root can rename it and put a symbolic link in its place
 * between the check and those writes, and send them elsewhere. Nobody reaching the proxy
 * over the wire can: a client names paths, it makes no links. Keep the root writable by
 * the proxy's user alone (the start warns otherwise).
 */
import { constants } from 'node:fs';
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { CommandError, ErrorCodes } from '../errors.js';
import { errorCode, toCommandError } from './io_error.js';
import { leavesParent } from './path_within.js';
import { distrustOfDirectory } from './trusted_dir.js';

/** open(2) flags of every directory on a walk: a symbolic link fails with ENOTDIR (ELOOP without O_DIRECTORY). */
export const NOFOLLOW_DIRECTORY = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/** The name of `name` inside the directory `handle` has open, for calls that take a path (see the module comment). */
export function beneath(handle: FileHandle, name?: string): string {
  return name === undefined ? `/proc/self/fd/${handle.fd}` : `/proc/self/fd/${handle.fd}/${name}`;
}

function badValue(message: string): CommandError {
  return new CommandError(ErrorCodes.BadValue, message);
}

export class BackupRoot {
  private constructor(
    /** The root with every symbolic link resolved: where the walks start. */
    readonly real: string,
    /** As the operator gave it, made absolute: a client may name paths under either. */
    readonly given: string,
  ) {}

  /**
   * Resolves `dir` (absolute; the caller has checked it is a directory), and makes sure
   * `/proc/self/fd` works here: without /proc mounted, every walk would fail as if the
   * path were missing, so the start fails instead, saying why.
   */
  static async open(dir: string): Promise<BackupRoot> {
    const given = path.resolve(dir);
    const real = await fs.realpath(given);
    const handle = await fs.open(real, NOFOLLOW_DIRECTORY);
    try {
      await fs.stat(beneath(handle));
    } catch (err) {
      throw new Error(`--backup-root needs /proc mounted (it opens paths through /proc/self/fd, as openat(2) would): ${(err as Error).message}`, { cause: err });
    } finally {
      await handle.close();
    }
    return new BackupRoot(real, given);
  }

  /**
   * The components of `requested` below the root, by the path as written; `what` names
   * the path in the error (e.g. 'Backup destination'). Refuses the root itself: a backup
   * gets a directory of its own in it, and the scheduled job's backups live there.
   */
  componentsOf(requested: string, what: string): string[] {
    if (!path.isAbsolute(requested)) throw badValue(`${what} ${requested} must be an absolute path`);
    if (requested.split('/').includes('..')) {
      throw badValue(`${what} ${requested} must not contain '..': the proxy takes only paths inside its backup root ${this.given}, as written`);
    }
    const target = path.resolve(requested);
    for (const root of new Set([this.given, this.real])) {
      const relative = path.relative(root, target);
      if (relative === '') break;
      if (!leavesParent(relative)) return relative.split(path.sep);
    }
    const itself = target === this.given || target === this.real;
    throw badValue(
      itself
        ? `${what} ${requested} is the backup root itself: name a directory inside it, e.g. ${path.join(this.given, 'backup-1')}`
        : `${what} ${requested} is outside the backup root ${this.given}: this proxy (hotbackup serve --backup-root) takes only paths inside it`,
    );
  }

  /** The real path of `components` below the root (symbolic links are refused below it, so this is where the walk ends). */
  pathOf(components: readonly string[]): string {
    return path.join(this.real, ...components);
  }

  /**
   * The real path of `requested`: an existing directory below the root, reached through
   * no `..` and no symbolic link. For paths that are read (and a record written into),
   * not created: backupVerify's, an incrementalBase.
   */
  async existingDirectory(requested: string, what: string): Promise<string> {
    const components = this.componentsOf(requested, what);
    const handle = await this.openDirectory(components, requested, what);
    await handle.close();
    return this.pathOf(components);
  }

  /**
   * Opens the root, then each of `components` in the one before, none through a
   * symbolic link; resolves with the last directory open (the root for none). The caller
   * closes it. `requested` and `what` are for the errors.
   */
  async openDirectory(components: readonly string[], requested: string, what: string): Promise<FileHandle> {
    let current = await fs.open(this.real, NOFOLLOW_DIRECTORY).catch((err: unknown) => {
      throw toCommandError(err, `opening the backup root ${this.real}`);
    });
    try {
      for (const [index, name] of components.entries()) {
        const next = await this.openChild(current, name, components.slice(0, index + 1), requested, what);
        await current.close();
        current = next;
      }
      return current;
    } catch (err) {
      await current.close();
      throw err;
    }
  }

  private async openChild(parent: FileHandle, name: string, walked: readonly string[], requested: string, what: string): Promise<FileHandle> {
    let child: FileHandle;
    try {
      child = await fs.open(beneath(parent, name), NOFOLLOW_DIRECTORY);
    } catch (err) {
      const at = this.pathOf(walked);
      const code = errorCode(err);
      if (code === 'ENOENT') throw badValue(`${what} ${requested} does not exist: ${at} is missing`);
      if (code !== 'ENOTDIR' && code !== 'ELOOP') throw toCommandError(err, `opening ${at}`);
      throw await this.notADirectory(parent, name, at, requested, what);
    }
    try {
      // Of the directory open, not of whatever the name leads to now (trusted_dir.ts).
      const why = distrustOfDirectory(await child.stat());
      if (why !== undefined) throw this.untrusted(requested, what, this.pathOf(walked), why);
      return child;
    } catch (err) {
      await child.close();
      throw err;
    }
  }

  /** The refusal for a directory below the root that others could rename entries in (trusted_dir.ts). */
  untrusted(requested: string, what: string, at: string, why: string): CommandError {
    return badValue(`${what} ${requested} cannot be used: ${at} is not safe to write through: ${why}. Below the backup root ${this.given}, directories must be the proxy's user's (or root's) and writable by no one else`);
  }

  /** The refusal for `name`, found not to be a directory: a symbolic link, or something else. */
  async notADirectory(parent: FileHandle, name: string, at: string, requested: string, what: string): Promise<CommandError> {
    // Only for the wording: what the name is now may differ from what the open met.
    const stats = await fs.lstat(beneath(parent, name)).catch(() => undefined);
    if (stats?.isSymbolicLink() === true) {
      return badValue(`${what} ${requested} passes through the symbolic link ${at}: below the backup root ${this.given} the proxy follows none`);
    }
    return badValue(`${what} ${requested} cannot be used: ${at} is not a directory`);
  }
}
