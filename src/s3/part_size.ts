/**
 * How a file is cut into the parts of a multipart upload, within S3's limits
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html): at most 10,000
 * parts, each of 5 MiB to 5 GiB except the last, and one PutObject or CopyObject of at
 * most 5 GiB.
 *
 * Parts are at least 8 MiB (the AWS CLI's default multipart_chunksize): fewer requests
 * than S3's 5 MiB floor, and a part of each copy thread's buffers stays small. A file of
 * more than 10,000 such parts (78 GiB) gets larger parts, just enough for 10,000 of them,
 * rounded up to a whole MiB: memory grows with the largest file, never with the database.
 */
export const MIB = 1024 * 1024;
export const MAX_PARTS = 10_000;
/** S3's floor for every part but the last; radosgw's rgw_multipart_min_part_size is the same. */
export const S3_MIN_PART_SIZE = 5 * MIB;
export const DEFAULT_MIN_PART_SIZE = 8 * MIB;
/** The largest part, and the largest object one PutObject or CopyObject may write. */
export const MAX_SINGLE_REQUEST_SIZE = 5 * 1024 * MIB;
/** S3's largest object: 5 TiB. */
export const MAX_OBJECT_SIZE = 5 * 1024 * 1024 * MIB;
/** A part of a server-side copy moves no byte through us: larger parts, fewer requests. */
export const COPY_PART_SIZE = 512 * MIB;

/** The part size for a file of `size` bytes: at least `minPartSize`, and small enough a count of parts. */
export function partSizeFor(size: number, minPartSize = DEFAULT_MIN_PART_SIZE): number {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`size must be a byte count, got ${size}`);
  checkMinPartSize(minPartSize);
  if (size > MAX_OBJECT_SIZE) throw new RangeError(`a file of ${size} bytes is larger than S3's largest object (5 TiB)`);
  const needed = Math.ceil(Math.ceil(size / MAX_PARTS) / MIB) * MIB;
  return Math.max(minPartSize, needed);
}

/** The parts of a file of `size` bytes cut at `partSize`: how many. A file of 0 bytes has none. */
export function partCount(size: number, partSize: number): number {
  return Math.ceil(size / partSize);
}

export function checkMinPartSize(minPartSize: number): number {
  if (!Number.isSafeInteger(minPartSize) || minPartSize < S3_MIN_PART_SIZE || minPartSize > MAX_SINGLE_REQUEST_SIZE) {
    throw new RangeError(`the part size must be between 5 MiB and 5 GiB, got ${minPartSize}`);
  }
  return minPartSize;
}
