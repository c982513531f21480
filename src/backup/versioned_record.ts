/**
 * The proxy's own small JSON files that must survive a restart (the run state file, the
 * scheduled job's record): each names its format and version, is validated with zod on
 * read, and is never trusted when it does not pass: it is renamed aside, durably, for the
 * operator to look at (`<file>.corrupt-<time>`).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { z } from 'zod';
import { fsyncDirectory } from './durable.js';
import { describeIssues } from './manifest.js';

export interface RecordKind<T> {
  /** The `format` field the file must carry. */
  format: string;
  /** The one `version` this build reads. */
  version: number;
  schema: z.ZodType<T>;
  /** How the file is named in a reason, e.g. "state file". */
  what: string;
}

/**
 * The text of `file`, or undefined when there is none. Throws when it exists but cannot
 * be read at all (EACCES, EIO): a record that may hold a lock must not pass for absent.
 */
export async function readTextIfPresent(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** `text` parsed and validated as a `kind` record, or why it is not one. */
export function parseVersionedRecord<T>(text: string, kind: RecordKind<T>): { value: T; why?: undefined } | { value?: undefined; why: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { why: `it is not valid JSON (${(err as Error).message})` };
  }
  const header = json as { format?: unknown; version?: unknown } | null;
  if (header === null || typeof header !== 'object' || header.format !== kind.format) {
    return { why: `it is not a ${kind.what} of this proxy (format ${JSON.stringify(header?.format)}, expected "${kind.format}")` };
  }
  if (header.version !== kind.version) {
    return { why: `it is ${kind.what} version ${JSON.stringify(header.version)}; this build reads version ${kind.version}` };
  }
  const checked = kind.schema.safeParse(json);
  if (!checked.success) return { why: `it is not a valid ${kind.what}: ${describeIssues(checked.error)}` };
  return { value: checked.data };
}

/** Renames `file` to `<file>.corrupt-<now>`, durably, and returns the new name. */
export async function moveAsideCorrupt(file: string, now: Date): Promise<string> {
  const movedTo = `${file}.corrupt-${now.toISOString().replace(/[:.]/g, '-')}`;
  await fs.rename(file, movedTo);
  await fsyncDirectory(path.dirname(file));
  return movedTo;
}

export type RecordFileRead<T> = { kind: 'absent' } | { kind: 'invalid'; reason: string } | { kind: 'present'; value: T };

/**
 * The JSON file `file` validated with `schema`, for the files a backup directory carries
 * beside its data (the incomplete marker, the verification record): absent, invalid
 * (with why, for a message that starts with the file's name), or present. Never throws.
 */
export async function readRecordFile<T>(file: string, schema: z.ZodType<T>, what: string): Promise<RecordFileRead<T>> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    return { kind: 'invalid', reason: `cannot be read (${(err as Error).message})` };
  }
  return parseRecordText(text, schema, what);
}

/** A record's text, as read from a file or an S3 object, parsed and validated. */
export function parseRecordText<T>(text: string, schema: z.ZodType<T>, what: string): RecordFileRead<T> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { kind: 'invalid', reason: 'is not valid JSON (torn by a crash as it was written?)' };
  }
  const checked = schema.safeParse(json);
  return checked.success ? { kind: 'present', value: checked.data } : { kind: 'invalid', reason: `is not a valid ${what}: ${describeIssues(checked.error)}` };
}
