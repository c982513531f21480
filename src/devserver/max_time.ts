/**
 * Time limits from clients, and timers that honour them. mongod takes a command's
 * `maxTimeMS` as a 32-bit int and refuses anything above INT32_MAX; hello's
 * `maxAwaitTimeMS` is a 64-bit count it waits out in full. Node's setTimeout, given more
 * than 2^31-1 ms, fires after 1 ms instead (with a TimeoutOverflowWarning each time):
 * every wait the dev server takes from a client goes through here.
 */
import type { Document } from './bson.js';
import { numericKind, toJsNumber } from './query/numeric.js';
import { DevServerError, DevServerCodes } from './dev_server_errors.js';

/** INT_MAX: mongod's ceiling for maxTimeMS, and the longest delay one Node timer takes. */
export const MAX_TIME_MS = 2 ** 31 - 1;

const LLONG_MAX = 2n ** 63n - 1n;
const LLONG_MIN = -(2n ** 63n);

/** BSONElement::safeNumberLong: truncated toward zero, NaN as 0, clamped to a long. */
function safeNumberLong(value: unknown): bigint {
  const n = toJsNumber(value);
  if (Number.isNaN(n)) return 0n;
  if (n >= 2 ** 63) return LLONG_MAX;
  if (n <= -(2 ** 63)) return LLONG_MIN;
  return BigInt(Math.trunc(n));
}

/**
 * A command's `maxTimeMS` (or `field`) in mongod's terms: 0 when absent (no limit), a
 * BadValue for a non-number, a value outside [0, INT_MAX], or a fractional double, in
 * mongod's words (src/mongo/db/query/max_time_ms_parser.cpp, parseMaxTimeMS). mongod
 * parses it for every command before running it (service_entry_point_common.cpp), the
 * getMore whose maxTimeMS is an await time included.
 */
export function parseMaxTimeMS(cmd: Document, field = 'maxTimeMS'): number {
  const value = cmd[field];
  if (value === undefined) return 0;
  const kind = numericKind(value);
  if (kind === undefined) {
    throw new DevServerError(DevServerCodes.BadValue, `${field} must be a number`);
  }
  const truncated = safeNumberLong(value);
  if (truncated < 0n || truncated > BigInt(MAX_TIME_MS)) {
    throw new DevServerError(DevServerCodes.BadValue, `${truncated} value for ${field} is out of range`);
  }
  if (kind === 'double' && !Number.isInteger(toJsNumber(value))) {
    throw new DevServerError(DevServerCodes.BadValue, `${field} has non-integral value`);
  }
  return Number(truncated);
}

/**
 * Calls `fire` after `ms` (any non-negative count, however far beyond Node's timer
 * limit), re-arming one timer at most MAX_TIME_MS at a time; returns the cancel.
 * `unref` timers do not keep the process alive.
 */
export function setLongTimeout(fire: () => void, ms: number, options: { unref?: boolean } = {}): () => void {
  const deadline = Date.now() + ms;
  let timer: NodeJS.Timeout;
  const arm = (): void => {
    const left = deadline - Date.now();
    if (left <= 0) {
      fire();
      return;
    }
    timer = setTimeout(arm, Math.min(left, MAX_TIME_MS));
    if (options.unref === true) timer.unref();
  };
  timer = setTimeout(arm, Math.min(Math.max(0, ms), MAX_TIME_MS));
  if (options.unref === true) timer.unref();
  return () => clearTimeout(timer);
}
