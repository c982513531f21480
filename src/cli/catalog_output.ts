/**
 * How `hotbackup list` and `hotbackup purge` print backups: a table for a person at a
 * terminal, JSON for everything else (a pipe, a script, `--json`). Both commands print
 * one entry per backup directory in the same JSON shape.
 */
import type { CatalogEntry } from '../backup/backup_catalog.js';
import { sourceGroups } from '../backup/retention.js';
import { formatBytes } from '../backup/units.js';
import { formatTimestamp } from '../backup/oplog_bounds.js';

/** One backup directory (or S3 prefix) in the commands' JSON output. */
export interface EntryJson {
  name: string;
  path: string;
  complete: boolean;
  /** Why it is not a complete backup; null when it is. */
  incomplete: string | null;
  /** Where it leads, when the entry is a symbolic link (never followed); null otherwise. */
  symlink: string | null;
  /** The dbpath and the mongod it is a backup of (its manifest's); what purge --keep counts by. */
  source: { dbpath: string; host: string; hostname: string | null } | null;
  backupId: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  strategy: string | null;
  /**
   * Every file's size added up (totals.bytes), reused ones included. For an unfinished
   * backup on S3, the bytes its prefix holds (the listing's); null for an incomplete directory.
   */
  bytes: number | null;
  files: number | null;
  /** Of `bytes`, those taken from the base (shared with it on disk). */
  bytesReused: number;
  /** The backup it was taken against; `name` when that one is in the same root. */
  base: { backupId: string; path: string; name: string | null } | null;
  verified: { ok: boolean; verifiedAt: string } | null;
  /**
   * On a replica set, the oplog the copy holds, as `secs,inc` (what `hotbackup oplog
   * --from` takes): its oldest and newest entry, the checkpoint a `$backupCursor` pinned,
   * and the time it was extended to; null for a standalone's backup.
   */
  oplog: { start: string; end: string; checkpoint: string | null; extendedTo: string | null } | null;
}

export function entryJson(entry: CatalogEntry, catalog: readonly CatalogEntry[]): EntryJson {
  const { manifest } = entry;
  const base = manifest?.base;
  return {
    name: entry.name,
    path: entry.path,
    complete: manifest !== undefined,
    incomplete: entry.incomplete ?? null,
    symlink: entry.symlink ?? null,
    source: manifest === undefined ? null : { dbpath: manifest.source.dbpath, host: manifest.source.host, hostname: manifest.source.hostname ?? null },
    backupId: manifest?.backupId ?? null,
    startedAt: manifest?.startedAt ?? null,
    finishedAt: manifest?.finishedAt ?? null,
    strategy: manifest?.strategy ?? null,
    bytes: manifest?.totals.bytes ?? entry.bytesHeld ?? null,
    files: manifest?.totals.files ?? null,
    bytesReused: entry.bytesReused,
    base: base === undefined ? null : { ...base, name: catalog.find((other) => other.manifest?.backupId === base.backupId)?.name ?? null },
    verified: entry.verification === undefined ? null : { ...entry.verification },
    oplog:
      manifest?.oplog === undefined
        ? null
        : {
            start: formatTimestamp(manifest.oplog.start.ts),
            end: formatTimestamp(manifest.oplog.end.ts),
            checkpoint: manifest.oplog.checkpointTimestamp === undefined ? null : formatTimestamp(manifest.oplog.checkpointTimestamp),
            extendedTo: manifest.extendedTo === undefined ? null : formatTimestamp(manifest.extendedTo),
          },
  };
}

/** How far the copy holds writes: its extension's time, else its newest oplog entry; '-' without an oplog. */
function oplogCell(entry: EntryJson): string {
  if (entry.oplog === null) return '-';
  return entry.oplog.extendedTo === null ? entry.oplog.end : `${entry.oplog.extendedTo} (extended)`;
}

/** `2026-11-21T10:00:00Z`: to the second, in UTC, as the manifest's times are. */
function shortTime(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** The table's cells for one entry, under TABLE_HEADER. */
function entryCells(entry: CatalogEntry, catalog: readonly CatalogEntry[]): string[] {
  const json = entryJson(entry, catalog);
  const verified = json.verified === null ? '-' : `${json.verified.ok ? 'yes' : 'FAILED'} ${json.verified.verifiedAt.slice(0, 10)}`;
  return [
    entry.name,
    shortTime(entry.time),
    json.bytes === null ? '-' : formatBytes(json.bytes),
    json.complete ? formatBytes(json.bytesReused) : '-',
    json.strategy ?? '-',
    json.base === null ? '-' : (json.base.name ?? json.base.path),
    json.complete ? 'yes' : 'no',
    verified,
  ];
}

const TABLE_HEADER = ['NAME', 'FINISHED', 'SIZE', 'REUSED', 'STRATEGY', 'BASE', 'COMPLETE', 'VERIFIED'];

/**
 * `hotbackup list`'s table: one row per entry. Backups of a replica set add an OPLOG TO
 * column. A root holding the backups of more than one source (dbpath and mongod) gets a SOURCE column, `host:dbpath` as scp writes a
 * remote path: purge --keep counts each source apart, and the table shows by what.
 */
export function catalogTable(catalog: readonly CatalogEntry[]): string {
  const several = sourceGroups(catalog).length > 1;
  // A replica set's backups say how far in its oplog each copy reaches (secs,inc).
  const oplog = catalog.some((entry) => entry.manifest?.oplog !== undefined);
  const header = [...TABLE_HEADER, ...(oplog ? ['OPLOG TO'] : []), ...(several ? ['SOURCE'] : [])];
  const rows = catalog.map((entry) => {
    const cells = entryCells(entry, catalog);
    const source = entry.manifest?.source;
    return [...cells, ...(oplog ? [oplogCell(entryJson(entry, catalog))] : []), ...(several ? [source === undefined ? '-' : sourceCell(source)] : [])];
  });
  return renderTable(header, rows);
}

/** `host:dbpath` as scp writes a remote path, after the proxy's machine when the manifest names it. */
function sourceCell(source: NonNullable<CatalogEntry['manifest']>['source']): string {
  return `${source.hostname === undefined ? '' : `${source.hostname} `}${source.host}:${source.dbpath}`;
}

/** Rows of cells as aligned columns, two spaces apart; sizes right-aligned. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[], rightAligned: ReadonlySet<number> = new Set([2, 3])): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (rightAligned.has(column) ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** `Warning: …` lines, for below a table or a plan. */
export function warningLines(warnings: readonly string[]): string {
  return warnings.map((warning) => `Warning: ${warning}\n`).join('');
}

/** Lines saying why each incomplete directory is incomplete, for below a table. */
export function incompleteNotes(catalog: readonly CatalogEntry[]): string {
  const notes = catalog.filter((entry) => entry.incomplete !== undefined).map((entry) => `  ${entry.name}: ${entry.incomplete}\n`);
  return notes.length === 0 ? '' : `\nIncomplete:\n${notes.join('')}`;
}
