/**
 * `s3://bucket/prefix` as a backup destination, base, or root: parsed once, checked
 * before any request is made, and turned into object keys. A backup on S3 has the
 * layout of one on disk: each file at `<prefix>/<relativePath>` (docs/s3.md).
 *
 * Bucket names follow S3's rules for new buckets (lowercase letters, digits, dots and
 * hyphens, 3-63 characters, starting and ending with a letter or digit, not an IP
 * address): radosgw relaxes them only when told to, and a name AWS refuses would make a
 * backup that cannot move there. The prefix is a path of non-empty segments without `.`
 * or `..`: keys are compared by their bytes, so `a//b` and `a/./b` would be other
 * objects than the operator meant, and `..` means nothing to S3 but everything to
 * whoever restores into a directory.
 */
import { CommandError, ErrorCodes } from '../errors.js';

export const S3_SCHEME = 's3://';

export interface S3Location {
  readonly bucket: string;
  /** Without a leading or trailing '/'; '' for the bucket's top. */
  readonly prefix: string;
}

/** Whether `value` is meant as an S3 location (it may still be a malformed one). */
export function isS3Url(value: unknown): value is string {
  return typeof value === 'string' && value.toLowerCase().startsWith(S3_SCHEME);
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const IP_ADDRESS = /^\d{1,3}(\.\d{1,3}){3}$/;

/**
 * Parses `s3://bucket[/prefix][/]`. Throws a BadValue CommandError naming what is wrong,
 * in the words of `what` (e.g. 'Backup destination').
 */
export function parseS3Url(url: string, what = 'S3 location'): S3Location {
  const bad = (why: string): CommandError => new CommandError(ErrorCodes.BadValue, `${what} ${url} is not a valid S3 location: ${why}`);
  if (!isS3Url(url)) throw bad(`it must start with ${S3_SCHEME}`);
  const rest = url.slice(S3_SCHEME.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  // `s3://key:secret@bucket/…` is no S3 URL (a bucket name has no '@') but looks like one
  // carrying credentials (RFC 3986 §3.2.1 userinfo): refused without repeating it, so
  // that the secret reaches no reply, log or error of any caller.
  if (bucket.includes('@')) {
    throw new CommandError(
      ErrorCodes.BadValue,
      `${what} s3://…@… is not a valid S3 location: an s3:// URL carries no credentials (they come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)`,
    );
  }
  let prefix = slash === -1 ? '' : rest.slice(slash + 1);
  if (bucket === '') throw bad('it names no bucket');
  if (!BUCKET.test(bucket) || bucket.includes('..') || IP_ADDRESS.test(bucket)) {
    throw bad(`'${bucket}' is not a valid bucket name (3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit)`);
  }
  if (prefix.endsWith('/')) prefix = prefix.slice(0, -1);
  if (prefix !== '') {
    for (const segment of prefix.split('/')) {
      if (segment === '') throw bad("the path has an empty segment ('//')");
      if (segment === '.' || segment === '..') throw bad(`the path has a '${segment}' segment`);
    }
  }
  // Control characters make keys no tool lists legibly, and some S3 servers refuse them.
  if (/[\u0000-\u001f\u007f\\]/.test(prefix)) throw bad('the path has a control character or a backslash');
  // S3 keys are at most 1024 bytes; leave room for the files' own relative paths.
  if (Buffer.byteLength(prefix) > 512) throw bad('the path is longer than 512 bytes');
  return Object.freeze({ bucket, prefix });
}

/** The location's canonical URL: `s3://bucket/prefix`, or `s3://bucket` for the top. */
export function s3Url(location: S3Location): string {
  return location.prefix === '' ? `${S3_SCHEME}${location.bucket}` : `${S3_SCHEME}${location.bucket}/${location.prefix}`;
}

/** The key of `relativePath` (a '/'-separated path, as in a manifest) under the location. */
export function objectKey(location: S3Location, relativePath: string): string {
  return location.prefix === '' ? relativePath : `${location.prefix}/${relativePath}`;
}

/** What a listing under the location is asked for: every key below it, and nothing beside it (`p/` not `p`). */
export function listingPrefix(location: S3Location): string {
  return location.prefix === '' ? '' : `${location.prefix}/`;
}

/** The location one level down: a backup `name` under a root. */
export function childLocation(location: S3Location, name: string): S3Location {
  return Object.freeze({ bucket: location.bucket, prefix: objectKey(location, name) });
}

/** Whether `location` lies strictly below `root` (same bucket, a longer prefix under it). */
export function isBelow(location: S3Location, root: S3Location): boolean {
  if (location.bucket !== root.bucket || location.prefix === '') return false;
  return root.prefix === '' || location.prefix.startsWith(`${root.prefix}/`);
}

/** A key's path relative to the location, or undefined when it is not below it. */
export function relativeKey(location: S3Location, key: string): string | undefined {
  const below = listingPrefix(location);
  return key.startsWith(below) && key.length > below.length ? key.slice(below.length) : undefined;
}
