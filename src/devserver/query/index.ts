/**
 * Query semantics for the dev server: pure functions over decoded BSON documents, no I/O.
 */
export {
  cloneDocument,
  cloneValue,
  compareValues,
  getPath,
  getPathValues,
  identical,
  isNumeric,
  setPath,
  toNumber,
  unsetPath,
  valuesEqual,
  type Document,
} from './values.js';
export { bsonTypeOf, typeName, type BsonTypeName } from './bsontype.js';
export { compileFilter, type DocumentPredicate } from './filter.js';
export { compileSort, type DocumentComparator } from './sort.js';
export { compileProjection, type Projector } from './projection.js';
export {
  compileUpdate,
  upsertSeed,
  type CompiledUpdate,
  type UpdateContext,
  type UpdateResult,
} from './update.js';
export { distinctValues, runPipeline } from './aggregate.js';
