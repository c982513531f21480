/** Where things are, from a compiled test file (dist/test/...). */
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

function findProjectRoot(start: string): string {
  let dir = start;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'mongo-hotbackup-proxy') {
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('project root not found');
    dir = parent;
  }
}

export const PROJECT_ROOT = findProjectRoot(path.dirname(fileURLToPath(import.meta.url)));
/** The compiled CLI that sits beside this compiled helper. */
export const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli.js');
/**
 * The node flags of the CLI's shebang (`#!/usr/bin/env -S node <flags>`): tests and
 * benchmarks run the CLI with them, as the installed `hotbackup` runs.
 */
export const CLI_NODE_FLAGS: readonly string[] = (() => {
  const shebang = fs.readFileSync(CLI, 'utf8').split('\n', 1)[0] ?? '';
  const match = /^#!\/usr\/bin\/env -S node((?: --[\w-]+(?:=\S+)?)*)$/.exec(shebang);
  if (match === null) throw new Error(`unexpected shebang in ${CLI}: ${shebang}`);
  return (match[1] ?? '').trim().split(' ').filter((flag) => flag !== '');
})();
export const MONGOSH = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'mongosh');

/** A fresh directory under the OS temp dir, removed by the returned function. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `hotbackup-${prefix}-`));
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
