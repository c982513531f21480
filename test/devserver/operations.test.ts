/**
 * The dev server's currentOp, $currentOp and killOp, with the driver: what mongod lists
 * and answers, so that the proxy's amended currentOp and forwarded killOp are tested
 * against mongod's shapes and errors.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Long, MongoClient, MongoServerError, type Document } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';

async function failure(promise: Promise<unknown>): Promise<{ code: number | undefined; message: string }> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof MongoServerError, String(err));
    return { code: typeof err.code === 'number' ? err.code : undefined, message: err.message };
  }
  assert.fail('expected an error');
}

describe('dev server operations', () => {
  let server: RunningDevServer;
  let client: MongoClient;
  const admin = () => client.db('admin');

  before(async () => {
    server = await startDevServer();
    client = new MongoClient(server.uri);
    await client.connect();
  });

  after(async () => {
    await client?.close();
    await server?.stop();
    server?.cleanup();
  });

  it('lists the asking command, with an int32 opid, filtered as mongod filters', async () => {
    const inprog = (await admin().command({ currentOp: 1, $all: true, comment: 'mine' }))['inprog'] as Document[];
    assert.equal(inprog.length, 1);
    const op = inprog[0] as Document;
    assert.equal(op['op'], 'command');
    assert.equal(op['ns'], 'admin.$cmd');
    assert.equal((op['command'] as Document)['currentOp'], 1);
    assert.match(String(op['desc']), /^conn\d+$/);
    assert.ok(Number.isInteger(op['opid']) && (op['opid'] as number) < 2 ** 31);
    // $all and the generic fields are no filter; anything else is.
    assert.deepEqual((await admin().command({ currentOp: 1, op: 'query' }))['inprog'], []);
    const staged = await admin().aggregate([{ $currentOp: { allUsers: true } }, { $match: { op: 'command' } }, { $project: { ns: 1, _id: 0 } }]).toArray();
    assert.deepEqual(staged, [{ ns: 'admin.$cmd.aggregate' }]);
  });

  it("refuses $currentOp where mongod does", async () => {
    assert.equal((await failure(client.db('app').aggregate([{ $currentOp: {} }]).toArray())).code, 73);
    const unknown = await failure(admin().aggregate([{ $currentOp: { everything: true } }]).toArray());
    assert.deepEqual(unknown, { code: 40415, message: "BSON field '$currentOp.everything' is an unknown field." });
  });

  it('answers killOp as mongod does: success for any 32-bit op, its errors otherwise', async () => {
    assert.deepEqual(await admin().command({ killOp: 1, op: 12345 }), { info: 'attempting to kill op', ok: 1 });
    assert.deepEqual(await failure(admin().command({ killOp: 1, op: Long.fromNumber(2 ** 32 + 1) })), {
      code: 26823,
      message: 'invalid op : 4294967297. Op ID cannot be represented with 32 bits',
    });
    assert.deepEqual(await failure(admin().command({ killOp: 1 })), { code: 4, message: 'Missing expected field "op"' });
    assert.equal((await failure(admin().command({ killOp: 1, op: 'x' }))).code, 14);
    assert.equal((await failure(client.db('app').command({ killOp: 1, op: 1 }))).code, 13);
  });
});
