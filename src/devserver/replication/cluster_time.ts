/**
 * `$clusterTime` and `operationTime`: what every reply of an initiated member carries,
 * and what causally consistent sessions send back (`$clusterTime`, `readConcern:
 * {afterClusterTime}`).
 *
 * The cluster time is the last applied oplog timestamp: one node, no other clock to
 * gossip with, and no keys, so the signature is mongod's for a server without them,
 * 20 zero bytes and keyId 0 (src/mongo/db/vector_clock_mongod.cpp with
 * src/mongo/db/logical_time_validator.cpp, which signs nothing when there are no keys).
 * operationTime is the command's own last oplog entry when it wrote, the last applied
 * entry otherwise (src/mongo/db/service_entry_point_common.cpp, computeOperationTime).
 */
import { Binary, Long, Timestamp } from 'bson';
import type { Document } from '../bson.js';
import type { ServerState } from '../state.js';
import type { OpTime } from './oplog.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';

const ZERO_HASH = new Binary(Buffer.alloc(20), Binary.SUBTYPE_DEFAULT);

/** The set's clock, or undefined when there is none (standalone, uninitiated). */
export function clusterTime(state: ServerState): Timestamp | undefined {
  if (state.replSet?.initiated !== true) return undefined;
  return state.oplog?.lastApplied()?.ts;
}

/** `{$clusterTime, operationTime}` for a reply; empty without a set to speak for. */
export function replyTimes(state: ServerState, operation: OpTime | undefined): Document {
  const now = clusterTime(state);
  if (now === undefined) return {};
  return {
    $clusterTime: { clusterTime: now, signature: { hash: ZERO_HASH, keyId: Long.fromNumber(0) } },
    operationTime: operation?.ts ?? now,
  };
}

/** Timestamp's own toString in mongod (src/mongo/bson/timestamp.cpp): `Timestamp(secs, inc)`. */
function formatTimestamp(ts: Timestamp): string {
  return `Timestamp(${ts.high >>> 0}, ${ts.low >>> 0})`;
}

/**
 * `readConcern: {afterClusterTime}` later than the server's clock is refused, as mongod
 * refuses it (src/mongo/db/read_concern_mongod.cpp, waitForReadConcernImpl). Anything
 * at or before it is already applied on the one node, so there is nothing to wait for.
 */
export function checkReadConcern(cmd: Document, state: ServerState): void {
  const readConcern = cmd['readConcern'];
  if (readConcern === null || typeof readConcern !== 'object') return;
  const after = (readConcern as Document)['afterClusterTime'];
  if (!(after instanceof Timestamp)) return;
  const now = clusterTime(state);
  if (now === undefined) return;
  if (after.greaterThan(now)) {
    throw new DevServerError(
      DevServerCodes.InvalidOptions,
      `readConcern afterClusterTime value must not be greater than the current clusterTime. Requested clusterTime: ${formatTimestamp(after)}; current clusterTime: ${formatTimestamp(now)}`,
    );
  }
}
