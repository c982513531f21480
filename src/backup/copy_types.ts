/**
 * The shapes the copier speaks in. They are plain data, so a strategy can list
 * files without knowing how they get copied, and the engine can build a manifest
 * from the results without knowing how they were copied.
 */
import type { SourceStamp } from './source_stamp.js';

/** A symbolic link the file was reached through, somewhere on its path under the dbpath. */
export interface FileLink {
  /** The link itself, relative to the dbpath, e.g. 'journal' or 'collection-7-123.wt'. */
  path: string;
  /** Where the link leads, absolute and with every link resolved. */
  target: string;
}

/** One file to copy, as a strategy lists it. */
export interface SourceFile {
  /** Absolute path of the file to read. */
  path: string;
  /** Where it goes under the destination, e.g. 'journal/WiredTigerLog.0000000001'. */
  relativePath: string;
  /**
   * Copy exactly this many bytes. A file still being written may be longer by now
   * (the bytes past `size` are not part of the checkpoint); a shorter one is an error.
   */
  size: number;
  /**
   * Copied best-effort: if it is gone when opened, or ends before `size`, it is
   * skipped (its partial copy removed) instead of failing the whole copy.
   */
  optional?: boolean;
  /** The link the file was reached through, if any; recorded in the manifest. */
  link?: FileLink;
  /** Its modification time as the strategy read it (source_stamp.ts); recorded in the manifest. */
  stamp?: SourceStamp;
  /** Take it from an earlier backup instead of copying it, when it may be (incremental.ts, file_reuse.ts). */
  reuse?: ReuseFrom;
  /**
   * What the bytes copied must hash to (a restore copies a backup's files and checks them
   * against its manifest): the copy fails at the first file that hashes otherwise, and
   * every worker stops (copier.ts).
   */
  expectedChecksum?: string;
}

/** Where a file of an incremental backup may be taken from instead of being copied. */
export interface ReuseFrom {
  /** The base backup's copy of the file: an absolute path, or `s3://bucket/key` for a base on S3. */
  from: string;
  /** The base's backupId, for the manifest. */
  backupId: string;
  /** The base's manifest checksum of it: what the new manifest records for the file taken. */
  checksum: string;
  /**
   * When the base's manifest was written (its mtime, source_stamp.ts's text). A copy in
   * the base modified later (mongod started on the base, a hand edit) no longer holds
   * the bytes `checksum` describes: it is not taken, and the file is copied.
   */
  baseWrittenAt: string;
  /**
   * Hash the source first, and take the base's copy only if the checksums are equal
   * (`checksum: true`, or a quick check that could not decide); otherwise it is copied.
   * The copy taken is hashed too, and must match `checksum` as well.
   */
  compare: boolean;
}

/** How a reused file came to be in the destination. */
export interface Reused {
  /**
   * 'reflink': a clone of the base's copy (FICLONE); 'hardlink': the base's copy itself,
   * under a second name; 'serverCopy': the base's object copied by the S3 server
   * (CopyObject or UploadPartCopy: src/s3/server_copy.ts).
   */
  method: 'reflink' | 'hardlink' | 'serverCopy';
  /** 'sizeMtime': the quick check said unchanged; 'checksum': the source and the base's copy were hashed, and both matched. */
  check: 'sizeMtime' | 'checksum';
}

/** One file the copier wrote. */
export interface CopiedFile {
  relativePath: string;
  size: number;
  /** XXH3-64 of the bytes written, 16 lowercase hex digits (checksum.ts). */
  checksum: string;
  /** Set when the file was taken from the base rather than copied from the source. */
  reused?: Reused;
  /** Set when it was to be taken from the base but could not be, and why: it was copied instead. */
  notReused?: string;
}

/** One file a hash worker read (hash_files.ts): the copy's checksum, without a copy. */
export interface HashedFile {
  relativePath: string;
  /** The bytes hashed: the size it was listed with. */
  size: number;
  /** Its size when it was opened (fstat): differs from `size` when the file was resized. */
  actualSize: number;
  /** XXH3-64 of its first `size` bytes, as CopiedFile's. */
  checksum: string;
}

/** An optional file the copier left out, and why. */
export interface SkippedFile {
  relativePath: string;
  /** The absolute path it was read from. */
  path: string;
  /**
   * 'vanished' (gone when opened), 'shrank' (ended before its listed size) or
   * 'unreadable' (this process may not read it, e.g. a 0600 file of mongod's user).
   */
  reason: 'vanished' | 'shrank' | 'unreadable';
  /** Human wording, e.g. 'vanished before it could be copied (ENOENT)'. */
  detail: string;
}

/** What copyFiles did: every file is in exactly one of the two lists. */
export interface CopyResult {
  /** In the order of the files given, without the skipped ones. */
  copied: CopiedFile[];
  skipped: SkippedFile[];
}
