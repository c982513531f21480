/**
 * The manifest's per-file checksum (XXH3-64, seed 0, 16 lowercase hex digits),
 * computed here in one call over the whole buffer: independent of the product's
 * streaming over chunks (src/backup/checksum.ts), whose chunk boundaries are what the
 * copy tests exercise. test/backup/checksum.test.ts pins both to xxhsum's output.
 */
import { xxh3 } from '@node-rs/xxhash';

export function xxh3Hex(data: Uint8Array | string): string {
  return xxh3.xxh64(typeof data === 'string' ? Buffer.from(data, 'utf8') : data).toString(16).padStart(16, '0');
}
