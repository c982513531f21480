/**
 * A `--replSet` dev server before and at replSetInitiate, as mongod answers: an
 * uninitiated member says so in hello and refuses writes and unflagged reads; the
 * initiate config is checked with mongod's codes and words; initiating wakes the
 * awaitable hellos that monitors have waiting; a server without --replSet refuses the
 * replica set commands with NoReplicationEnabled.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MongoClient, MongoServerError, type Document } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { RawClient, opMsg, decodeReply } from '../helpers/raw_client.js';
import { OpMsgFlag } from '../../src/wire/constants.js';
import { replicaSetUri } from '../helpers/replica_set.js';
import { inBackground } from '../helpers/poll.js';

function direct(port: number): string {
  return `mongodb://127.0.0.1:${port}/?directConnection=true`;
}

async function refused(work: Promise<unknown>, code: number, codeName: string, message: string | RegExp): Promise<MongoServerError> {
  let error: MongoServerError | undefined;
  await assert.rejects(work, (err: unknown) => {
    assert.ok(err instanceof MongoServerError, String(err));
    assert.equal(err.code, code);
    assert.equal(err.codeName, codeName);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    error = err;
    return true;
  });
  return error as MongoServerError;
}

describe('dev server --replSet rs0 before replSetInitiate', () => {
  let server: RunningDevServer;
  let client: MongoClient;

  before(async () => {
    server = await startDevServer({ args: ['--replSet', 'rs0'] });
    client = new MongoClient(direct(server.port));
    await client.connect();
  });

  after(async () => {
    await client?.close();
    await server?.stop();
    server?.cleanup();
  });

  it('answers hello as a member without a valid config', async () => {
    const hello = await client.db('admin').command({ hello: 1 });
    assert.equal(hello['isWritablePrimary'], false);
    assert.equal(hello['secondary'], false);
    assert.equal(hello['info'], 'Does not have a valid replica set config');
    assert.equal(hello['isreplicaset'], true);
    assert.equal(hello['setName'], undefined);
    assert.equal(hello['operationTime'], undefined, 'no cluster time before initiate');
    assert.equal(hello['$clusterTime'], undefined);
    const legacy = await client.db('admin').command({ isMaster: 1 });
    assert.equal(legacy['ismaster'], false);
  });

  it('refuses writes with NotWritablePrimary, except to local', async () => {
    const err = await refused(client.db('app').collection('c').insertOne({ a: 1 }), 10107, 'NotWritablePrimary', 'not primary');
    assert.ok((err as unknown as Document)['topologyVersion'] !== undefined, 'a not-primary error carries topologyVersion');
    await refused(client.db('app').createCollection('made'), 10107, 'NotWritablePrimary', 'not primary');
    await client.db('local').collection('scratch').insertOne({ a: 1 });
    assert.equal(await client.db('local').collection('scratch').countDocuments(), 1);
  });

  it('refuses reads: without secondaryOk, and with it while not primary or secondary', async () => {
    // A direct connection reads primaryPreferred: opted in, but the member is in STARTUP.
    await refused(client.db('app').collection('c').findOne({}), 13436, 'NotPrimaryOrSecondary', 'node is not in primary or recovering state');
    // mongosh's `show dbs`, as an uninitiated PSMDB 7.0 answers it.
    await refused(client.db('admin').admin().listDatabases(), 13436, 'NotPrimaryOrSecondary', 'node is not in primary or recovering state');
    const raw = await RawClient.connect(server.port);
    try {
      const find = { find: 'c', $db: 'app', $readPreference: { mode: 'primary' } };
      // A client that never said hello is told in the old words (service_entry_point_common.cpp).
      const legacy = (await raw.command(opMsg(find))).doc;
      assert.deepEqual([legacy['code'], legacy['codeName'], legacy['errmsg']], [13435, 'NotPrimaryNoSecondaryOk', 'not master and slaveOk=false']);
      await raw.command(opMsg({ hello: 1, $db: 'admin' }));
      const modern = (await raw.command(opMsg(find))).doc;
      assert.deepEqual([modern['code'], modern['errmsg']], [13435, 'not primary and secondaryOk=false']);
      assert.deepEqual([(await raw.command(opMsg({ insert: 'c', documents: [{}], $db: 'app' }))).doc['errmsg']], ['not primary']);
    } finally {
      raw.close();
    }
  });

  it('answers replSetGetStatus and replSetGetConfig with NotYetInitialized', async () => {
    for (const command of [{ replSetGetStatus: 1 }, { replSetGetConfig: 1 }]) {
      const err = await refused(client.db('admin').command(command), 94, 'NotYetInitialized', 'no replset config has been received');
      assert.equal((err as unknown as Document)['info'], 'run rs.initiate(...) if not yet done for the set');
    }
  });

  it("refuses a config that is not this one node's, with mongod's InvalidReplicaSetConfig", async () => {
    const admin = client.db('admin');
    const me = `127.0.0.1:${server.port}`;
    const cases: Array<[Document, string | RegExp]> = [
      [
        { _id: 'other', members: [{ _id: 0, host: me }] },
        'Rejecting initiate with a set name that differs from command line set name, initiate set name: other, command line set name: rs0',
      ],
      [{ _id: 'rs0', version: 2, members: [{ _id: 0, host: me }] }, 'Configuration used to initiate a replica set must  have version 1, but found 2'],
      [{ _id: 'rs0' }, "BSON field 'ReplSetConfig.members' is missing but a required field"],
      [{ members: [{ _id: 0, host: me }] }, "BSON field 'ReplSetConfig._id' is missing but a required field"],
      [
        { _id: 'rs0', members: [{ _id: 0, host: `127.0.0.1:${server.port + 1}` }] },
        'No host described in new configuration with {version: 1, term: 0} for replica set rs0 maps to this node',
      ],
      [{ _id: 'rs0', members: [{ _id: 0, host: me }, { _id: 1, host: 'elsewhere.invalid:27017' }] }, /^the hotbackup dev server is a single-node replica set/],
    ];
    for (const [config, message] of cases) {
      await refused(admin.command({ replSetInitiate: config }), 93, 'InvalidReplicaSetConfig', message);
    }
    assert.equal((await admin.command({ hello: 1 }))['isWritablePrimary'], false, 'still uninitiated');
  });

  it('initiates with a given config, and wakes the awaitable hellos waiting at once', async () => {
    const raw = await RawClient.connect(server.port);
    const streaming = await RawClient.connect(server.port);
    const monitorClient = new MongoClient(replicaSetUri(server.port), { serverSelectionTimeoutMS: 600_000 });
    try {
      const first = (await raw.command(opMsg({ hello: 1, $db: 'admin' }))).doc;
      // Far longer than the test's own timeout, and past Node's timer limit (2^31-1 ms),
      // which mongod's 64-bit maxAwaitTimeMS may be: only the initiate can end this wait.
      const awaitable = { hello: 1, $db: 'admin', topologyVersion: first['topologyVersion'], maxAwaitTimeMS: 3e9 };
      const waiting = raw.command(opMsg(awaitable));
      // The monitors' form: an exhaust stream, each reply answering the one before.
      streaming.send(opMsg(awaitable, { flags: OpMsgFlag.ExhaustAllowed }));
      // A replicaSet= client finds no primary yet, and waits for one.
      const writer = inBackground(async () => {
        await monitorClient.db('app').collection('after').insertOne({ _id: 1 as never });
      });
      const host = `localhost:${server.port}`;
      const reply = await client.db('admin').command({ replSetInitiate: { _id: 'rs0', members: [{ _id: 5, host }] } });
      assert.equal(reply['ok'], 1);
      const woken = (await waiting).doc;
      assert.equal(woken['isWritablePrimary'], true);
      assert.equal(woken['me'], host);
      const counter = (reply: Document): number => Number((reply['topologyVersion'] as Document)['counter']);
      assert.ok(counter(woken) > counter(first));
      const [streamed] = await streaming.waitForFrames(1);
      assert.equal(decodeReply(streamed as Buffer).doc['isWritablePrimary'], true);
      // The stream's next reply waits for a change from the one it just sent: after a
      // round trip on another connection, still one reply, and the server still answers.
      assert.equal((await client.db('admin').command({ ping: 1 }))['ok'], 1);
      assert.equal(streaming.frames.length, 1, 'the exhaust stream must wait, not answer again at once');
      await writer.done;
      assert.equal(await monitorClient.db('app').collection('after').countDocuments(), 1);
      const { config } = await client.db('admin').command({ replSetGetConfig: 1 });
      assert.deepEqual(config['members'].map((m: Document) => [m['_id'], m['host']]), [[5, host]]);
    } finally {
      raw.close();
      streaming.close();
      await monitorClient.close();
    }
  });
});

describe('dev server without --replSet', () => {
  let server: RunningDevServer;

  before(async () => {
    server = await startDevServer();
  });

  after(async () => {
    await server?.stop();
    server?.cleanup();
  });

  it('refuses the replica set commands with NoReplicationEnabled, and says no set in hello', async () => {
    const client = new MongoClient(direct(server.port));
    try {
      const admin = client.db('admin');
      await refused(admin.command({ replSetInitiate: {} }), 76, 'NoReplicationEnabled', 'This node was not started with replication enabled.');
      await refused(admin.command({ replSetGetStatus: 1 }), 76, 'NoReplicationEnabled', 'not running with --replSet');
      await refused(admin.command({ replSetGetConfig: 1 }), 76, 'NoReplicationEnabled', 'not running with --replSet');
      const hello = await admin.command({ hello: 1 });
      assert.equal(hello['isWritablePrimary'], true);
      assert.equal(hello['setName'], undefined);
      assert.equal(hello['operationTime'], undefined);
      await admin.collection('c').insertOne({ a: 1 });
    } finally {
      await client.close();
    }
  });
});
