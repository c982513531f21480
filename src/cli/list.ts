/**
 * `hotbackup list <root> [--json]`: the backups under a directory, one level down
 * (src/backup/backup_catalog.ts), oldest first. A table on a terminal, JSON otherwise.
 *
 * Exit codes: 0 listed (incomplete directories included: listing is not judging);
 * 1 the root cannot be read; 2 a usage error.
 */
import { parseArgs } from 'node:util';
import path from 'node:path';
import { readCatalog } from '../backup/backup_catalog.js';
import { futureWarnings } from '../backup/retention.js';
import { catalogTable, entryJson, incompleteNotes, warningLines } from './catalog_output.js';

const HELP = `Usage: hotbackup list <root> [--json]

Lists the backups in the directories under <root> (one level down), oldest first:
when each finished, its size (and how much of it was taken from its base), its
strategy, its base if it is incremental, whether it is complete (has a manifest)
and whether it was verified ("-" when no verification is recorded). A root with
the backups of several dbpaths or mongods gets a SOURCE column. Symbolic links
are shown, never followed.

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
    err.write('hotbackup list: give exactly one directory: hotbackup list <root> [--json]\n');
    return 2;
  }
  let catalog;
  try {
    catalog = await readCatalog(root);
  } catch (e) {
    err.write(`hotbackup list: cannot read ${path.resolve(root)}: ${(e as Error).message}\n`);
    return 1;
  }
  const warnings = futureWarnings(catalog);
  if (parsed.values.json === true || out.isTTY !== true) {
    out.write(`${JSON.stringify({ root: path.resolve(root), backups: catalog.map((entry) => entryJson(entry, catalog)), warnings }, null, 2)}\n`);
    return 0;
  }
  if (catalog.length === 0) {
    out.write(`No backup directories under ${path.resolve(root)}.\n`);
    return 0;
  }
  out.write(catalogTable(catalog) + incompleteNotes(catalog) + (warnings.length === 0 ? '' : `\n${warningLines(warnings)}`));
  return 0;
}
