/**
 * `hotbackup list <root> [--json]`: the backups under a directory, or under an S3 root
 * `s3://bucket/root`, one level down (src/backup/backup_catalog.ts), oldest first. A
 * table on a terminal, JSON otherwise.
 *
 * Exit codes: 0 listed (incomplete directories included: listing is not judging);
 * 1 the root cannot be read (on S3: any S3 error, named by S3's code, or a root prefix
 * with no object under it, S3's missing directory); 2 a usage error (a malformed s3://
 * URL or an unusable AWS_* setting among them).
 */
import { parseArgs } from 'node:util';
import { readCatalogFrom } from '../backup/backup_catalog.js';
import { futureWarnings } from '../backup/retention.js';
import { catalogTable, entryJson, incompleteNotes, warningLines } from './catalog_output.js';
import { cannotRead, openCatalogRoot, type CatalogRoot } from './catalog_root.js';

const HELP = `Usage: hotbackup list <root> [--json]
       hotbackup list s3://bucket/root [--json]

Lists the backups in the directories under <root> (one level down), or under the
prefixes one level below an S3 root, oldest first:
when each finished, its size (and how much of it was taken from its base), its
strategy, its base if it is incremental, whether it is complete (has a manifest)
and whether it was verified ("-" when no verification is recorded). A root with
the backups of several dbpaths, mongods or machines gets a SOURCE column. Symbolic links
are shown, never followed. An unfinished backup on S3 shows the bytes its
prefix holds.

S3 is configured as the AWS CLI is: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
(or AWS_PROFILE and a shared credentials file), AWS_REGION, and AWS_ENDPOINT_URL_S3
(or AWS_ENDPOINT_URL) for an S3-compatible server.

A table on a terminal; JSON when the output is not a terminal, or with --json.

Options:
  --json       JSON even on a terminal
  -h, --help   this text
`;

export interface Output {
  write(text: string): void;
  readonly isTTY?: boolean;
}

export async function runList(args: string[], out: Output = process.stdout, err: Output = process.stderr): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, strict: true, allowPositionals: true, options: { json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } } });
  } catch (e) {
    err.write(`hotbackup list: ${(e as Error).message}\n`);
    return 2;
  }
  if (parsed.values.help === true) {
    out.write(HELP);
    return 0;
  }
  const [root, ...extra] = parsed.positionals;
  if (root === undefined || extra.length > 0) {
    err.write('hotbackup list: give exactly one directory or s3:// root: hotbackup list <root> [--json]\n');
    return 2;
  }
  let opened: CatalogRoot;
  try {
    opened = openCatalogRoot(root);
  } catch (e) {
    err.write(`hotbackup list: ${(e as Error).message}\n`);
    // A malformed s3:// URL or an unusable AWS_* value: what was given is wrong, decided
    // before any request, as verify and restore say it (exit 2).
    return 2;
  }
  try {
    return await listRoot(opened, parsed.values.json === true, out, err);
  } finally {
    opened.close();
  }
}

async function listRoot(opened: CatalogRoot, json: boolean, out: Output, err: Output): Promise<number> {
  let catalog;
  try {
    catalog = await readCatalogFrom(opened.source);
  } catch (e) {
    err.write(`hotbackup list: ${cannotRead(opened.root, e)}\n`);
    return 1;
  }
  const warnings = futureWarnings(catalog);
  if (json || out.isTTY !== true) {
    out.write(`${JSON.stringify({ root: opened.root, backups: catalog.map((entry) => entryJson(entry, catalog)), warnings }, null, 2)}\n`);
    return 0;
  }
  if (catalog.length === 0) {
    out.write(`No backup ${opened.holds} under ${opened.root}.\n`);
    return 0;
  }
  out.write(catalogTable(catalog) + incompleteNotes(catalog) + (warnings.length === 0 ? '' : `\n${warningLines(warnings)}`));
  return 0;
}
