/**
 * backupVerify: `{backupVerify: "<dir>"}`, optionally with `rate` (bytes per second, or a
 * string with a unit as backupThrottle takes). Any other field but the generic ones is
 * refused as mongod's IDL parser refuses one (40415), so that a misspelt `rte` never
 * silently runs the verify at the proxy's throttle. A good backup answers `{ok: 1, state:
 * "complete", ...}`; any other answers `{ok: 0, errmsg, code, codeName, state, problems,
 * ...}`, as mongod reports a failed command, with every file that does not match the
 * manifest listed by name (src/backup/verify_verdict.ts has the fields).
 */
import { Int32, Long } from 'bson';
import type { Document } from '../wire/command_message.js';
import { parseThrottle } from '../backup/units.js';
import { verdictDocument, type VerifyVerdict } from '../backup/verify_verdict.js';
import type { VerifyRequest } from '../backup/verifier.js';
import { CommandError, ErrorCodes } from '../errors.js';
import { checkKnownFields } from './backup_start_options.js';

/** backupVerify's own fields, besides its name and the generic ones. */
const VERIFY_OPTIONS: ReadonlySet<string> = new Set(['rate']);

/** All backupVerify needs of whatever verifies backups: BackupVerifier (src/backup/verifier.ts), or a test's. */
export interface VerifyService {
  verify(request: VerifyRequest): Promise<VerifyVerdict>;
}

export async function backupVerify(cmd: Document, verifier: VerifyService): Promise<Document> {
  checkKnownFields(cmd, VERIFY_OPTIONS);
  let rate: number | undefined;
  if (cmd['rate'] !== undefined) {
    try {
      rate = parseThrottle(cmd['rate']);
    } catch (err) {
      throw new CommandError(ErrorCodes.BadValue, `backupVerify option 'rate' ${(err as Error).message.replace(/^backupThrottle argument /, '')}`);
    }
  }
  const verdict = await verifier.verify({ directory: cmd['backupVerify'], ...(rate === undefined ? {} : { rate }) });
  const { ok: _ok, ...doc } = verdictDocument(verdict);
  // mongod's order: the fields, then ok (and errmsg, code, codeName when it failed).
  return {
    ...doc,
    files: new Int32(verdict.files),
    bytes: Long.fromNumber(verdict.bytes),
    bytesHashed: Long.fromNumber(verdict.bytesHashed),
    ok: verdict.ok ? 1 : 0,
  };
}
