/**
 * Aggregation pipelines over an in-memory input, and the distinct command's value collection.
 * Only the stages the dev server needs are run; every other real stage is refused by name.
 */
import { Int32, Long } from 'bson';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';
import { isDocumentValue } from './bsontype.js';
import { compileAddFields } from './add_fields.js';
import { documentEntries } from './entries.js';
import { compileFilter } from './filter.js';
import { compileGroup } from './group.js';
import { parseNonNegativeInteger } from './integers.js';
import { walkPath } from './paths.js';
import { compileExclusion, compileProjectStage } from './projection.js';
import { compileSort } from './sort.js';
import { notImplemented } from './unsupported.js';
import { compareValues, valuesEqual, type Document } from './values.js';

type Stage = (docs: Document[]) => Document[];

const KNOWN_UNSUPPORTED_STAGES = new Set([
  '$backupCursor', '$backupCursorExtend', '$bucket', '$bucketAuto', '$changeStream',
  '$changeStreamSplitLargeEvent', '$collStats', '$currentOp', '$densify', '$documents', '$facet',
  '$fill', '$geoNear', '$graphLookup', '$indexStats', '$listCatalog', '$listLocalSessions',
  '$listSampledQueries', '$listSearchIndexes', '$listSessions', '$lookup', '$merge', '$out',
  '$planCacheStats', '$querySettings', '$redact', '$replaceRoot', '$replaceWith', '$sample',
  '$search', '$searchMeta', '$setWindowFields', '$shardedDataDistribution', '$sortByCount',
  '$unionWith', '$unwind', '$vectorSearch',
]);

function skipStage(spec: unknown): Stage {
  const n = parseNonNegativeInteger('$skip', spec);
  if (typeof n === 'string') throw new DevServerError(DevServerCodes.SkipArgumentInvalid, `invalid argument to $skip stage: ${n}`);
  return (docs) => docs.slice(Number(n > BigInt(docs.length) ? BigInt(docs.length) : n));
}

function limitStage(spec: unknown): Stage {
  const n = parseNonNegativeInteger('$limit', spec);
  if (typeof n === 'string') throw new DevServerError(DevServerCodes.LimitArgumentInvalid, `invalid argument to $limit stage: ${n}`);
  if (n === 0n) throw new DevServerError(DevServerCodes.LimitNotPositive, 'the limit must be positive');
  return (docs) => docs.slice(0, Number(n > BigInt(docs.length) ? BigInt(docs.length) : n));
}

function countStage(spec: unknown): Stage {
  if (typeof spec !== 'string') throw new DevServerError(DevServerCodes.CountFieldNotString, 'the count field must be a non-empty string');
  if (spec === '') throw new DevServerError(DevServerCodes.CountFieldEmpty, 'the count field must be a non-empty string');
  if (spec.startsWith('$')) throw new DevServerError(DevServerCodes.CountFieldDollarPrefixed, 'the count field cannot be a $-prefixed path');
  if (spec.includes('\0')) throw new DevServerError(DevServerCodes.CountFieldNullByte, 'the count field cannot contain a null byte');
  if (spec.includes('.')) throw new DevServerError(DevServerCodes.CountFieldContainsDot, "the count field cannot contain '.'");
  return (docs) => {
    if (docs.length === 0) return [];
    const n = docs.length;
    return [{ [spec]: n <= 2 ** 31 - 1 ? new Int32(n) : Long.fromNumber(n) }];
  };
}

function unsetStage(spec: unknown): Stage {
  const paths = typeof spec === 'string' ? [spec] : spec;
  if (!Array.isArray(paths)) throw new DevServerError(DevServerCodes.UnsetSpecType, '$unset specification must be a string or an array');
  if (paths.length === 0) {
    throw new DevServerError(DevServerCodes.UnsetSpecEmpty, '$unset specification must be a string or an array with at least one field');
  }
  if (!paths.every((p): p is string => typeof p === 'string')) {
    throw new DevServerError(DevServerCodes.UnsetSpecNotStrings, '$unset specification must be a string or an array containing only string values');
  }
  const project = compileExclusion(paths);
  return (docs) => docs.map(project);
}

/** A stage whose specification must be a document: mongod's code and text when it is not. */
function documentSpec(spec: unknown, code: number, message: string): Document {
  if (!isDocumentValue(spec)) throw new DevServerError(code, message);
  return spec;
}

function compileStage(name: string, spec: unknown): Stage {
  switch (name) {
    case '$match': {
      const matches = compileFilter(documentSpec(spec, DevServerCodes.MatchNotObject, 'the match filter must be an expression in an object'));
      return (docs) => docs.filter(matches);
    }
    case '$group':
      return compileGroup(spec);
    case '$sort': {
      const keys = documentSpec(spec, DevServerCodes.SortSpecNotObject, 'the $sort key specification must be an object');
      if (documentEntries(keys).length === 0) throw new DevServerError(DevServerCodes.SortWithoutKeys, '$sort stage must have at least one sort key');
      const compare = compileSort(keys);
      return (docs) => [...docs].sort(compare);
    }
    case '$skip':
      return skipStage(spec);
    case '$limit':
      return limitStage(spec);
    case '$count':
      return countStage(spec);
    case '$project': {
      const project = compileProjectStage(documentSpec(spec, DevServerCodes.ProjectNotObject, '$project specification must be an object'));
      return (docs) => docs.map(project);
    }
    case '$unset':
      return unsetStage(spec);
    case '$addFields':
    case '$set': {
      const add = compileAddFields(name, spec);
      return (docs) => docs.map(add);
    }
    default:
      if (KNOWN_UNSUPPORTED_STAGES.has(name)) throw notImplemented(`The aggregation stage ${name}`);
      throw new DevServerError(DevServerCodes.UnrecognizedPipelineStage, `Unrecognized pipeline stage name: '${name}'`);
  }
}

/** Compiles every stage first (so a bad late stage fails before any work), then runs them in order. */
export function runPipeline(input: Iterable<Document>, pipeline: Document[]): Document[] {
  if (!Array.isArray(pipeline)) {
    throw new DevServerError(DevServerCodes.TypeMismatch, "'pipeline' option must be specified as an array");
  }
  const stages = pipeline.map((stage) => {
    if (!isDocumentValue(stage)) {
      throw new DevServerError(DevServerCodes.TypeMismatch, "Each element of the 'pipeline' array must be an object");
    }
    const entries = documentEntries(stage);
    const first = entries[0];
    if (entries.length !== 1 || first === undefined) {
      throw new DevServerError(DevServerCodes.StageSpecNotOneField, 'A pipeline stage specification object must contain exactly one field.');
    }
    return compileStage(first[0], first[1]);
  });
  return stages.reduce<Document[]>((docs, stage) => stage(docs), [...input]);
}

/**
 * The distinct command's values: array elements are flattened one level (a nested array is a
 * value), missing fields contribute nothing, duplicates (by value) collapse, and the result is
 * in mongod's value order.
 */
export function distinctValues(docs: Iterable<Document>, key: string): unknown[] {
  const found: unknown[] = [];
  for (const doc of docs) {
    walkPath(doc, key, (v, kind) => {
      if (kind === 'missing' || kind === 'array') return;
      found.push(v);
    });
  }
  found.sort(compareValues);
  return found.filter((v, i) => i === 0 || !valuesEqual(v, found[i - 1]));
}
