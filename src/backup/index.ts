/** The backup data path: what to copy, how fast, how it is reported, and the manifest that seals it. */
export type { CopiedFile, CopyResult, FileLink, SkippedFile, SourceFile } from './types.js';
export { TokenBucket, type TokenBucketOptions } from './throttle.js';
export { formatBytes, formatRate, parseThrottle } from './units.js';
export { type CopyProgress, noProgress, ProgressCounters, type ProgressCountersOptions } from './progress.js';
export { copyFiles, type CopyOptions, DEFAULT_CHUNK_SIZE, DEFAULT_CONCURRENCY, SourceTooShortError } from './copier.js';
export { fsyncDirectory, writeFileDurably } from './durable.js';
export {
  MANIFEST_FILENAME,
  MANIFEST_FORMAT,
  MANIFEST_STRATEGIES,
  MANIFEST_VERSION,
  type Manifest,
  ManifestError,
  type ManifestErrorCode,
  type ManifestFile,
  manifestFiles,
  ManifestSchema,
  readManifest,
  writeManifest,
} from './manifest.js';
