/**
 * A write concern the one-node set cannot satisfy. The write is done; the reply says
 * so in `writeConcernError`, as mongod's waitForWriteConcern reports it
 * (src/mongo/db/write_concern.cpp; the checks are ReplSetConfig::
 * checkIfWriteConcernCanBeSatisfied in src/mongo/db/repl/repl_set_config.cpp).
 * `w: 1`, `w: 'majority'` and `w: 0` are satisfied by this node alone.
 */
import type { Document } from '../bson.js';
import { isNumeric, toNumber } from '../query/values.js';
import { DevServerCodes } from '../dev_server_errors.js';

export function writeConcernError(cmd: Document): Document | undefined {
  const wc = cmd['writeConcern'];
  if (wc === null || typeof wc !== 'object') return undefined;
  const w = (wc as Document)['w'];
  let error: { code: number; codeName: string; errmsg: string } | undefined;
  if (isNumeric(w) && toNumber(w) > 1) {
    error = { code: DevServerCodes.UnsatisfiableWriteConcern, codeName: 'UnsatisfiableWriteConcern', errmsg: 'Not enough data-bearing nodes' };
  } else if (typeof w === 'string' && w !== 'majority') {
    // The set has no getLastErrorModes (ReplSetConfig::findCustomWriteMode).
    error = { code: DevServerCodes.UnknownReplWriteConcern, codeName: 'UnknownReplWriteConcern', errmsg: `No write concern mode named '${w}' found in replica set configuration` };
  }
  if (error === undefined) return undefined;
  const wtimeout = (wc as Document)['wtimeout'];
  // errInfo.writeConcern: the concern that was applied, and where it came from (4.4+).
  const applied: Document = { w, wtimeout: isNumeric(wtimeout) ? toNumber(wtimeout) : 0, provenance: 'clientSupplied' };
  return { ...error, errInfo: { writeConcern: applied } };
}
