/**
 * The product (wire, proxy, commands, backup, and the `serve` CLI) never reaches the
 * dev server: the dev server is a test backend and the embedded default, and a product
 * that imported it would ship it, or worse, lean on its leniency. In the spirit of
 * mongosh's shell-api `runtime-independence.spec.ts`, this walks the real import graph
 * of the TypeScript sources, dynamic imports included, from every product module.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SRC = path.join(ROOT, 'src');
const DEVSERVER = path.join(SRC, 'devserver') + path.sep;
/** The product's own modules; src/wire and src/errors.ts are shared with the dev server. */
const PRODUCT_ROOTS = ['wire', 'proxy', 'commands', 'backup', path.join('cli', 'serve.ts')].map((p) => path.join(SRC, p));

function tsFilesUnder(entry: string): string[] {
  if (fs.statSync(entry).isFile()) return [entry];
  return fs
    .readdirSync(entry, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => path.join(entry, name));
}

/** The source files `file` imports, re-exports or dynamically imports, within this repository. */
function localImports(file: string): string[] {
  const { importedFiles } = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
  return importedFiles
    .map((ref) => ref.fileName)
    .filter((spec) => spec.startsWith('.'))
    .map((spec) => path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
}

/** Every module reachable from `roots`, each with the chain of imports that first reached it. */
function reachable(roots: string[]): Map<string, string[]> {
  const chains = new Map<string, string[]>();
  const queue = roots.map((file) => [file]);
  for (let chain = queue.shift(); chain !== undefined; chain = queue.shift()) {
    const file = chain[chain.length - 1] as string;
    if (chains.has(file)) continue;
    chains.set(file, chain);
    if (!fs.existsSync(file)) continue;
    for (const next of localImports(file)) if (!chains.has(next)) queue.push([...chain, next]);
  }
  return chains;
}

const relative = (file: string): string => path.relative(ROOT, file);

describe('the product/dev-server boundary', () => {
  const productFiles = PRODUCT_ROOTS.flatMap(tsFilesUnder);

  it('walks a real import graph (the walk itself reaches what serve needs)', () => {
    const graph = reachable([path.join(SRC, 'cli', 'serve.ts')]);
    for (const needed of ['proxy/proxy_server.ts', 'backup/backup_engine.ts', 'commands/backup_commands.ts', 'wire/op_msg.ts']) {
      assert.ok(graph.has(path.join(SRC, needed)), `serve reaches src/${needed}`);
    }
    // And the dev server's entry does reach the dev server: the walk can see that line.
    assert.ok([...reachable([path.join(SRC, 'cli', 'start.ts')]).keys()].some((f) => f.startsWith(DEVSERVER)));
  });

  it('never imports src/devserver from wire, proxy, commands, backup or cli/serve', () => {
    const crossings = [...reachable(productFiles)]
      .filter(([file]) => file.startsWith(DEVSERVER))
      .map(([, chain]) => chain.map(relative).join(' -> '));
    assert.deepEqual(crossings, [], 'product modules reaching the dev server');
  });

  it('gives no file name to both sides', () => {
    const names = (files: string[]) => new Set(files.map((f) => path.basename(f)));
    const devServer = names(tsFilesUnder(path.join(SRC, 'devserver')));
    const product = names(tsFilesUnder(SRC).filter((f) => !f.startsWith(DEVSERVER)));
    assert.deepEqual([...product].filter((name) => devServer.has(name)).sort(), []);
  });
});
