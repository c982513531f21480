/**
 * Walks the top-level elements of a raw BSON document without deserializing any value:
 * just type byte, name, and where the value starts and ends. The proxy uses this to read
 * a command's name and `$db` from every message at a cost independent of value sizes.
 * Every step is bounds-checked; a malformed document ends the walk with `undefined`.
 */

export interface ElementRef {
  type: number;
  name: string;
  /** Offset of the value within the document buffer. */
  valueStart: number;
  valueEnd: number;
}

/** Fixed value sizes by BSON type; -1 marks types whose size is read from the value. */
const FIXED_SIZE: ReadonlyMap<number, number> = new Map([
  [0x01, 8], // double
  [0x06, 0], // undefined (deprecated)
  [0x07, 12], // ObjectId
  [0x08, 1], // boolean
  [0x09, 8], // UTC datetime
  [0x0a, 0], // null
  [0x10, 4], // int32
  [0x11, 8], // timestamp
  [0x12, 8], // int64
  [0x13, 16], // decimal128
  [0x7f, 0], // maxKey
  [0xff, 0], // minKey
]);

/** End offset of the value of `type` starting at `start`, or undefined if it overruns `end`. */
function valueEnd(doc: Buffer, type: number, start: number, end: number): number | undefined {
  const fixed = FIXED_SIZE.get(type);
  if (fixed !== undefined) return start + fixed <= end ? start + fixed : undefined;
  const int32At = (at: number): number | undefined => (at + 4 <= end ? doc.readInt32LE(at) : undefined);
  let stop: number;
  switch (type) {
    case 0x02: // string
    case 0x0d: // JavaScript code
    case 0x0e: {
      // symbol: int32 byte count (including the NUL), bytes
      const n = int32At(start);
      if (n === undefined || n < 1) return undefined;
      stop = start + 4 + n;
      break;
    }
    case 0x03: // embedded document
    case 0x04: // array
    case 0x0f: {
      // code with scope: the int32 counts the whole value
      const n = int32At(start);
      if (n === undefined || n < 5) return undefined;
      stop = start + n;
      break;
    }
    case 0x05: {
      // binary: int32 byte count, subtype byte, bytes
      const n = int32At(start);
      if (n === undefined || n < 0) return undefined;
      stop = start + 5 + n;
      break;
    }
    case 0x0b: {
      // regex: two cstrings
      const first = doc.subarray(start, end).indexOf(0);
      if (first === -1) return undefined;
      const second = doc.subarray(start + first + 1, end).indexOf(0);
      if (second === -1) return undefined;
      stop = start + first + 1 + second + 1;
      break;
    }
    case 0x0c: {
      // DBPointer (deprecated): string then 12-byte ObjectId
      const n = int32At(start);
      if (n === undefined || n < 1) return undefined;
      stop = start + 4 + n + 12;
      break;
    }
    default:
      return undefined;
  }
  return stop <= end ? stop : undefined;
}

/**
 * Calls `visit` for each top-level element until it returns true (stop) or the document
 * ends. Returns false if the document is malformed before the walk stopped.
 */
export function walkTopLevel(doc: Buffer, visit: (element: ElementRef) => boolean): boolean {
  if (doc.length < 5) return false;
  const size = doc.readInt32LE(0);
  if (size < 5 || size > doc.length || doc[size - 1] !== 0) return false;
  const end = size - 1; // the document's terminating NUL
  let offset = 4;
  while (offset < end) {
    const type = doc[offset] as number;
    const nul = doc.subarray(offset + 1, end).indexOf(0);
    if (nul === -1) return false;
    const name = doc.toString('utf8', offset + 1, offset + 1 + nul);
    const valueStart = offset + 1 + nul + 1;
    const stop = valueEnd(doc, type, valueStart, end);
    if (stop === undefined) return false;
    if (visit({ type, name, valueStart, valueEnd: stop })) return true;
    offset = stop;
  }
  return offset === end;
}

/** The value of a string element, or undefined if `element` is not a well-formed string. */
export function stringValue(doc: Buffer, element: ElementRef): string | undefined {
  if (element.type !== 0x02) return undefined;
  const n = doc.readInt32LE(element.valueStart);
  if (doc[element.valueStart + 4 + n - 1] !== 0) return undefined;
  return doc.toString('utf8', element.valueStart + 4, element.valueStart + 4 + n - 1);
}
