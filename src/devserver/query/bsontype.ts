/**
 * Classifies the JS values that `bson`'s `deserialize(buf, {promoteValues: false})` produces
 * into mongod's BSON types, and ranks them in mongod's canonical sort order.
 *
 * Values are told apart by `_bsontype` rather than `instanceof`, because a second copy of the
 * `bson` package (the driver bundles its own) produces instances of different classes.
 */

/** mongod's type names, as `typeName()` prints them in error messages. */
export type BsonTypeName =
  | 'minKey'
  | 'missing'
  | 'undefined'
  | 'null'
  | 'double'
  | 'int'
  | 'long'
  | 'decimal'
  | 'string'
  | 'symbol'
  | 'object'
  | 'array'
  | 'binData'
  | 'objectId'
  | 'bool'
  | 'date'
  | 'timestamp'
  | 'regex'
  | 'dbPointer'
  | 'javascript'
  | 'javascriptWithScope'
  | 'maxKey';

/** What a `bson` class instance carries; enough to tell the classes apart without importing them. */
interface BsonTagged {
  readonly _bsontype: string;
}

function bsonTag(v: object): string | undefined {
  const tag = (v as Partial<BsonTagged>)._bsontype;
  return typeof tag === 'string' ? tag : undefined;
}

/** A field that is absent is `undefined` in JS; BSON's own (deprecated) undefined deserializes as null. */
export function bsonTypeOf(v: unknown): BsonTypeName {
  switch (typeof v) {
    case 'undefined':
      return 'missing';
    case 'string':
      return 'string';
    case 'boolean':
      return 'bool';
    case 'number':
      return 'double';
    case 'bigint':
      return 'long';
    case 'object':
      break;
    default:
      // Functions and symbols never come out of a BSON decoder; treat them as opaque objects.
      return 'object';
  }
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Date) return 'date';
  if (v instanceof RegExp) return 'regex';
  switch (bsonTag(v)) {
    case 'Int32':
      return 'int';
    case 'Double':
      return 'double';
    case 'Long':
      return 'long';
    case 'Decimal128':
      return 'decimal';
    case 'ObjectId':
    case 'ObjectID':
      return 'objectId';
    case 'Binary':
      return 'binData';
    case 'Timestamp':
      return 'timestamp';
    case 'BSONRegExp':
      return 'regex';
    case 'MinKey':
      return 'minKey';
    case 'MaxKey':
      return 'maxKey';
    case 'BSONSymbol':
    case 'Symbol':
      return 'symbol';
    case 'Code':
      return (v as { scope?: unknown }).scope == null ? 'javascript' : 'javascriptWithScope';
    case 'DBPointer':
      return 'dbPointer';
    default:
      // Plain objects, and DBRef, which mongod stores as an ordinary {$ref, $id} sub-document.
      return 'object';
  }
}

/** mongod's canonicalizeBSONType(): types with equal rank compare by value (all numbers share one). */
const CANONICAL_RANK: Readonly<Record<BsonTypeName, number>> = {
  minKey: -1,
  // Missing sorts and compares like null wherever mongod lets the two meet.
  missing: 5,
  undefined: 5,
  null: 5,
  double: 10,
  int: 10,
  long: 10,
  decimal: 10,
  string: 15,
  symbol: 15,
  object: 20,
  array: 25,
  binData: 30,
  objectId: 35,
  bool: 40,
  date: 45,
  timestamp: 47,
  regex: 50,
  dbPointer: 55,
  javascript: 60,
  javascriptWithScope: 65,
  maxKey: 127,
};

export function canonicalRank(v: unknown): number {
  return CANONICAL_RANK[bsonTypeOf(v)];
}

export function isNumericType(t: BsonTypeName): boolean {
  return t === 'double' || t === 'int' || t === 'long' || t === 'decimal';
}

/** A plain sub-document (not an array, not a BSON value class), including a decoded DBRef. */
export function isDocumentValue(v: unknown): v is Record<string, unknown> {
  return bsonTypeOf(v) === 'object' && typeof v === 'object' && v !== null;
}

/** The type name mongod prints; a missing field has no type, and mongod calls it "missing". */
export function typeName(v: unknown): string {
  return bsonTypeOf(v);
}
