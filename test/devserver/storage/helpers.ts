/** Shared by the storage tests: temporary dbpaths and child processes running the engine. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The compiled engine module, for scripts run in child processes. */
export const ENGINE_URL = new URL('../../../src/devserver/storage/storage_engine.js', import.meta.url).href;
/** Child scripts import bson by URL: `-e` scripts resolve bare names from their cwd. */
export const BSON_URL = import.meta.resolve('bson');
export const WIREDTIGER_URL = new URL('../../../src/devserver/storage/wiredtiger.js', import.meta.url).href;

/** A fresh empty directory, removed by the returned cleanup. */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `hb-storage-${prefix}-`));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Runs an ES module script in a child node; extra flags go before it. */
export function runScript(script: string, args: string[] = [], flags: string[] = []): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [...flags, '--input-type=module', '-e', script, '--', ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export function spawnScript(script: string, args: string[] = []): ChildProcess {
  return spawn(process.execPath, ['--input-type=module', '-e', script, '--', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** `wt -h home <args>`: WiredTiger's own command-line tool, same library version. */
export function wt(home: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync('wt', ['-h', home, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export function listFiles(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}
