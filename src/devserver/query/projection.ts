/**
 * Projections: find()'s inclusion/exclusion form, and the aggregation $project form that can
 * also compute fields from paths and literals. Output keeps the input document's field order;
 * computed fields follow, in specification order, as mongod appends them.
 * Projected documents may share sub-objects with their input: copy before mutating.
 */
import { CommandError } from '../../errors.js';
import { isDocumentValue } from './bsontype.js';
import { documentEntries, setField } from './entries.js';
import { compileExpression, type Evaluator } from './expression.js';
import { validateFieldPath } from './fieldpath.js';
import { trueValue } from './filter.js';
import { numericKind } from './numeric.js';
import { notImplemented } from './unsupported.js';
import type { Document } from './values.js';
import { formatElement } from './format.js';

type Node =
  | { readonly kind: 'include' }
  | { readonly kind: 'exclude' }
  | { readonly kind: 'computed'; readonly evaluate: Evaluator }
  | { readonly kind: 'tree'; readonly children: Map<string, Node> };
type Children = Map<string, Node>;
export type Projector = (doc: Document) => Document;

interface ParseContext {
  readonly mode: 'find' | 'aggregate';
  type?: 'inclusion' | 'exclusion';
  idSpecified: boolean;
  idIncludedEntirely: boolean;
}

const FIND_ONLY_OPERATORS = new Set(['$slice', '$elemMatch', '$meta']);

function addNode(children: Children, path: readonly string[], node: Node): void {
  const full = path.join('.');
  let cur = children;
  path.forEach((part, i) => {
    const existing = cur.get(part);
    if (i === path.length - 1) {
      if (existing !== undefined && !(existing.kind === 'tree' && node.kind === 'tree')) {
        throw new CommandError(31250, `Path collision at ${full}`);
      }
      if (existing === undefined) cur.set(part, node);
      return;
    }
    if (existing === undefined) {
      const tree: Node = { kind: 'tree', children: new Map() };
      cur.set(part, tree);
      cur = tree.children;
    } else if (existing.kind === 'tree') {
      cur = existing.children;
    } else {
      throw new CommandError(31249, `Path collision at ${full} remaining portion ${path.slice(i + 1).join('.')}`);
    }
  });
}

function treeAt(children: Children, path: readonly string[]): Children {
  addNode(children, path, { kind: 'tree', children: new Map() });
  let cur = children;
  for (const part of path) cur = (cur.get(part) as { children: Children }).children;
  return cur;
}

function markType(ctx: ParseContext, type: 'inclusion' | 'exclusion', field: string, value: unknown): void {
  if (ctx.type !== undefined && ctx.type !== type) {
    if (type === 'exclusion') {
      throw new CommandError(31254, `Cannot do exclusion on field ${field} in inclusion projection`);
    }
    if (numericKind(value) !== undefined || typeof value === 'boolean') {
      throw new CommandError(31253, `Cannot do inclusion on field ${field} in exclusion projection`);
    }
    throw new CommandError(31310, `Cannot use an expression ${formatElement(field, value)} in an exclusion projection`);
  }
  ctx.type = type;
}

function parseOperatorValue(ctx: ParseContext, children: Children, path: string[], key: string, value: Document): void {
  const [op] = documentEntries(value)[0] as [string, unknown];
  if (ctx.mode === 'find' || op === '$meta') {
    if (FIND_ONLY_OPERATORS.has(op)) throw notImplemented(`The projection operator ${op}`);
    if (ctx.mode === 'find') throw notImplemented(`Expressions in find projections (${op} on field '${key}')`);
  }
  const evaluate = compileExpression(value);
  markType(ctx, 'inclusion', key, value);
  addNode(children, path, { kind: 'computed', evaluate });
}

function parseSpec(ctx: ParseContext, children: Children, spec: Document, isRoot: boolean): void {
  for (const [key, value] of documentEntries(spec)) {
    if (ctx.mode === 'find' && (key === '$' || key.endsWith('.$') || key.includes('.$.'))) {
      throw notImplemented(`Positional projection ('${key}')`);
    }
    validateFieldPath(key);
    const path = key.split('.');
    if (isRoot && (key === '_id' || key.startsWith('_id.'))) ctx.idSpecified = true;
    const topLevelId = isRoot && key === '_id';
    if (isDocumentValue(value)) {
      const entries = documentEntries(value);
      const first = entries[0];
      if (entries.length === 1 && first !== undefined && first[0].startsWith('$')) {
        parseOperatorValue(ctx, children, path, key, value);
        continue;
      }
      if (first === undefined) {
        throw new CommandError(51270, `An empty sub-projection is not a valid value. Found empty object at path ${key}`);
      }
      parseSpec(ctx, treeAt(children, path), value, false);
    } else if (numericKind(value) !== undefined || typeof value === 'boolean') {
      const include = trueValue(value);
      addNode(children, path, { kind: include ? 'include' : 'exclude' });
      if (topLevelId) {
        if (include) ctx.idIncludedEntirely = true;
      } else {
        markType(ctx, include ? 'inclusion' : 'exclusion', key, value);
      }
    } else if (ctx.mode === 'find') {
      throw notImplemented(`Literal values in find projections (field '${key}')`);
    } else {
      markType(ctx, 'inclusion', key, value);
      addNode(children, path, { kind: 'computed', evaluate: compileExpression(value) });
    }
  }
}

function hasComputed(children: Children): boolean {
  for (const node of children.values()) {
    if (node.kind === 'computed' || (node.kind === 'tree' && hasComputed(node.children))) return true;
  }
  return false;
}

function includeArray(children: Children, arr: readonly unknown[]): unknown[] {
  const out: unknown[] = [];
  for (const e of arr) {
    if (Array.isArray(e)) out.push(includeArray(children, e));
    else if (isDocumentValue(e)) out.push(include(children, e));
  }
  return out;
}

/** First pass of an inclusion: included fields, in the input's order; sub-documents are fresh copies. */
function include(children: Children, doc: Document): Document {
  const out: Document = {};
  for (const [name, value] of documentEntries(doc)) {
    const node = children.get(name);
    if (node === undefined || node.kind === 'exclude' || node.kind === 'computed') continue;
    if (node.kind === 'include') {
      setField(out, name, value);
    } else if (Array.isArray(value)) {
      setField(out, name, includeArray(node.children, value));
    } else if (isDocumentValue(value)) {
      setField(out, name, include(node.children, value));
    }
  }
  return out;
}

/** Second pass of an inclusion: computed fields, appended in specification order. */
function applyComputed(children: Children, out: Document, root: Document): void {
  for (const [name, node] of children) {
    if (node.kind === 'computed') {
      const v = node.evaluate(root);
      if (v !== undefined) setField(out, name, v);
    } else if (node.kind === 'tree' && hasComputed(node.children)) {
      const sub = out[name];
      if (Array.isArray(sub)) {
        for (const e of sub) if (isDocumentValue(e)) applyComputed(node.children, e, root);
      } else if (isDocumentValue(sub)) {
        applyComputed(node.children, sub, root);
      } else {
        const created: Document = {};
        applyComputed(node.children, created, root);
        setField(out, name, created);
      }
    }
  }
}

function excludeValue(children: Children, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((e) => excludeValue(children, e));
  if (isDocumentValue(value)) return exclude(children, value);
  return value;
}

function exclude(children: Children, doc: Document): Document {
  const out: Document = {};
  for (const [name, value] of documentEntries(doc)) {
    const node = children.get(name);
    if (node === undefined || node.kind === 'include') setField(out, name, value);
    else if (node.kind === 'tree') setField(out, name, excludeValue(node.children, value));
  }
  return out;
}

function build(ctx: ParseContext, children: Children): Projector {
  const type = ctx.type ?? (ctx.idIncludedEntirely ? 'inclusion' : 'exclusion');
  if (type === 'inclusion') {
    if (!ctx.idSpecified) children.set('_id', { kind: 'include' });
    const computed = hasComputed(children);
    return (doc) => {
      const out = include(children, doc);
      if (computed) applyComputed(children, out, doc);
      return out;
    };
  }
  if (ctx.idIncludedEntirely) children.delete('_id');
  return (doc) => exclude(children, doc);
}

/** find()'s projection: inclusion or exclusion only; an empty projection returns documents unchanged. */
export function compileProjection(spec: Document): Projector {
  if (documentEntries(spec).length === 0) return (doc) => doc;
  const ctx: ParseContext = { mode: 'find', idSpecified: false, idIncludedEntirely: false };
  const children: Children = new Map();
  parseSpec(ctx, children, spec, true);
  return build(ctx, children);
}

/** The $project stage: find()'s rules plus computed fields ("$path", literals, {$literal}). */
export function compileProjectStage(spec: Document): Projector {
  try {
    if (documentEntries(spec).length === 0) {
      throw new CommandError(51272, 'projection specification must have at least one field');
    }
    const ctx: ParseContext = { mode: 'aggregate', idSpecified: false, idIncludedEntirely: false };
    const children: Children = new Map();
    parseSpec(ctx, children, spec, true);
    return build(ctx, children);
  } catch (err) {
    if (err instanceof CommandError && err.code !== 238) {
      throw new CommandError(err.code, `Invalid $project :: caused by :: ${err.message}`, { codeName: err.codeName });
    }
    throw err;
  }
}

/** The $unset stage: an exclusion of the named paths, _id included if named. */
export function compileExclusion(paths: readonly string[]): Projector {
  const children: Children = new Map();
  for (const path of paths) {
    validateFieldPath(path);
    addNode(children, path.split('.'), { kind: 'exclude' });
  }
  return (doc) => exclude(children, doc);
}
