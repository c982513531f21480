/**
 * Index specs in a collection's catalog entry: the rules mongod applies when one
 * is added or dropped. Only `_id_` is backed by a table; the rest is metadata.
 */
import { ErrorCodes, CommandError } from '../../errors.js';
import { formatBsonValue } from './dupkey.js';
import { encodeKeyString } from './keystring.js';
import type { IndexSpec } from './storage_types.js';

export const ID_INDEX_NAME = '_id_';

export function idIndexSpec(): IndexSpec {
  return { v: 2, key: { _id: 1 }, name: ID_INDEX_NAME };
}

// Key patterns compare by value, so {a: 1} and {a: 1.0} are the same index.
const sameKey = (a: IndexSpec, b: IndexSpec): boolean => encodeKeyString(a.key).equals(encodeKeyString(b.key));

/** existing plus the new specs; a spec equal to an existing one (same name and key) is skipped. */
export function addIndexSpecs(existing: readonly IndexSpec[], specs: readonly IndexSpec[]): IndexSpec[] {
  const indexes = [...existing];
  for (const spec of specs) {
    const sameName = indexes.find((ix) => ix.name === spec.name);
    if (sameName !== undefined) {
      if (sameKey(sameName, spec)) continue;
      throw new CommandError(
        ErrorCodes.IndexKeySpecsConflict,
        'An existing index has the same name as the requested index. ' +
          `Requested index: ${formatBsonValue(spec)}, existing index: ${formatBsonValue(sameName)}`,
      );
    }
    const other = indexes.find((ix) => sameKey(ix, spec));
    if (other !== undefined) {
      throw new CommandError(ErrorCodes.IndexOptionsConflict, `Index already exists with a different name: ${other.name}`);
    }
    indexes.push({ ...spec });
  }
  return indexes;
}

export function dropIndexSpec(existing: readonly IndexSpec[], name: string): IndexSpec[] {
  if (name === ID_INDEX_NAME) throw new CommandError(ErrorCodes.InvalidOptions, 'cannot drop _id index');
  if (!existing.some((ix) => ix.name === name)) {
    throw new CommandError(ErrorCodes.IndexNotFound, `index not found with name [${name}]`);
  }
  return existing.filter((ix) => ix.name !== name);
}
