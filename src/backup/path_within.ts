/**
 * The one "is this path in that directory" test the backup code uses, by path.relative.
 * `..x` and `..snap` are names like any other: only a first component that is `..`
 * itself leaves the directory. A prefix test on '..' takes `<dir>/..x` for outside,
 * which let `<dbpath>/..x` pass as a destination and refused `<root>/..snap/x`.
 */
import path from 'node:path';

/** Whether `relative`, as path.relative(parent, child) gives it, leads out of `parent`. */
export function leavesParent(relative: string): boolean {
  return relative === '..' || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative);
}

/** Whether the absolute path `child` is `parent` or inside it, by the paths as written. */
export function isWithin(child: string, parent: string): boolean {
  return !leavesParent(path.relative(parent, child));
}
