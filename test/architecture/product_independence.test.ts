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
/** The product's own modules; src/wire, src/tls and src/errors.ts are shared with the dev server. */
const PRODUCT_ROOTS = ['wire', 'tls', 'proxy', 'commands', 'backup', 'oplog', path.join('cli', 'serve.ts'), path.join('cli', 'oplog_command.ts'), path.join('cli', 'replay.ts'), path.join('cli', 'restore.ts')].map((p) => path.join(SRC, p));

function tsFilesUnder(entry: string): string[] {
  if (fs.statSync(entry).isFile()) return [entry];
  return fs
    .readdirSync(entry, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => path.join(entry, name));
}

interface ModuleRef {
  /** The .ts source it names. */
  file: string;
  /** Named only inside `import(...)`: loaded when that code runs, not with the module. */
  lazy: boolean;
}

const parsed = new Map<string, ts.SourceFile>();
function sourceOf(file: string): ts.SourceFile {
  let source = parsed.get(file);
  if (source === undefined) {
    source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    parsed.set(file, source);
  }
  return source;
}

/** Every string in `file` (imports, re-exports, import(), require(), new URL(...)), with its node. */
function stringsIn(file: string): Array<{ text: string; node: ts.Node }> {
  const found: Array<{ text: string; node: ts.Node }> = [];
  const visit = (node: ts.Node): void => {
    if (ts.isStringLiteralLike(node) || ts.isTemplateHead(node) || ts.isTemplateMiddle(node) || ts.isTemplateTail(node)) {
      found.push({ text: node.text, node });
    }
    node.forEachChild(visit);
  };
  visit(sourceOf(file));
  return found;
}

/** The repository's modules `file` names by a relative path; one that names no source file throws. */
function moduleRefs(file: string): ModuleRef[] {
  return stringsIn(file)
    .filter(({ text }) => /^\.\.?\//.test(text) && /\.[cm]?js$/.test(text))
    .map(({ text, node }) => {
      const target = path.resolve(path.dirname(file), text.replace(/\.([cm]?)js$/, '.$1ts'));
      if (!fs.existsSync(target)) throw new Error(`${relative(file)} names ${text}, which is no source file`);
      const lazy = ts.isCallExpression(node.parent) && node.parent.expression.kind === ts.SyntaxKind.ImportKeyword;
      return { file: target, lazy };
    });
}

/** Every module reachable from `roots`, each with the chain of imports that first reached it. */
function reachable(roots: string[], follow: (ref: ModuleRef) => boolean = () => true): Map<string, string[]> {
  const chains = new Map<string, string[]>();
  const queue = roots.map((file) => [file]);
  for (let chain = queue.shift(); chain !== undefined; chain = queue.shift()) {
    const file = chain[chain.length - 1] as string;
    if (chains.has(file)) continue;
    chains.set(file, chain);
    for (const ref of moduleRefs(file)) if (follow(ref) && !chains.has(ref.file)) queue.push([...chain, ref.file]);
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
    assert.ok([...reachable([path.join(SRC, 'cli', 'dev_server_command.ts')]).keys()].some((f) => f.startsWith(DEVSERVER)));
  });

  it('never imports src/devserver from wire, tls, proxy, commands, backup, oplog, or the CLI serve, oplog, replay and restore', () => {
    const crossings = [...reachable(productFiles)]
      .filter(([file]) => file.startsWith(DEVSERVER))
      .map(([, chain]) => chain.map(relative).join(' -> '));
    assert.deepEqual(crossings, [], 'product modules reaching the dev server');
  });

  it('names no dev server path anywhere in product code, not even in a string built at run time', () => {
    const product = [...reachable(productFiles).keys()].filter((file) => !file.startsWith(DEVSERVER));
    const mentions = product.flatMap((file) =>
      stringsIn(file)
        .filter(({ text }) => /(^|\/)devserver(\/|$)/.test(text))
        .map(({ text }) => `${relative(file)}: '${text}'`),
    );
    assert.deepEqual(mentions, []);
  });

  it('loads the dev server from the CLI entry only when a subcommand that embeds it runs', () => {
    const eager = [...reachable([path.join(SRC, 'cli.ts')], (ref) => !ref.lazy)]
      .filter(([file]) => file.startsWith(DEVSERVER))
      .map(([, chain]) => chain.map(relative).join(' -> '));
    assert.deepEqual(eager, [], '`hotbackup serve` would load these');
  });

  it('gives no file name to both sides', () => {
    const names = (files: string[]) => new Set(files.map((f) => path.basename(f)));
    const devServer = names(tsFilesUnder(path.join(SRC, 'devserver')));
    const product = names(tsFilesUnder(SRC).filter((f) => !f.startsWith(DEVSERVER)));
    assert.deepEqual([...product].filter((name) => devServer.has(name)).sort(), []);
  });
});
