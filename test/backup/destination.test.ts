/**
 * prepareDestination on real temp directories: the reply a client would get for each
 * bad destination, what is created (only the last level, under an existing parent)
 * and what is fsync'ed (only that parent). Failures are injected through DestinationFs.
 */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pathsOverlap, prepareDestination, type DestinationFs } from '../../src/backup/destination.js';
import { fsyncDirectory } from '../../src/backup/durable.js';
import { strerror } from '../../src/backup/io_error.js';
import { tempDir } from '../helpers/paths.js';

interface Recorder {
  dirs: DestinationFs;
  made: string[];
  fsynced: string[];
}

/** The real directory operations, every mkdir and fsync recorded; `mkdir` may be replaced. */
function recordingFs(mkdir: (dir: string) => Promise<void> = (dir) => fsp.mkdir(dir)): Recorder {
  const made: string[] = [];
  const fsynced: string[] = [];
  return {
    made,
    fsynced,
    dirs: {
      async mkdir(dir) {
        made.push(dir);
        await mkdir(dir);
      },
      async fsyncDirectory(dir) {
        fsynced.push(dir);
        await fsyncDirectory(dir);
      },
    },
  };
}

/** A system error as Node's fs raises it (negative errno, code, syscall, path). */
function systemError(code: string, errno: number, syscall: string, file: string): Error {
  return Object.assign(new Error(`${code}: ${syscall} '${file}'`), { code, errno: -errno, syscall, path: file });
}

/** The reply document the client would receive for the rejection. */
async function replyTo(promise: Promise<unknown>): Promise<Record<string, unknown>> {
  let reply: Record<string, unknown> | undefined;
  await assert.rejects(promise, (err: unknown) => {
    const toReply = (err as { toReply?: unknown }).toReply;
    assert.equal(typeof toReply, 'function', `expected a server error, got ${String(err)}`);
    reply = (err as { toReply(): Record<string, unknown> }).toReply();
    return true;
  });
  return reply as Record<string, unknown>;
}

function badValue(errmsg: string): Record<string, unknown> {
  return { ok: 0, errmsg, code: 2, codeName: 'BadValue' };
}

/** Every path under `dir`, relative, sorted: what a test created there. */
function tree(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

describe('prepareDestination', () => {
  let scratch: ReturnType<typeof tempDir>;
  let dbpath: ReturnType<typeof tempDir>;
  beforeEach(() => {
    scratch = tempDir('dest');
    dbpath = tempDir('dest-dbpath');
  });
  afterEach(() => {
    scratch.remove();
    dbpath.remove();
  });

  it('refuses a destination whose parent is missing, naming the parent, and creates nothing', async () => {
    const rec = recordingFs();
    const destination = path.join(scratch.dir, 'non-existent', 'path');
    assert.deepEqual(
      await replyTo(prepareDestination(destination, dbpath.dir, rec.dirs)),
      badValue(`Backup destination ${destination} cannot be created: its parent directory ${path.join(scratch.dir, 'non-existent')} does not exist`),
    );
    assert.deepEqual(tree(scratch.dir), []);
    assert.deepEqual(rec.made, []);
    assert.deepEqual(rec.fsynced, []);
  });

  it('refuses a destination whose parent is a file, naming it, and creates nothing', async () => {
    const rec = recordingFs();
    const file = path.join(scratch.dir, 'a-file');
    fs.writeFileSync(file, 'x');
    const destination = path.join(file, 'backup');
    assert.deepEqual(
      await replyTo(prepareDestination(destination, dbpath.dir, rec.dirs)),
      badValue(`Backup destination ${destination} cannot be created: its parent ${file} is not a directory`),
    );
    // Deeper below the file, the parent itself cannot exist.
    const deeper = path.join(file, 'sub', 'backup');
    assert.deepEqual(
      await replyTo(prepareDestination(deeper, dbpath.dir, rec.dirs)),
      badValue(`Backup destination ${deeper} cannot be created: its parent directory ${path.join(file, 'sub')} does not exist`),
    );
    assert.deepEqual(tree(scratch.dir), ['a-file']);
    assert.equal(fs.readFileSync(file, 'utf8'), 'x');
    assert.deepEqual(rec.made, []);
  });

  it('creates exactly the last level and fsyncs exactly its parent', async () => {
    const rec = recordingFs();
    const destination = path.join(scratch.dir, 'backup');
    // A trailing slash names the same directory.
    assert.equal(await prepareDestination(`${destination}/`, dbpath.dir, rec.dirs), destination);
    assert.ok(fs.statSync(destination).isDirectory());
    assert.deepEqual(tree(scratch.dir), ['backup']);
    assert.deepEqual(rec.made, [destination]);
    assert.deepEqual(rec.fsynced, [scratch.dir]);
  });

  it('creates nothing and fsyncs nothing for an existing empty directory, and makes it 0700', async () => {
    const rec = recordingFs();
    fs.chmodSync(scratch.dir, 0o777);
    assert.equal(await prepareDestination(scratch.dir, dbpath.dir, rec.dirs), scratch.dir);
    assert.deepEqual(rec.made, []);
    assert.deepEqual(rec.fsynced, []);
    assert.equal(fs.statSync(scratch.dir).mode & 0o7777, 0o700);
  });

  it('refuses a non-empty directory and a file with Percona texts', async () => {
    fs.writeFileSync(path.join(scratch.dir, 'keep'), 'x');
    assert.deepEqual(await replyTo(prepareDestination(scratch.dir, dbpath.dir)), badValue(`Backup directory ${scratch.dir} is not empty`));
    const file = path.join(scratch.dir, 'keep');
    assert.deepEqual(await replyTo(prepareDestination(file, dbpath.dir)), badValue(`Backup destination ${file} is not a directory`));
    assert.deepEqual(tree(scratch.dir), ['keep']);
  });

  it('refuses relative, empty and non-string destinations with Percona texts', async () => {
    const rec = recordingFs();
    assert.deepEqual(await replyTo(prepareDestination('relative/dir', dbpath.dir, rec.dirs)), badValue('Destination path must be absolute'));
    assert.deepEqual(await replyTo(prepareDestination('', dbpath.dir, rec.dirs)), badValue("invalid destination directory: ''"));
    assert.deepEqual(await replyTo(prepareDestination(0, dbpath.dir, rec.dirs)), badValue("invalid destination directory: '0'"));
    assert.deepEqual(await replyTo(prepareDestination(null, dbpath.dir, rec.dirs)), badValue("invalid destination directory: 'null'"));
    assert.deepEqual(rec.made, []);
  });

  it('refuses a destination inside the dbpath, and one that holds the dbpath', async () => {
    const rec = recordingFs();
    const inside = path.join(dbpath.dir, 'backup');
    assert.deepEqual(
      await replyTo(prepareDestination(inside, dbpath.dir, rec.dirs)),
      badValue(`Backup destination ${inside} must be outside the dbpath ${dbpath.dir}`),
    );
    const above = path.dirname(dbpath.dir);
    assert.deepEqual(
      await replyTo(prepareDestination(above, dbpath.dir, rec.dirs)),
      badValue(`Backup destination ${above} must be outside the dbpath ${dbpath.dir}`),
    );
    assert.deepEqual(tree(dbpath.dir), []);
    assert.deepEqual(rec.made, []);
  });

  it("refuses <dbpath>/..x: a name starting with '..' is inside the dbpath all the same", async () => {
    const rec = recordingFs();
    const dotted = path.join(dbpath.dir, '..x');
    assert.deepEqual(
      await replyTo(prepareDestination(dotted, dbpath.dir, rec.dirs)),
      badValue(`Backup destination ${dotted} must be outside the dbpath ${dbpath.dir}`),
    );
    const state = path.join(scratch.dir, 'state');
    const inState = path.join(state, '..staging');
    assert.deepEqual(
      await replyTo(prepareDestination(inState, dbpath.dir, rec.dirs, { protectedDirs: [{ name: "the proxy's state dir", dir: state }] })),
      badValue(`Backup destination ${inState} must be outside the proxy's state dir ${state}`),
    );
    assert.deepEqual(tree(dbpath.dir), []);
    assert.deepEqual(rec.made, []);
    assert.equal(pathsOverlap(dotted, dbpath.dir), true);
    assert.equal(pathsOverlap(`${dbpath.dir}..x`, dbpath.dir), false, 'a sibling whose name merely starts the same is not inside');
  });

  describe('when the destination appears between the check and the mkdir', () => {
    /** mkdir as if another process had just run `prepare` on the path, then ours fails with EEXIST. */
    const racing = (prepare: (dir: string) => void) => async (dir: string): Promise<void> => {
      prepare(dir);
      await fsp.mkdir(dir);
    };

    it('accepts an empty directory, and still fsyncs its parent', async () => {
        const rec = recordingFs(racing((dir) => fs.mkdirSync(dir)));
      const destination = path.join(scratch.dir, 'backup');
      assert.equal(await prepareDestination(destination, dbpath.dir, rec.dirs), destination);
      assert.deepEqual(rec.fsynced, [scratch.dir]);
    });

    it('refuses a directory that is no longer empty', async () => {
        const rec = recordingFs(racing((dir) => {
        fs.mkdirSync(dir);
        fs.writeFileSync(path.join(dir, 'theirs'), 'x');
      }));
      const destination = path.join(scratch.dir, 'backup');
      assert.deepEqual(await replyTo(prepareDestination(destination, dbpath.dir, rec.dirs)), badValue(`Backup directory ${destination} is not empty`));
      assert.deepEqual(rec.fsynced, []);
    });

    it('refuses a file', async () => {
        const rec = recordingFs(racing((dir) => fs.writeFileSync(dir, 'x')));
      const destination = path.join(scratch.dir, 'backup');
      assert.deepEqual(await replyTo(prepareDestination(destination, dbpath.dir, rec.dirs)), badValue(`Backup destination ${destination} is not a directory`));
    });

    it('reports a missing parent when the parent vanishes instead', async () => {
        const parent = path.join(scratch.dir, 'parent');
      fs.mkdirSync(parent);
      const rec = recordingFs(racing(() => fs.rmdirSync(parent)));
      const destination = path.join(parent, 'backup');
      assert.deepEqual(
        await replyTo(prepareDestination(destination, dbpath.dir, rec.dirs)),
        badValue(`Backup destination ${destination} cannot be created: its parent directory ${parent} does not exist`),
      );
    });
  });

  it('refuses a destination that reaches into the dbpath through a symbolic link', async () => {
    const rec = recordingFs();
    const link = path.join(scratch.dir, 'backups');
    fs.symlinkSync(dbpath.dir, link);
    const throughLink = path.join(link, 'nightly');
    assert.deepEqual(
      await replyTo(prepareDestination(throughLink, dbpath.dir, rec.dirs)),
      badValue(`Backup destination ${throughLink} must be outside the dbpath ${dbpath.dir}`),
    );
    // And a dbpath given through a link, with the destination inside its target.
    const dbpathLink = path.join(scratch.dir, 'db');
    fs.symlinkSync(dbpath.dir, dbpathLink);
    const inside = path.join(dbpath.dir, 'backup');
    assert.deepEqual(
      await replyTo(prepareDestination(inside, dbpathLink, rec.dirs)),
      badValue(`Backup destination ${inside} must be outside the dbpath ${dbpathLink}`),
    );
    assert.deepEqual(tree(dbpath.dir), []);
    assert.deepEqual(rec.made, []);
  });

  it('reports a dangling symbolic link as the EEXIST mkdir gives, creating nothing through it', async () => {
    const destination = path.join(scratch.dir, 'latest');
    const target = path.join(scratch.dir, 'gone');
    fs.symlinkSync(target, destination);
    assert.deepEqual(await replyTo(prepareDestination(destination, dbpath.dir)), {
      ok: 0,
      errmsg: `creating the backup destination failed: mkdir ${destination}: ${strerror(17)}`,
      code: 96,
      codeName: 'OperationFailed',
      errno: 17,
      strerror: strerror(17),
    });
    assert.equal(fs.existsSync(target), false);
  });

  it('reports a failing mkdir as OperationFailed with errno and strerror', async () => {
    const destination = path.join(scratch.dir, 'backup');
    const rec = recordingFs(async (dir) => {
      throw systemError('EACCES', 13, 'mkdir', dir);
    });
    assert.deepEqual(await replyTo(prepareDestination(destination, dbpath.dir, rec.dirs)), {
      ok: 0,
      errmsg: `creating the backup destination failed: mkdir ${destination}: ${strerror(13)}`,
      code: 96,
      codeName: 'OperationFailed',
      errno: 13,
      strerror: strerror(13),
    });
    assert.deepEqual(rec.fsynced, []);
  });

  it('reports a failing fsync of the parent as OperationFailed', async () => {
    const destination = path.join(scratch.dir, 'backup');
    const dirs: DestinationFs = {
      mkdir: (dir) => fsp.mkdir(dir),
      async fsyncDirectory(dir) {
        throw systemError('EIO', 5, 'fsync', dir);
      },
    };
    assert.deepEqual(await replyTo(prepareDestination(destination, dbpath.dir, dirs)), {
      ok: 0,
      errmsg: `making the backup destination durable failed: fsync ${scratch.dir}: ${strerror(5)}`,
      code: 96,
      codeName: 'OperationFailed',
      errno: 5,
      strerror: strerror(5),
    });
  });
});
