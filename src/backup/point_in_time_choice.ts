/**
 * `restore --root R --to-time T`: which backup under R to restore before replaying
 * R/oplog up to T, as Ops Manager's "restore to a point in time" picks the snapshot
 * before the chosen time and applies the oplog from it. The newest complete backup
 * (manifest present) whose copy holds writes only up to a point at or before T: its
 * manifest's oplog end, or `extendedTo` when the backup was extended past it (the copy
 * then holds every write up to there). Read-only; every refusal is a PointInTimeRefusal.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { readCatalog, ROOT_OPLOG_DIR, type CatalogEntry } from './backup_catalog.js';
import { describeSource, sourceGroups } from './retention.js';
import { compareOplogTs, formatOplogTs, type OplogTs } from '../oplog/oplog_ts.js';


export class PointInTimeRefusal extends Error {}

export interface PointInTimeChoice {
  readonly backup: CatalogEntry;
  /** R/oplog, absolute. */
  readonly oplogDir: string;
  /** Where the backup's copy ends: what the replay must reach from. */
  readonly holdsUpTo: OplogTs;
  /** One line: which backup, and why. */
  readonly reason: string;
}

/** Where a complete backup's copy ends, or undefined when it holds no oplog (a standalone's). */
export function windowEnd(entry: CatalogEntry): { ts: OplogTs; extended: boolean } | undefined {
  const manifest = entry.manifest;
  if (manifest?.oplog === undefined) return undefined;
  const end = { secs: manifest.oplog.end.ts.t, inc: manifest.oplog.end.ts.i };
  const extended = manifest.extendedTo === undefined ? undefined : { secs: manifest.extendedTo.t, inc: manifest.extendedTo.i };
  return extended !== undefined && compareOplogTs(extended, end) > 0 ? { ts: extended, extended: true } : { ts: end, extended: false };
}

function verificationNote(entry: CatalogEntry): string {
  const v = entry.verification;
  if (v === undefined) return 'not verified (hotbackup verify checks it; the restore checks every checksum as it copies)';
  return v.ok ? `verified at ${v.verifiedAt}` : `its verification at ${v.verifiedAt} FAILED (the restore checks every checksum as it copies, and stops at a mismatch)`;
}

export async function choosePointInTimeBackup(root: string, until: OplogTs): Promise<PointInTimeChoice> {
  const dir = path.resolve(root);
  const oplogDir = path.join(dir, ROOT_OPLOG_DIR);
  const stats = await fs.stat(oplogDir).catch(() => undefined);
  if (stats?.isDirectory() !== true) {
    throw new PointInTimeRefusal(`${dir} has no ${ROOT_OPLOG_DIR}/ directory: there is no streamed oplog to replay (stream it with \`hotbackup oplog --upstream <uri> --out ${oplogDir}\`, or serve --stream-oplog)`);
  }
  let catalog: CatalogEntry[];
  try {
    catalog = await readCatalog(dir);
  } catch (err) {
    throw new PointInTimeRefusal(`cannot read ${dir}: ${(err as Error).message}`);
  }
  const groups = sourceGroups(catalog);
  if (groups.length > 1) {
    // Replaying one member's oplog onto another's backup would mix two histories: the operator must choose.
    throw new PointInTimeRefusal(
      `${dir} holds the backups of ${groups.length} sources: ${groups.map((g) => describeSource(g.source)).join(', ')}; a point-in-time restore replays one source's oplog onto one of its own backups: give the backup directory itself (hotbackup restore <dir> --to <dbpath> --oplog ${oplogDir} --until <secs,inc>)`,
    );
  }
  const withOplog = catalog.flatMap((entry) => {
    const end = windowEnd(entry);
    return end === undefined ? [] : [{ entry, end }];
  });
  const eligible = withOplog.filter((c) => compareOplogTs(c.end.ts, until) <= 0);
  if (eligible.length === 0) {
    const complete = catalog.filter((entry) => entry.manifest !== undefined).length;
    const earliest = withOplog.map((c) => c.end.ts).sort(compareOplogTs)[0];
    const why =
      withOplog.length === 0
        ? complete === 0
          ? 'it holds no complete backup (one with a manifest)'
          : `none of its ${complete} complete backups records an oplog window (taken from a standalone, not a replica-set member)`
        : `the earliest copy among its complete backups ends at ${formatOplogTs(earliest as OplogTs)}`;
    throw new PointInTimeRefusal(`no backup under ${dir} ends at or before ${formatOplogTs(until)}: ${why}; a restore cannot go back before a backup`);
  }
  // Newest by where its copy ends, then by when it finished: the least oplog to replay.
  const chosen = eligible.reduce((best, c) => (compareOplogTs(c.end.ts, best.end.ts) > 0 || (compareOplogTs(c.end.ts, best.end.ts) === 0 && c.entry.time > best.entry.time) ? c : best));
  const { entry, end } = chosen;
  const reason =
    `Chose backup ${entry.name} (finished ${entry.manifest?.finishedAt}): the newest complete backup under ${dir} whose copy ends at or before ${formatOplogTs(until)} ` +
    `(it holds writes up to ${formatOplogTs(end.ts)}, its ${end.extended ? 'extendedTo' : 'oplog end'}); ${verificationNote(entry)}.`;
  return { backup: entry, oplogDir, holdsUpTo: end.ts, reason };
}
