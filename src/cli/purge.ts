/**
 * `hotbackup purge <root> --keep N [--dry-run] [--remove-incomplete] [--json]`: deletes
 * the oldest complete backups under <root> (a directory, or an S3 root `s3://bucket/root`)
 * beyond the newest N (src/backup/retention.ts decides; the root's PurgeStore deletes).
 * A table-like plan on a terminal, JSON otherwise.
 *
 * Exit codes: 0 done (or, with --dry-run, planned); 1 the root cannot be read or a
 * deletion failed (the rest are not attempted; on S3, the error names S3's code);
 * 2 a usage error (a malformed s3:// URL or an unusable AWS_* setting among them).
 */
import { parseArgs } from 'node:util';
import { readCatalogFrom, type CatalogEntry } from '../backup/backup_catalog.js';
import { abandonedSourceWarnings, describeSource, futureWarnings, planPurge, sourceGroups, type PurgeItem } from '../backup/retention.js';
import { formatBytes } from '../backup/units.js';
import { entryJson, warningLines } from './catalog_output.js';
import type { Output } from './list.js';
import { cannotRead, openCatalogRoot, type CatalogRoot } from './catalog_root.js';

const HELP = `Usage: hotbackup purge <root> --keep N [--dry-run] [--remove-incomplete] [--json]
       hotbackup purge s3://bucket/root --keep N [...]

Deletes the oldest complete backups under <root> (one level down: directories, or
the prefixes below an S3 root), keeping the newest N (by when they finished) of
each source: each dbpath and mongod (and each machine whose proxy took them, when
the manifest names it) whose backups the root holds keeps its own N.
Deleting the base of a kept incremental backup is safe: the kept one holds its
own clones or hard links (on S3, server-side copies) of the files it shares with
it. A backup is first marked as being deleted (its hotbackup-incomplete.json says
aborted), then its manifest is deleted, so a deletion cut short leaves an
incomplete backup that the next purge --remove-incomplete finishes, never one that
looks complete. On S3, the multipart uploads
left under a deleted backup's prefix are aborted too.

Directories without a manifest are listed and left alone, and so are symbolic
links: purge never deletes through one.

S3 is configured as the AWS CLI is (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or
AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL_S3): see hotbackup list --help.

Options:
  --keep N               complete backups to keep of each source, newest first
                         (at least 1)  [required]
  --dry-run              say what would be deleted, delete nothing
  --remove-incomplete    delete unfinished backups too, those whose
                         hotbackup-incomplete.json says they were aborted, failed
                         or interrupted (or whose proxy is gone); never one still
                         being written, nor a directory without that marker
  --json                 JSON even on a terminal
  -h, --help             this text
`;

const VERBS: Record<PurgeItem['action'], { done: string; planned: string }> = {
  keep: { done: 'kept', planned: 'keep' },
  remove: { done: 'deleted', planned: 'would delete' },
  leave: { done: 'left', planned: 'leave' },
};

export async function runPurge(args: string[], out: Output = process.stdout, err: Output = process.stderr): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: {
        keep: { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        'remove-incomplete': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    err.write(`hotbackup purge: ${(e as Error).message}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    out.write(HELP);
    return 0;
  }
  const [root, ...extra] = positionals;
  if (root === undefined || extra.length > 0) {
    err.write('hotbackup purge: give exactly one directory or s3:// root: hotbackup purge <root> --keep N\n');
    return 2;
  }
  const keep = Number(values.keep);
  if (values.keep === undefined || !/^\d+$/.test(values.keep) || !Number.isSafeInteger(keep) || keep < 1) {
    err.write(`hotbackup purge: --keep must be a whole number of at least 1 (the newest backups to keep), got ${values.keep ?? 'nothing'}\n`);
    return 2;
  }
  let opened: CatalogRoot;
  try {
    opened = openCatalogRoot(root);
  } catch (e) {
    err.write(`hotbackup purge: ${(e as Error).message}\n`);
    // A malformed s3:// URL or an unusable AWS_* value: what was given is wrong, decided
    // before any request, as verify and restore say it (exit 2).
    return 2;
  }
  try {
    return await purgeRoot(opened, { keep, dryRun: values['dry-run'] === true, removeIncomplete: values['remove-incomplete'] === true, json: values.json === true }, out, err);
  } finally {
    opened.close();
  }
}

async function purgeRoot(opened: CatalogRoot, flags: { keep: number; dryRun: boolean; removeIncomplete: boolean; json: boolean }, out: Output, err: Output): Promise<number> {
  const { keep, dryRun } = flags;
  let catalog;
  let plan;
  try {
    catalog = await readCatalogFrom(opened.source);
    plan = await planPurge(catalog, { keep, removeIncomplete: flags.removeIncomplete, store: opened.store });
  } catch (e) {
    err.write(`hotbackup purge: ${cannotRead(opened.root, e)}\n`);
    return 1;
  }
  const removed = new Set<PurgeItem>();
  let failure: string | undefined;
  if (!dryRun) {
    for (const item of plan.filter((i) => i.action === 'remove')) {
      try {
        await opened.store.remove(item.entry);
        removed.add(item);
      } catch (e) {
        failure = `could not delete ${item.entry.path}: ${(e as Error).message}; the backups after it were not deleted`;
        break;
      }
    }
  }
  const warnings = [...futureWarnings(catalog), ...abandonedSourceWarnings(catalog)];
  if (flags.json || out.isTTY !== true) {
    const backups = plan.map((item) => ({ ...entryJson(item.entry, catalog), action: item.action, reason: item.reason, removed: removed.has(item) }));
    out.write(`${JSON.stringify({ root: opened.root, keep, dryRun, backups, warnings }, null, 2)}\n`);
  } else {
    out.write(planText(plan, catalog, keep, (item) => (dryRun || (item.action === 'remove' && !removed.has(item)) ? VERBS[item.action].planned : VERBS[item.action].done)));
    out.write(warningLines(warnings));
    if (dryRun) out.write('Dry run: nothing was deleted.\n');
  }
  if (failure !== undefined) {
    err.write(`hotbackup purge: ${failure}\n`);
    return 1;
  }
  return 0;
}

/**
 * The plan for a person: under a heading per source (what --keep counts apart), its
 * backups oldest first; then what is no complete backup. One line each: verb, name,
 * when it finished, size, and why.
 */
function planText(plan: readonly PurgeItem[], catalog: readonly CatalogEntry[], keep: number, verbOf: (item: PurgeItem) => string): string {
  const line = (item: PurgeItem): string => {
    const bytes = item.entry.manifest?.totals.bytes ?? item.entry.bytesHeld;
    const size = bytes === undefined ? '' : `, ${formatBytes(bytes)}`;
    return `${verbOf(item).padEnd(12)} ${item.entry.name} (${item.entry.time.toISOString().slice(0, 19)}Z${size}): ${item.reason}\n`;
  };
  const byEntry = new Map(plan.map((item) => [item.entry, item]));
  let text = '';
  for (const group of sourceGroups(catalog)) {
    text += `Backups of ${describeSource(group.source)}: ${group.entries.length}, keeping the newest ${Math.min(keep, group.entries.length)}\n`;
    for (const entry of group.entries) {
      const item = byEntry.get(entry);
      if (item !== undefined) text += line(item);
    }
  }
  const others = plan.filter((item) => item.entry.manifest === undefined);
  if (others.length > 0) text += `Not complete backups:\n${others.map(line).join('')}`;
  return text;
}
