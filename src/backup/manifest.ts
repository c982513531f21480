/**
 * The backup manifest: what a backup holds and how to check it, in a versioned
 * schema validated on read (as mongosh validates its snippet index with zod).
 *
 * It is written LAST, with the durable-write sequence, after every data file and
 * directory is fsynced: a backup directory without a manifest is incomplete by
 * definition, whatever else it holds (RocksDB's meta-file-last rule).
 *
 * Each file's checksum is XXH3-64 (seed 0) of its bytes as written, named by the
 * top-level `checksum.algorithm`; `xxhsum -H3 <file>` (xxHash's own CLI) prints the same
 * 16 hex digits, so a backup can be checked without this program. Version 1 used
 * sha256, and the copy is CPU-bound on a small machine: sha256 hashes ~1.4 GiB/s per
 * core even with SHA-NI, XXH3 ~20 GiB/s; a 1 MiB-chunk read+hash+write costs about
 * 1150 CPU-ms per GiB with sha256, about 420 with XXH3: within noise of no hash at all.
 * XXH3 is built to detect accidental corruption, which is what a backup's checksum
 * is for: RocksDB checks its table blocks with it by default (`ChecksumType checksum =
 * kXXH3` in include/rocksdb/table.h, default since facebook/rocksdb#10778, 7.x), and zstd
 * frames carry XXH64 of their content (RFC 8878 §3.1.1) - both keep only 32 bits of it,
 * the manifest keeps all 64 for a whole file. It is not a defence against deliberate
 * tampering; nor was sha256 here: whoever can rewrite the data can rewrite the manifest
 * beside it. That takes a signature or a digest kept elsewhere.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { writeFileDurably } from './durable.js';
import { CHECKSUM_ALGORITHM, startChecksum } from './checksum.js';
import { MTIME_PATTERN } from './source_stamp.js';
import type { CopiedFile, SourceFile } from './copy_types.js';
import { isS3Url } from '../s3/s3_location.js';

export const MANIFEST_FILENAME = 'hotbackup-manifest.json';
export const MANIFEST_FORMAT = 'mongo-hotbackup-proxy';
/** Bump on any change an older reader would misread; readers refuse other versions. */
export const MANIFEST_VERSION = 2;
export const MANIFEST_STRATEGIES = ['backupCursor', 'reflink', 'fsyncLock'] as const;

const byteCount = z.int().nonnegative();
const checksumHex = z.string().regex(/^[0-9a-f]{16}$/, 'must be 16 lowercase hex digits');
const relativePath = z
  .string()
  .min(1)
  .refine((p) => !path.isAbsolute(p) && !p.split(/[/\\]/).includes('..'), 'must be a relative path without ..');
const isoTime = z.iso.datetime({ offset: true });
const uint32 = z.int().nonnegative().max(0xffffffff);
/** A BSON Timestamp: seconds and increment, as in extended JSON's `{"$timestamp": {"t", "i"}}`. */
const timestamp = z.object({ t: uint32, i: uint32 });
/** mongod's OpTime: an oplog entry's `ts` and its term `t` (-1: none). */
const opTime = z.object({ ts: timestamp, t: z.int().min(-1) });
const before = (a: z.infer<typeof timestamp>, b: z.infer<typeof timestamp>): boolean => a.t < b.t || (a.t === b.t && a.i < b.i);

const ManifestFileSchema = z.object({
  /** Relative to the backup directory, '/'-separated as the copier wrote it. */
  path: relativePath,
  size: byteCount,
  checksum: checksumHex,
  /**
   * Present when the file was reached through a symbolic link in the dbpath (the file
   * itself, or a directory above it): the link, relative to the dbpath, and where it
   * led. The copy holds the target's bytes under the link's name. Optional: added
   * within version 1, whose older readers ignored it (zod drops unknown keys).
   */
  link: z.object({ path: relativePath, target: z.string().refine((p) => path.isAbsolute(p), 'must be absolute') }).optional(),
  /**
   * The source file's modification time, read at or before its bytes were captured
   * (source_stamp.ts): what the next incremental backup's quick check compares.
   * Optional within version 2, as `link` was within version 1, and for the same reason.
   */
  mtime: z.string().regex(MTIME_PATTERN, 'must be an ISO 8601 UTC time with nine fractional digits').optional(),
  /**
   * Set when an incremental backup took the file from its base (`base` below) instead of
   * copying it: how (a clone, or a hard link to the base's copy, or for a backup on S3 a
   * copy the server made of the base's object) and on what evidence. The file is in this
   * backup's directory (or prefix) all the same, with the checksum above. 'serverCopy'
   * came within version 2: a reader that predates it refuses such a manifest as invalid
   * rather than misreading it, and no such reader reads S3.
   */
  reusedFrom: z
    .object({
      backupId: z.uuid(),
      method: z.enum(['reflink', 'hardlink', 'serverCopy']),
      check: z.enum(['sizeMtime', 'checksum']),
    })
    .optional(),
});

export const ManifestSchema = z
  .object({
    format: z.literal(MANIFEST_FORMAT),
    version: z.literal(MANIFEST_VERSION),
    /** How every file's `checksum` was computed. */
    checksum: z.object({ algorithm: z.literal(CHECKSUM_ALGORITHM) }),
    backupId: z.uuid(),
    strategy: z.enum(MANIFEST_STRATEGIES),
    source: z.object({
      dbpath: z.string().min(1),
      host: z.string(),
      serverVersion: z.string(),
      /**
       * The machine whose proxy took the backup (serve --source-name, else os.hostname()). Sidecar
       * proxies on several machines all reach their mongod as 127.0.0.1:27017 with the same
       * dbpath: this tells their backups apart in a shared root (purge --keep counts each
       * source apart). Optional: backups written before it keep the key they had.
       */
      hostname: z.string().min(1).optional(),
    }),
    startedAt: isoTime,
    /**
     * When the backup began by the clock of the filesystem beside the dbpath: the mtime of
     * the proxy's state file, written as it began (source_stamp.ts). The next incremental
     * backup's racy check measures the recorded mtimes against the earlier of this and
     * startedAt. Optional within version 2, as `mtime` is.
     */
    startedAtFs: z.string().regex(MTIME_PATTERN, 'must be an ISO 8601 UTC time with nine fractional digits').optional(),
    finishedAt: isoTime,
    durationMs: z.number().nonnegative(),
    /** The throttle when the backup finished; 0 is unlimited. */
    throttleBytesPerSec: byteCount,
    /**
     * Set on an incremental backup: the backup it was taken against. Every file is in this
     * backup's own directory or prefix (reused ones as clones, hard links or server-side
     * copies), so it needs nothing from the base to be verified or restored; this says
     * where the shared ones came from: a directory, or an s3:// URL.
     */
    base: z.object({ backupId: z.uuid(), path: z.string().refine((p) => path.isAbsolute(p) || isS3Url(p), 'must be absolute, or an s3:// URL') }).optional(),
    /**
     * On a replica set, the oplog the copy holds: its oldest and newest entry, and for a
     * `$backupCursor` the checkpoint it pinned (strategies/oplog_read.ts). A restore
     * replays from `end.ts` on. Absent on a standalone. Optional within version 2, as
     * `mtime` is.
     */
    oplog: z.object({ start: opTime, end: opTime, checkpointTimestamp: timestamp.optional() }).optional(),
    /**
     * Set when the backup was extended (`backupStart` with `extendTo`, `$backupCursorExtend`):
     * the copy holds every write the majority had committed at this time. Optional within
     * version 2.
     */
    extendedTo: timestamp.optional(),
    files: z.array(ManifestFileSchema),
    totals: z.object({ files: byteCount, bytes: byteCount }),
  })
  .superRefine((manifest, ctx) => {
    // The totals are redundant on purpose: a hand-edited or truncated file list shows up here.
    const { files, totals } = manifest;
    if (totals.files !== files.length) {
      ctx.addIssue({ code: 'custom', path: ['totals', 'files'], message: `is ${totals.files} but ${files.length} files are listed` });
    }
    const bytes = files.reduce((sum, f) => sum + f.size, 0);
    if (totals.bytes !== bytes) {
      ctx.addIssue({ code: 'custom', path: ['totals', 'bytes'], message: `is ${totals.bytes} but the listed sizes add up to ${bytes}` });
    }
    const { oplog } = manifest;
    if (oplog !== undefined && before(oplog.end.ts, oplog.start.ts)) {
      ctx.addIssue({ code: 'custom', path: ['oplog', 'end'], message: 'is before oplog.start' });
    }
    if (manifest.extendedTo !== undefined && manifest.strategy !== 'backupCursor') {
      ctx.addIssue({ code: 'custom', path: ['extendedTo'], message: `only a backupCursor backup can be extended, and this one is ${manifest.strategy}` });
    }
    const seen = new Set<string>();
    files.forEach((f, i) => {
      if (seen.has(f.path)) ctx.addIssue({ code: 'custom', path: ['files', i, 'path'], message: `${f.path} is listed twice` });
      seen.add(f.path);
      if (f.reusedFrom !== undefined && f.reusedFrom.backupId !== manifest.base?.backupId) {
        ctx.addIssue({ code: 'custom', path: ['files', i, 'reusedFrom', 'backupId'], message: `names ${f.reusedFrom.backupId}, which is not this backup's base` });
      }
    });
  });

export type Manifest = z.infer<typeof ManifestSchema>;
export type ManifestFile = z.infer<typeof ManifestFileSchema>;

/**
 * MISSING: no manifest (an incomplete backup, or not a backup at all);
 * UNREADABLE: it exists but could not be read (see `cause`);
 * INVALID: not JSON, or not a valid manifest of MANIFEST_VERSION;
 * UNSUPPORTED_VERSION: a manifest of ours, from a version this build does not read.
 */
export type ManifestErrorCode = 'MISSING' | 'UNREADABLE' | 'INVALID' | 'UNSUPPORTED_VERSION';

export class ManifestError extends Error {
  constructor(
    readonly code: ManifestErrorCode,
    /** The manifest file concerned. */
    readonly file: string,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ManifestError';
  }
}

/**
 * The `checksum`, `files` and `totals` of a manifest for what the copier returned;
 * `sources` (the list the copier was given) supplies each file's link and mtime, and,
 * for a file taken from an incremental backup's base, that base's backupId.
 */
export function manifestFiles(copied: readonly CopiedFile[], sources: readonly SourceFile[] = []): Pick<Manifest, 'checksum' | 'files' | 'totals'> {
  const bySource = new Map(sources.map((s) => [s.relativePath, s] as const));
  const files = copied.map(({ relativePath, size, checksum, reused }) => {
    const { link, stamp, reuse } = bySource.get(relativePath) ?? {};
    return {
      path: relativePath,
      size,
      checksum,
      ...(link === undefined ? {} : { link: { ...link } }),
      ...(stamp === undefined ? {} : { mtime: stamp.before }),
      ...(reused === undefined || reuse === undefined ? {} : { reusedFrom: { backupId: reuse.backupId, method: reused.method, check: reused.check } }),
    };
  });
  return {
    checksum: { algorithm: CHECKSUM_ALGORITHM },
    files,
    totals: { files: files.length, bytes: files.reduce((sum, f) => sum + f.size, 0) },
  };
}

/** Validates `manifest` and writes it durably into `dir`. Refuses (INVALID) to write an invalid one. */
export async function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  const file = path.join(dir, MANIFEST_FILENAME);
  await writeFileDurably(file, serializeManifest(manifest, file));
}

/** The manifest's text as written (validated first: INVALID otherwise); `file` names where, for the error. */
export function serializeManifest(manifest: Manifest, file: string): string {
  const checked = ManifestSchema.safeParse(manifest);
  if (!checked.success) {
    throw new ManifestError('INVALID', file, `refusing to write an invalid manifest to ${file}: ${describeIssues(checked.error)}`);
  }
  return `${JSON.stringify(checked.data, null, 2)}\n`;
}

/** Reads and validates the manifest in `dir`; throws a ManifestError saying what is wrong. */
export async function readManifest(dir: string): Promise<Manifest> {
  return (await readManifestFile(dir)).manifest;
}

/** A manifest as read, with the XXH3-64 of its bytes: what names this very manifest (verification_record.ts). */
export interface ReadManifest {
  manifest: Manifest;
  /** 16 lowercase hex digits, as a file's checksum. */
  fileChecksum: string;
}

/** readManifest, with the checksum of the bytes it parsed. */
export async function readManifestFile(dir: string): Promise<ReadManifest> {
  const file = path.join(dir, MANIFEST_FILENAME);
  let text: string;
  let fileChecksum: string;
  try {
    const bytes = await fs.readFile(file);
    const checksum = startChecksum();
    checksum.update(bytes);
    fileChecksum = checksum.hex();
    text = bytes.toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ManifestError('MISSING', file, `${dir} has no ${MANIFEST_FILENAME}: the backup is incomplete, or this is not a backup directory`, { cause: err });
    }
    throw new ManifestError('UNREADABLE', file, `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  return { manifest: parseManifestText(text, file), fileChecksum };
}

/**
 * A manifest's text, as read from `file` (a path, or an s3:// URL: only for messages),
 * parsed and validated; throws a ManifestError (INVALID, UNSUPPORTED_VERSION).
 */
export function parseManifestText(text: string, file: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ManifestError('INVALID', file, `${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  // Say "newer version" rather than listing every field a future format renamed.
  const header = json as { format?: unknown; version?: unknown } | null;
  if (header?.format === MANIFEST_FORMAT && typeof header.version === 'number' && header.version !== MANIFEST_VERSION) {
    throw new ManifestError(
      'UNSUPPORTED_VERSION',
      file,
      `${file} is manifest version ${header.version}; this build reads version ${MANIFEST_VERSION}`,
    );
  }
  const checked = ManifestSchema.safeParse(json);
  if (!checked.success) {
    throw new ManifestError('INVALID', file, `${file} is not a valid manifest: ${describeIssues(checked.error)}`, { cause: checked.error });
  }
  return checked.data;
}

/** 'files.3.checksum: must be 16 lowercase hex digits; totals.bytes: is 10 but ...', at most 5 issues. */
export function describeIssues(error: z.ZodError): string {
  const shown = error.issues.slice(0, 5).map((issue) => {
    const where = issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)';
    return `${where}: ${issue.message}`;
  });
  const more = error.issues.length - shown.length;
  return shown.join('; ') + (more > 0 ? `; and ${more} more` : '');
}
