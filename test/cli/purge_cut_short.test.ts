/**
 * `hotbackup purge` of a local root cut short between a backup's manifest and its files
 * (the fail point failPurgeAfterManifestDeletion): the directory left says it ended (its
 * hotbackup-incomplete.json, written before the manifest went), so the next
 * `purge --remove-incomplete` finishes the deletion instead of leaving files no purge
 * would touch ("not a backup of ours").
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runCli } from '../helpers/cli_run.js';
import { tempDir } from '../helpers/paths.js';
import { craftedManifest } from '../helpers/s3_backups.js';
import { MANIFEST_FILENAME, readManifest, serializeManifest } from '../../src/backup/manifest.js';
import { INCOMPLETE_MARKER_FILENAME, writePurgeMarker } from '../../src/backup/backup_marker.js';

/** A backup directory under `root` holding `files` and a manifest listing them. */
function putLocal(root: string, name: string, files: ReadonlyMap<string, Buffer>, finishedAt: Date): void {
  const dir = path.join(root, name);
  for (const [p, body] of files) {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), body);
  }
  fs.writeFileSync(path.join(dir, MANIFEST_FILENAME), serializeManifest(craftedManifest(files, { finishedAt }), path.join(dir, MANIFEST_FILENAME)));
}

describe('purge of a local root cut short', () => {
  const scratch = tempDir('purge-cut-short');
  after(() => scratch.remove());

  it('leaves a directory marked as ended, which the next purge --remove-incomplete deletes', async () => {
    const root = scratch.dir;
    putLocal(root, 'old', new Map([['a.wt', Buffer.from('a')], ['journal/log.1', Buffer.from('l')]]), new Date(Date.now() - 3_600_000));
    putLocal(root, 'new', new Map([['a.wt', Buffer.from('b')]]), new Date());
    const cut = await runCli(['purge', root, '--keep', '1'], { HOTBACKUP_TEST_FAILPOINTS: 'failPurgeAfterManifestDeletion' });
    assert.equal(cut.code, 1, cut.stderr);
    assert.deepEqual(fs.readdirSync(path.join(root, 'old')).sort(), ['a.wt', INCOMPLETE_MARKER_FILENAME, 'journal']);
    const listed = JSON.parse((await runCli(['list', root, '--json'])).stdout) as { backups: Array<{ name: string; incomplete: string | null }> };
    assert.match(listed.backups.find((b) => b.name === 'old')?.incomplete ?? '', /says it was aborted/);
    const again = await runCli(['purge', root, '--keep', '1', '--remove-incomplete']);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(fs.readdirSync(root), ['new']);
  });

  it('a manifest whose deletion fails keeps a complete backup without the purge marker; verify names a purge marker left beside a manifest', async () => {
    const root = path.join(scratch.dir, 'refused');
    putLocal(root, 'old', new Map([['a.wt', Buffer.from('a')]]), new Date(Date.now() - 3_600_000));
    putLocal(root, 'new', new Map([['a.wt', Buffer.from('b')]]), new Date());
    const cut = await runCli(['purge', root, '--keep', '1'], { HOTBACKUP_TEST_FAILPOINTS: 'failPurgeManifestDeletion' });
    assert.equal(cut.code, 1, cut.stderr);
    assert.deepEqual(fs.readdirSync(path.join(root, 'old')).sort(), ['a.wt', MANIFEST_FILENAME], 'the marker went again');
    const clean = await runCli(['verify', path.join(root, 'old')]);
    assert.equal(clean.code, 0, clean.stderr);
    assert.doesNotMatch(clean.stdout + clean.stderr, /hotbackup-incomplete/);
    // Had the marker's own deletion failed too, verify says what it is.
    await writePurgeMarker(path.join(root, 'old'), await readManifest(path.join(root, 'old')));
    const noted = await runCli(['verify', path.join(root, 'old')]);
    assert.equal(noted.code, 0, noted.stderr);
    assert.match(noted.stdout + noted.stderr, /a purge of it was cut short/);
  });
});
