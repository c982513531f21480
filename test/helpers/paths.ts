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
 * The node flags the proxy is run with: those `npm start` passes (package.json), which
 * README and docs/commands.md give for `hotbackup serve` too. Tests and benchmarks run
 * the CLI with them, as a deployment does.
 */
export const CLI_NODE_FLAGS: readonly string[] = (() => {
  const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const match = /^node((?: --[\w-]+(?:=\S+)?)*) dist\/src\/cli\.js start$/.exec(pkg.scripts['start'] ?? '');
  if (match === null) throw new Error(`unexpected start script: ${pkg.scripts['start']}`);
  return (match[1] ?? '').trim().split(' ').filter((flag) => flag !== '');
})();
export const MONGOSH = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'mongosh');

/** A fresh directory under the OS temp dir, removed by the returned function. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `hotbackup-${prefix}-`));
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** A temp dir that hands out a new empty subdirectory at each `fresh()`, all removed by `remove()`. */
export function freshDirs(prefix: string): { fresh: () => string; remove: () => void } {
  const root = tempDir(prefix);
  let n = 0;
  const fresh = (): string => {
    const dir = path.join(root.dir, `d${n++}`);
    fs.mkdirSync(dir);
    return dir;
  };
  return { fresh, remove: root.remove };
}
