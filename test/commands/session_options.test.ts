/** mongod's session-field checks, in mongod's order, for a command that is never a transaction statement. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Int32, Long, UUID } from 'bson';
import { checkNoTransaction, HelloUpstreamRole, type UpstreamRole } from '../../src/commands/session_options.js';
import { CommandError } from '../../src/errors.js';
import type { Document } from '../../src/wire/command_message.js';

const replicaSet: UpstreamRole = { acceptsTransactionNumbers: async () => true };
const standalone: UpstreamRole = { acceptsTransactionNumbers: async () => false };
const lsid = { id: new UUID() };

async function refusal(cmd: Document, role: UpstreamRole = replicaSet): Promise<{ code: number; codeName: string; message: string }> {
  try {
    await checkNoTransaction('backupStatus', cmd, role);
  } catch (err) {
    assert.ok(err instanceof CommandError);
    return { code: err.code, codeName: err.codeName, message: err.message };
  }
  throw new Error('expected a refusal');
}

describe('checkNoTransaction', () => {
  it('passes a command with no session fields, or only an lsid, without asking the upstream', async () => {
    const never: UpstreamRole = { acceptsTransactionNumbers: () => Promise.reject(new Error('asked')) };
    await checkNoTransaction('backupStatus', { backupStatus: 1 }, never);
    await checkNoTransaction('backupStatus', { backupStatus: 1, lsid }, never);
  });

  it('refuses a transaction statement on a replica set (263) and any txnNumber on a standalone (20)', async () => {
    const statement = { backupStatus: 1, lsid, txnNumber: Long.fromNumber(1), autocommit: false, startTransaction: true };
    assert.deepEqual(await refusal(statement), { code: 263, codeName: 'OperationNotSupportedInTransaction', message: "Cannot run 'backupStatus' in a multi-document transaction." });
    assert.deepEqual(await refusal({ ...statement, startTransaction: undefined }), { code: 263, codeName: 'OperationNotSupportedInTransaction', message: "Cannot run 'backupStatus' in a multi-document transaction." });
    const illegal = { code: 20, codeName: 'IllegalOperation', message: 'Transaction numbers are only allowed on a replica set member or mongos' };
    assert.deepEqual(await refusal(statement, standalone), illegal);
    assert.deepEqual(await refusal({ backupStatus: 1, lsid, txnNumber: Long.fromNumber(1) }, standalone), illegal);
  });

  it('refuses a bare txnNumber as not a retryable write (50768)', async () => {
    const { code, codeName } = await refusal({ backupStatus: 1, lsid, txnNumber: Long.fromNumber(7) });
    assert.deepEqual([code, codeName], [50768, 'NotARetryableWriteCommand']);
  });

  it('gives the InvalidOptions (72) of malformed session fields first, as mongod parses them', async () => {
    const cases: Array<[Document, string]> = [
      [{ txnNumber: Long.fromNumber(1) }, 'Transaction number requires a session ID to also be specified'],
      [{ lsid, txnNumber: Long.fromNumber(-1), autocommit: false }, 'Transaction number cannot be negative'],
      [{ lsid, autocommit: false }, "'autocommit' field requires a transaction number to also be specified"],
      [{ lsid, txnNumber: Long.fromNumber(1), autocommit: true }, 'Specifying autocommit=true is not allowed.'],
      [{ lsid, txnNumber: Long.fromNumber(1), startTransaction: true }, "'startTransaction' field requires 'autocommit' field to also be specified"],
      [{ lsid, txnNumber: Long.fromNumber(1), autocommit: false, startTransaction: false }, 'Specifying startTransaction=false is not allowed.'],
    ];
    for (const [fields, message] of cases) {
      assert.deepEqual(await refusal({ backupStatus: 1, ...fields }), { code: 72, codeName: 'InvalidOptions', message });
    }
  });

  it('refuses wrongly typed session fields with the IDL parser text (14)', async () => {
    assert.deepEqual(await refusal({ backupStatus: 1, lsid, txnNumber: new Int32(1), autocommit: false }), {
      code: 14,
      codeName: 'TypeMismatch',
      message: "BSON field 'OperationSessionInfo.txnNumber' is the wrong type 'int', expected type 'long'",
    });
    const { message } = await refusal({ backupStatus: 1, lsid, txnNumber: Long.fromNumber(1), autocommit: 0 });
    assert.equal(message, "BSON field 'OperationSessionInfo.autocommit' is the wrong type 'double', expected type 'bool'");
  });
});

describe('HelloUpstreamRole', () => {
  it('asks hello once, and again only after a failed ask', async () => {
    let asks = 0;
    let fail = true;
    const role = new HelloUpstreamRole(async () => {
      asks++;
      if (fail) throw new Error('upstream down');
      return { isWritablePrimary: true, setName: 'rs0' };
    });
    await assert.rejects(role.acceptsTransactionNumbers(), /upstream down/);
    fail = false;
    assert.equal(await role.acceptsTransactionNumbers(), true);
    assert.equal(await role.acceptsTransactionNumbers(), true);
    assert.equal(asks, 2);
    const standaloneRole = new HelloUpstreamRole(async () => ({ isWritablePrimary: true }));
    assert.equal(await standaloneRole.acceptsTransactionNumbers(), false);
    assert.equal(await new HelloUpstreamRole(async () => ({ msg: 'isdbgrid' })).acceptsTransactionNumbers(), true);
  });
});
