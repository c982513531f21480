/**
 * A real filesystem of a chosen type on a loop device, for the tests that depend on
 * what the filesystem can do (reflink on XFS, none on ext4). Needs root and a loop
 * device; CI runs as root. Where either is missing, `loopFsUnavailable` says why, and
 * the test skips with that reason, never silently.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type LoopFsType = 'xfs' | 'ext4';

export interface LoopFs {
  readonly type: LoopFsType;
  /** The mount point: an empty directory on the new filesystem. */
  readonly dir: string;
  /** Unmounts and deletes the image. Idempotent. */
  remove(): Promise<void>;
}

const MKFS: Record<LoopFsType, { tool: string; args: string[] }> = {
  // reflink=1 is mkfs.xfs's default since xfsprogs 5.1; said explicitly, as the recipe does.
  xfs: { tool: 'mkfs.xfs', args: ['-q', '-f', '-m', 'reflink=1'] },
  ext4: { tool: 'mkfs.ext4', args: ['-q', '-F'] },
};

function onPath(tool: string): boolean {
  return ['/usr/sbin', '/sbin', '/usr/bin', '/bin'].some((dir) => fs.existsSync(path.join(dir, tool)));
}

/** Why a loop filesystem of `type` cannot be made here, or undefined when it can. */
export function loopFsUnavailable(type: LoopFsType): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to mount a loop device (CI runs as root)';
  if (!fs.existsSync('/dev/loop-control')) return 'needs a loop device (/dev/loop-control is missing)';
  if (!onPath(MKFS[type].tool)) return `needs ${MKFS[type].tool} (scripts/install.sh installs it)`;
  const supported = fs.readFileSync('/proc/filesystems', 'utf8');
  if (!new RegExp(`\\s${type}\\n`).test(supported)) return `the kernel has no ${type} support (/proc/filesystems)`;
  return undefined;
}

/**
 * Where the image lives: tmpfs (/dev/shm) when it has room, else the temp dir. On tmpfs
 * the loop device's flushes cost nothing, so the tests that bound a time (the reflink
 * write-block window) measure the filesystem and the proxy, not how busy the machine's
 * disk is with the other tests running beside them. The filesystem itself is real either
 * way; bench/strategies.ts measures on disk.
 */
function imageParent(sizeMiB: number): string {
  const shm = '/dev/shm';
  try {
    const stats = fs.statfsSync(shm);
    // Room for the image twice over: a full image must never fill the machine's memory.
    if (stats.bavail * stats.bsize >= 2 * sizeMiB * 1024 * 1024) return shm;
  } catch {
    // No /dev/shm here.
  }
  return os.tmpdir();
}

/** A fresh `type` filesystem of `sizeMiB`, mounted on a new directory. The image file is sparse. */
export async function mountLoopFs(type: LoopFsType, sizeMiB: number): Promise<LoopFs> {
  const base = fs.mkdtempSync(path.join(imageParent(sizeMiB), `hotbackup-${type}-`));
  const image = path.join(base, 'image');
  const dir = path.join(base, 'mnt');
  fs.mkdirSync(dir);
  fs.closeSync(fs.openSync(image, 'w'));
  fs.truncateSync(image, sizeMiB * 1024 * 1024);
  let mounted = false;
  const remove = async () => {
    if (mounted) {
      // A process that just exited may still hold a file open for a moment: retry a busy unmount.
      for (let attempt = 1; ; attempt++) {
        try {
          await run('umount', [dir]);
          break;
        } catch (err) {
          if (attempt >= 20) throw err;
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
      mounted = false;
    }
    fs.rmSync(base, { recursive: true, force: true });
  };
  try {
    await run(MKFS[type].tool, [...MKFS[type].args, image]);
    await run('mount', ['-o', 'loop', image, dir]);
    mounted = true;
  } catch (err) {
    await remove();
    throw err;
  }
  return { type, dir, remove };
}
