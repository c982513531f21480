/**
 * The two shapes the copier speaks in. They are plain data, so a strategy can list
 * files without knowing how they get copied, and the engine can build a manifest
 * from the results without knowing how they were copied.
 */

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
}

/** One file the copier wrote. */
export interface CopiedFile {
  relativePath: string;
  size: number;
  /** sha256 of the bytes written, lowercase hex. */
  sha256: string;
}
