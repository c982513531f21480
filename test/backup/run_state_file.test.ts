/**
 * The state file of a running backup: written durably (each change: temp file, fsync,
 * rename over, fsync of the directory; the removal: unlink, fsync of the directory), read
 * back exactly, and never trusted when it is not ours or not whole.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { RunStateFile, readStateFile, stateFilePath, STATE_FORMAT, STATE_VERSION, writeStateFile, type RunState } from '../../src/backup/run_state_file.js';
import { markWatchdogOutcome } from '../../src/backup/strategies/recorded_lock.js';
import { createLogger } from '../../src/log.js';
import { CLI, tempDir } from '../helpers/paths.js';

const BACKUP_ID = '0b7c1f4e-8d0a-4c1e-9f4b-2a6f3e1d5c7a';
const log = createLogger({ name: 'test', format: 'json', level: 'silent' });

function strace(): string | undefined {
  const probe = spawnSync('strace', ['-qq', '-e', 'trace=none', 'true']);
  return probe.error === undefined && probe.status === 0 ? undefined : 'strace is not installed or cannot trace here (ptrace refused)';
}

/**
 * The file-system calls of a script on files in `dir`, in order: 'create T', 'fsync T',
 * 'rename T state.json', 'open .', 'fsync .', 'unlink state.json'; T is any temp file.
 */
function traceCalls(dir: string, script: string): string[] {
  const out = path.join(dir, '..', 'trace');
  const run = spawnSync(
    'strace',
    ['-f', '-qq', '-o', out, '-e', 'trace=openat,fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat,close', process.execPath, '--input-type=module', '-e', script],
    // One thread does every fs call, so no syscall of ours is split across lines.
    { env: { ...process.env, UV_THREADPOOL_SIZE: '1' }, encoding: 'utf8' },
  );
  assert.equal(run.status, 0, run.stderr);
  const name = (p: string) => {
    const rel = path.relative(dir, p) || '.';
    return /^\.state\.json\.[0-9a-f]+\.tmp$/.test(rel) ? 'T' : rel;
  };
  const fds = new Map<string, string>();
  const calls: string[] = [];
  for (const line of fs.readFileSync(out, 'utf8').split('\n')) {
    const [, pid, call, args, result] = /^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+)/.exec(line) ?? [];
    if (call === undefined || args === undefined || result === undefined || Number(result) < 0) continue;
    const paths = [...args.matchAll(/"([^"]*)"/g)].map((m) => m[1] as string);
    const inDir = paths.length > 0 && paths.every((p) => p === dir || p.startsWith(`${dir}/`));
    if (call === 'openat' && inDir) {
      fds.set(`${pid}:${result}`, paths[0] as string);
      calls.push(`${args.includes('O_CREAT') ? 'create' : 'open'} ${name(paths[0] as string)}`);
    } else if ((call === 'fsync' || call === 'fdatasync') && fds.has(`${pid}:${args}`)) {
      calls.push(`fsync ${name(fds.get(`${pid}:${args}`) as string)}`);
    } else if (call === 'close') {
      fds.delete(`${pid}:${args}`);
    } else if (call.startsWith('rename') && inDir) {
      calls.push(`rename ${paths.map(name).join(' ')}`);
    } else if (call.startsWith('unlink') && inDir) {
      calls.push(`unlink ${name(paths[0] as string)}`);
    }
  }
  return calls;
}

describe('the state file', () => {
  let root: { dir: string; remove: () => void };
  let n = 0;
  const freshDir = () => {
    const dir = path.join(root.dir, `s${++n}`);
    fs.mkdirSync(dir);
    return dir;
  };
  before(() => {
    root = tempDir('state-file');
  });
  after(() => root.remove());

  it('writes every change durably: temp file, fsync, rename over, fsync of the directory; end() unlinks and fsyncs the directory', { skip: strace() }, () => {
    const dir = freshDir();
    const url = (rel: string) => pathToFileURL(path.join(path.dirname(CLI), rel)).href;
    const calls = traceCalls(
      dir,
      `import { RunStateFile } from '${url('backup/run_state_file.js')}';
       import { createLogger } from '${url('log.js')}';
       const journal = new RunStateFile(${JSON.stringify(dir)}, createLogger({ name: 't', format: 'json', level: 'silent' }));
       await journal.begin({ backupId: '${BACKUP_ID}', startedAt: new Date(), destination: '/backups/b' });
       await journal.record({ strategy: 'fsyncLock', fsyncLock: { phase: 'locking', lockCountBefore: 0, watchdogPid: 5 } });
       await journal.end();`,
    );
    const write = ['create T', 'fsync T', 'rename T state.json', 'open .', 'fsync .'];
    assert.deepEqual(calls, [...write, ...write, 'unlink state.json', 'open .', 'fsync .']);
  });

  it('reads back what was recorded; a field recorded as undefined is cleared; end() removes the file', async () => {
    const dir = freshDir();
    const journal = new RunStateFile(dir, log, 4242);
    const startedAt = new Date('2026-01-02T03:04:05.000Z');
    await journal.begin({ backupId: BACKUP_ID, startedAt, destination: '/backups/b' });
    await journal.record({ strategy: 'backupCursor', backupCursor: { lsid: 'ab'.repeat(16) } });
    await journal.record({ backupCursor: { lsid: 'ab'.repeat(16), cursorId: '-9007199254740993' }, staging: '/stage/x' });
    let read = await readStateFile(journal.stateFile);
    assert.equal(read.kind, 'valid');
    assert.deepEqual(read.kind === 'valid' && read.state, {
      format: STATE_FORMAT,
      version: STATE_VERSION,
      pid: 4242,
      backupId: BACKUP_ID,
      startedAt: startedAt.toISOString(),
      destination: '/backups/b',
      strategy: 'backupCursor',
      backupCursor: { lsid: 'ab'.repeat(16), cursorId: '-9007199254740993' },
      staging: '/stage/x',
      cleanup: [],
    });
    await journal.record({ backupCursor: undefined });
    read = await readStateFile(journal.stateFile);
    assert.equal(read.kind === 'valid' && read.state.backupCursor, undefined);
    assert.equal(read.kind === 'valid' && read.state.staging, '/stage/x');
    await journal.end();
    assert.deepEqual(await readStateFile(journal.stateFile), { kind: 'absent' });
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  for (const [what, content, reason] of [
    ['a torn file (not JSON)', '{"format": "mongo-hotbackup-proxy-state", "vers', /not valid JSON/],
    ['a foreign JSON file', '{"hello": "world"}', /not a state file of this proxy/],
    ['a newer version', JSON.stringify({ format: STATE_FORMAT, version: 99 }), /version 99; this build reads version 1/],
    ['a record that breaks the schema', JSON.stringify({ format: STATE_FORMAT, version: STATE_VERSION, pid: 1, backupId: 'not-a-uuid', startedAt: 'x', destination: '/b' }), /backupId.*startedAt/s],
  ] as const) {
    it(`moves ${what} aside, says why, and never trusts it`, async () => {
      const dir = freshDir();
      const file = stateFilePath(dir);
      fs.writeFileSync(file, content);
      // Only read (as the watchdog does): reported, left where it is.
      const peek = await readStateFile(file);
      assert.equal(peek.kind, 'invalid');
      assert.ok(fs.existsSync(file));
      const read = await readStateFile(file, { moveAsideInvalid: true });
      assert.equal(read.kind, 'invalid');
      if (read.kind !== 'invalid') return;
      assert.match(read.reason, reason);
      assert.match(path.basename(read.movedTo ?? ''), /^state\.json\.corrupt-\d{4}-\d\d-\d\dT/);
      assert.equal(fs.readFileSync(read.movedTo as string, 'utf8'), content, 'kept as it was, for the operator');
      assert.equal(fs.existsSync(file), false);
    });
  }

  it('refuses to write an invalid record', async () => {
    const file = stateFilePath(freshDir());
    const bad = { format: STATE_FORMAT, version: STATE_VERSION, pid: 1, backupId: BACKUP_ID, startedAt: new Date().toISOString(), destination: '/b', staging: 'relative', cleanup: [] };
    await assert.rejects(writeStateFile(file, bad as RunState), /refusing to write an invalid state file.*staging: must be an absolute path/);
    assert.equal(fs.existsSync(file), false);
  });

  it("refuses a new backup while the previous one's fsync lock may still be held, and only then", async () => {
    const journal = new RunStateFile(freshDir(), log);
    await journal.begin({ backupId: BACKUP_ID, startedAt: new Date(), destination: '/backups/a' });
    await journal.record({ strategy: 'fsyncLock', fsyncLock: { phase: 'locked', watchdogPid: 777 } });
    // The release failed: the engine does not end() the record.
    const next = { backupId: '1c8d2e5f-9e1b-4d2f-8a5c-3b7a4f2e6d8b', startedAt: new Date(), destination: '/backups/b' };
    await assert.rejects(journal.begin(next), (err: { code?: number; message?: string }) => {
      assert.equal(err.code, 268);
      assert.match(err.message ?? '', new RegExp(`^Backup ${BACKUP_ID} may still hold mongod's fsync lock: .*watchdog \\(pid 777\\)`));
      return true;
    });
    const kept = await readStateFile(journal.stateFile);
    assert.equal(kept.kind === 'valid' && kept.state.backupId, BACKUP_ID, 'the record of the lock is not overwritten');
    // Released in the background: a new backup may start, and replaces the record.
    await journal.record({ fsyncLock: { phase: 'unlocked', watchdogPid: 777 } });
    await journal.begin(next);
    const replaced = await readStateFile(journal.stateFile);
    assert.equal(replaced.kind === 'valid' && replaced.state.backupId, next.backupId);
    assert.equal(replaced.kind === 'valid' && replaced.state.fsyncLock, undefined);
  });

  it("lets a watchdog mark only the record that names it", async () => {
    const dir = freshDir();
    const journal = new RunStateFile(dir, log);
    await journal.begin({ backupId: BACKUP_ID, startedAt: new Date(), destination: '/backups/a' });
    await journal.record({ strategy: 'fsyncLock', fsyncLock: { phase: 'locked', watchdogPid: 777 } });
    await markWatchdogOutcome(journal.stateFile, 778, 'released', 'someone else');
    let read = await readStateFile(journal.stateFile);
    assert.equal(read.kind === 'valid' && read.state.fsyncLock?.phase, 'locked');
    await markWatchdogOutcome(journal.stateFile, 777, 'unreachable', 'it could not reach mongod');
    read = await readStateFile(journal.stateFile);
    // Not settled: the lock is still owed, for the next start to release.
    assert.equal(read.kind === 'valid' && read.state.fsyncLock?.phase, 'locked');
    assert.equal(read.kind === 'valid' && read.state.fsyncLock?.watchdog?.outcome, 'unreachable');
    await markWatchdogOutcome(journal.stateFile, 777, 'released', 'its unlock watchdog (pid 777) sent fsyncUnlock');
    read = await readStateFile(journal.stateFile);
    assert.equal(read.kind === 'valid' && read.state.fsyncLock?.phase, 'unlocked');
    assert.deepEqual(read.kind === 'valid' && read.state.cleanup, ['its unlock watchdog (pid 777) sent fsyncUnlock']);
  });
});
