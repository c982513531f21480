/**
 * The $addFields / $set stage: new fields are appended, existing ones replaced in place, and a
 * field whose expression evaluates to missing ($$REMOVE, an absent path) is removed.
 * Expressions see the input document, not the partly rewritten one, as in mongod.
 */
import { CommandError } from '../../errors.js';
import { isDocumentValue } from './bsontype.js';
import { documentEntries, fromEntries, getField, setField } from './entries.js';
import { compileExpression, isExpressionObject, type Evaluator } from './expression.js';
import { validateFieldPath } from './fieldpath.js';
import { notImplemented } from './unsupported.js';
import { cloneValue, type Document } from './values.js';

type Tree = Map<string, Evaluator | Tree>;

function insert(tree: Tree, parts: readonly string[], full: string, value: unknown): void {
  const [head, ...rest] = parts as [string, ...string[]];
  const existing = tree.get(head);
  if (rest.length === 0) {
    if (existing !== undefined) throw new CommandError(31250, `Path collision at ${full}`);
    if (isDocumentValue(value) && !isExpressionObject(value) && documentEntries(value).length > 0) {
      // {a: {b: 1}} adds a.b inside a, keeping a's other fields.
      const sub: Tree = new Map();
      for (const [k, v] of documentEntries(value)) {
        validateFieldPath(k);
        insert(sub, k.split('.'), `${full}.${k}`, v);
      }
      tree.set(head, sub);
    } else {
      tree.set(head, compileExpression(value));
    }
    return;
  }
  if (typeof existing === 'function') {
    throw new CommandError(31249, `Path collision at ${full} remaining portion ${rest.join('.')}`);
  }
  const sub = existing ?? new Map();
  tree.set(head, sub);
  insert(sub, rest, full, value);
}

function apply(target: Document, tree: Tree, root: Document): void {
  for (const [name, node] of tree) {
    if (typeof node === 'function') {
      const v = node(root);
      if (v === undefined) delete target[name];
      else setField(target, name, cloneValue(v));
      continue;
    }
    const current = getField(target, name);
    if (Array.isArray(current)) throw notImplemented(`$addFields/$set of sub-fields of the array '${name}'`);
    const sub = isDocumentValue(current) ? fromEntries(documentEntries(current)) : {};
    apply(sub, node, root);
    setField(target, name, sub);
  }
}

export function compileAddFields(stage: string, spec: unknown): (doc: Document) => Document {
  if (!isDocumentValue(spec)) {
    throw new CommandError(40272, `${stage} specification stage must be an object, got ${typeof spec}`);
  }
  const tree: Tree = new Map();
  for (const [key, value] of documentEntries(spec)) {
    validateFieldPath(key);
    insert(tree, key.split('.'), key, value);
  }
  return (doc) => {
    const out = fromEntries(documentEntries(doc));
    apply(out, tree, doc);
    return out;
  };
}
