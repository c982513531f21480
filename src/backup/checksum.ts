/**
 * The per-file checksum of a backup: XXH3-64, streamed over the chunks the copy reads.
 * Why XXH3 and not sha256 is in manifest.ts, which names the algorithm for readers.
 * Shared by the copy workers (file_copy.ts) and the manifest, so both agree on it.
 */
import { xxh3 } from '@node-rs/xxhash';

/** The manifest's name for it; also what `xxhsum -H3` computes (xxHash's CLI, 0.8 and later). */
export const CHECKSUM_ALGORITHM = 'xxh3-64';

/** A checksum being fed, chunk by chunk, in file order. */
export interface RunningChecksum {
  update(chunk: Uint8Array): void;
  /** 16 lowercase hex digits, zero-padded, as `xxhsum -H3` prints it. Ends the checksum. */
  hex(): string;
}

export function startChecksum(): RunningChecksum {
  // Seed 0: the one xxhsum and every other XXH3 tool use by default.
  const state = xxh3.Xxh3.withSeed(0n);
  return {
    update(chunk) {
      state.update(chunk);
    },
    hex() {
      return state.digest().toString(16).padStart(16, '0');
    },
  };
}

/** A file whose bytes do not hash to what its manifest says: it was changed or damaged since the backup. */
export class ChecksumMismatchError extends Error {
  constructor(
    /** The file's path in the backup, as the manifest lists it. */
    readonly relativePath: string,
    /** The file that was read. */
    readonly path: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`${relativePath} is corrupted: its ${CHECKSUM_ALGORITHM} checksum is ${actual}, the manifest says ${expected}`);
    this.name = 'ChecksumMismatchError';
  }
}
