/**
 * The dev server as an initiated single-node replica set, through the npm driver with
 * `replicaSet=rs0` (no directConnection): the driver discovers a primary and does its
 * CRUD; hello, replSetGetStatus and replSetGetConfig answer as mongod 7.0's do; every
 * reply carries $clusterTime and operationTime; write and read concerns are judged as
 * on a one-node set; a restart on the same dbpath is primary at once.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Binary, Long, MongoClient, MongoServerError, MongoWriteConcernError, ObjectId, Timestamp, type Document } from 'mongodb';
import { startReplicaSet, restartReplicaSet, replicaSetUri, type RunningReplicaSet } from '../helpers/replica_set.js';
import { startDevServer } from '../helpers/dev_server.js';

describe('dev server --replSet rs0, initiated', () => {
  let rs: RunningReplicaSet;
  let client: MongoClient;
  const topologyTypes: string[] = [];

  before(async () => {
    rs = await startReplicaSet();
    client = new MongoClient(rs.uri, { serverSelectionTimeoutMS: 30_000 });
    client.on('topologyDescriptionChanged', (event) => topologyTypes.push(event.newDescription.type));
    await client.connect();
  });

  after(async () => {
    await client?.close();
    await rs?.server.stop();
    rs?.server.cleanup();
  });

  it('is discovered as a replica set with a primary, and takes CRUD', async () => {
    const people = client.db('app').collection<{ _id: number; name: string; age?: number }>('people');
    await people.insertMany([{ _id: 1, name: 'ada' }, { _id: 2, name: 'bob' }]);
    await people.updateOne({ _id: 2 }, { $set: { age: 30 } });
    await people.deleteOne({ _id: 1 });
    assert.deepEqual(await people.find().toArray(), [{ _id: 2, name: 'bob', age: 30 }]);
    assert.ok(topologyTypes.includes('ReplicaSetWithPrimary'), `topology types seen: ${topologyTypes.join(', ')}`);
  });

  it("answers hello with the set's fields, in mongod's order", async () => {
    const hello = await client.db('admin').command({ hello: 1 });
    const me = `127.0.0.1:${rs.server.port}`;
    assert.deepEqual(Object.keys(hello).slice(0, 10), [
      'topologyVersion', 'hosts', 'setName', 'setVersion', 'isWritablePrimary', 'secondary', 'primary', 'me', 'electionId', 'lastWrite',
    ]);
    assert.deepEqual(hello['hosts'], [me]);
    assert.equal(hello['setName'], 'rs0');
    assert.equal(hello['setVersion'], 1);
    assert.equal(hello['isWritablePrimary'], true);
    assert.equal(hello['secondary'], false);
    assert.equal(hello['primary'], me);
    assert.equal(hello['me'], me);
    assert.equal((hello['electionId'] as ObjectId).toHexString(), '7fffffff0000000000000001');
    const lastWrite = hello['lastWrite'] as Document;
    assert.ok(lastWrite['opTime']['ts'] instanceof Timestamp);
    assert.deepEqual(lastWrite['majorityOpTime'], lastWrite['opTime']);
    assert.ok(lastWrite['lastWriteDate'] instanceof Date);
    const legacy = await client.db('admin').command({ isMaster: 1 });
    assert.equal(legacy['ismaster'], true);
    assert.equal(legacy['isWritablePrimary'], undefined);
  });

  it('puts $clusterTime and operationTime on every reply; a write\'s operationTime is its last oplog entry', async () => {
    const admin = client.db('admin');
    const ping = await admin.command({ ping: 1 });
    const clusterTime = ping['$clusterTime'] as Document;
    assert.ok(clusterTime['clusterTime'] instanceof Timestamp);
    // mongod without keys: 20 zero bytes, keyId 0 (a Long on the wire; the driver promotes it).
    assert.deepEqual(clusterTime['signature'], { hash: new Binary(Buffer.alloc(20), 0), keyId: 0 });
    assert.ok(ping['operationTime'] instanceof Timestamp);
    const insert = await client.db('app').command({ insert: 'times', documents: [{ _id: 1 }] });
    const oplog = await client.db('local').collection('oplog.rs').find().toArray();
    const lastEntry = oplog[oplog.length - 1];
    assert.ok(lastEntry !== undefined);
    assert.ok((insert['operationTime'] as Timestamp).equals(lastEntry['ts'] as Timestamp));
    // An error reply carries them too.
    const failed = await client.db('app').command({ insert: 'times', documents: [{ _id: 1 }], ordered: true });
    assert.equal((failed['writeErrors'] as Document[])[0]?.['code'], 11000);
    await assert.rejects(admin.command({ noSuchCommand: 1 }), (err: unknown) => {
      assert.ok(err instanceof MongoServerError);
      assert.ok(err['operationTime'] instanceof Timestamp);
      assert.ok(err['$clusterTime'] !== undefined);
      return true;
    });
  });

  it('answers replSetGetStatus as mongod 7.0 shapes it', async () => {
    const status = await client.db('admin').command({ replSetGetStatus: 1 });
    assert.equal(status['set'], 'rs0');
    assert.equal(status['myState'], 1);
    assert.ok(Long.fromValue(status['term']).equals(1));
    const optimes = status['optimes'] as Document;
    for (const field of ['lastCommittedOpTime', 'readConcernMajorityOpTime', 'appliedOpTime', 'durableOpTime']) {
      assert.ok(optimes[field]['ts'] instanceof Timestamp, field);
    }
    assert.ok(optimes['lastAppliedWallTime'] instanceof Date);
    const members = status['members'] as Document[];
    assert.equal(members.length, 1);
    const self = members[0] as Document;
    assert.equal(self['name'], `127.0.0.1:${rs.server.port}`);
    assert.equal(self['stateStr'], 'PRIMARY');
    assert.equal(self['self'], true);
    assert.ok(self['optime']['ts'] instanceof Timestamp);
    assert.ok(self['optimeDate'] instanceof Date);
    assert.ok((status['operationTime'] as Timestamp).equals(optimes['appliedOpTime']['ts'] as Timestamp));
  });

  it("began the oplog with mongod's no-op, and shows the set in serverStatus", async () => {
    const first = await client.db('local').collection('oplog.rs').findOne({});
    assert.equal(first?.['op'], 'n');
    assert.deepEqual(first?.['o'], { msg: 'initiating set' });
    assert.ok(first?.['ts'] instanceof Timestamp);
    const repl = (await client.db('admin').command({ serverStatus: 1 }))['repl'] as Document;
    assert.equal(repl['setName'], 'rs0');
    assert.equal(repl['isWritablePrimary'], true);
    assert.equal(repl['me'], `127.0.0.1:${rs.server.port}`);
  });

  it('answers replSetGetConfig with the default config: this node alone', async () => {
    const { config } = await client.db('admin').command({ replSetGetConfig: 1 });
    assert.equal(config['_id'], 'rs0');
    assert.equal(config['version'], 1);
    assert.deepEqual(config['members'].map((m: Document) => [m['_id'], m['host'], m['priority'], m['votes']]), [[0, `127.0.0.1:${rs.server.port}`, 1, 1]]);
    assert.ok(config['settings']['replicaSetId'] instanceof ObjectId);
  });

  it('refuses a second replSetInitiate with AlreadyInitialized', async () => {
    await assert.rejects(client.db('admin').command({ replSetInitiate: {} }), (err: unknown) => {
      assert.ok(err instanceof MongoServerError);
      assert.equal(err.code, 23);
      assert.equal(err.codeName, 'AlreadyInitialized');
      assert.equal(err.message, 'already initialized');
      return true;
    });
  });

  it("acknowledges w: 'majority', and reports w: 2 and unknown modes in writeConcernError after writing", async () => {
    const coll = client.db('app').collection('wc');
    await coll.insertOne({ _id: 'majority' as never }, { writeConcern: { w: 'majority' } });
    const wcError = async (w: unknown): Promise<Document> => {
      let reply: Document | undefined;
      await assert.rejects(client.db('app').command({ insert: 'wc', documents: [{ _id: String(w) }], writeConcern: { w } }), (err: unknown) => {
        assert.ok(err instanceof MongoWriteConcernError, String(err));
        reply = err.result as Document;
        return true;
      });
      assert.equal(reply?.['n'], 1);
      assert.equal(reply?.['ok'], 1);
      return reply?.['writeConcernError'] as Document;
    };
    assert.deepEqual(await wcError(2), {
      code: 100,
      codeName: 'UnsatisfiableWriteConcern',
      errmsg: 'Not enough data-bearing nodes',
      errInfo: { writeConcern: { w: 2, wtimeout: 0, provenance: 'clientSupplied' } },
    });
    assert.equal((await wcError('dc1'))['code'], 79);
    assert.equal(await coll.countDocuments(), 3, 'the writes were done all the same');
  });

  it('reads with readConcern majority and afterClusterTime, and refuses a cluster time from the future', async () => {
    const coll = client.db('app').collection('rc');
    await coll.insertOne({ _id: 1 as never });
    const session = client.startSession({ causalConsistency: true });
    try {
      await coll.insertOne({ _id: 2 as never }, { session });
      // The driver sends afterClusterTime = the insert's operationTime.
      assert.equal((await coll.find({}, { session, readConcern: { level: 'majority' } }).toArray()).length, 2);
    } finally {
      await session.endSession();
    }
    const future = new Timestamp({ t: Math.floor(Date.now() / 1000) + 3600, i: 1 });
    await assert.rejects(client.db('app').command({ find: 'rc', readConcern: { afterClusterTime: future } }), (err: unknown) => {
      assert.ok(err instanceof MongoServerError);
      assert.equal(err.code, 72);
      assert.match(err.message, /^readConcern afterClusterTime value must not be greater than the current clusterTime\. Requested clusterTime: Timestamp\(\d+, 1\); current clusterTime: Timestamp\(\d+, \d+\)$/);
      return true;
    });
  });

  it('shows --replSet and --oplogSize in getCmdLineOpts as mongod does', async () => {
    const opts = await client.db('admin').command({ getCmdLineOpts: 1 });
    assert.deepEqual(opts['parsed']['replication'], { replSet: 'rs0' });
  });
});

describe('dev server --replSet rs0, restarted', () => {
  it('is primary of the same set at once, with its data and its oplog', async () => {
    const rs = await startReplicaSet({ args: ['--oplogSize', '5'] });
    let server = rs.server;
    try {
      const first = new MongoClient(rs.uri, { serverSelectionTimeoutMS: 30_000 });
      let setId: unknown;
      let opts: Document;
      try {
        await first.db('app').collection('kept').insertOne({ _id: 1 as never });
        setId = (await first.db('admin').command({ replSetGetConfig: 1 }))['config']['settings']['replicaSetId'];
        opts = await first.db('admin').command({ getCmdLineOpts: 1 });
      } finally {
        await first.close();
      }
      assert.deepEqual(opts['parsed']['replication'], { oplogSizeMB: 5, replSet: 'rs0' });
      assert.equal(await server.stop(), 0);
      server = (await restartReplicaSet(server)).server;
      // The very first hello, on a direct connection: already primary, no initiate.
      const direct = new MongoClient(`mongodb://127.0.0.1:${server.port}/?directConnection=true`);
      try {
        const hello = await direct.db('admin').command({ hello: 1 });
        assert.equal(hello['isWritablePrimary'], true);
        assert.equal(hello['setName'], 'rs0');
      } finally {
        await direct.close();
      }
      const again = new MongoClient(replicaSetUri(server.port), { serverSelectionTimeoutMS: 30_000 });
      try {
        assert.deepEqual(await again.db('app').collection('kept').find().toArray(), [{ _id: 1 }]);
        await again.db('app').collection('kept').insertOne({ _id: 2 as never });
        assert.deepEqual((await again.db('admin').command({ replSetGetConfig: 1 }))['config']['settings']['replicaSetId'], setId);
        assert.ok((await again.db('local').collection('oplog.rs').countDocuments()) >= 1);
      } finally {
        await again.close();
      }
      assert.equal(await server.stop(), 0);
      await assert.rejects(startDevServer({ dbpath: server.dbpath, args: ['--replSet', 'other'] }), /the dbpath holds replica set 'rs0', not 'other' \(--replSet\)/);
    } finally {
      await server.stop();
      rs.server.cleanup();
    }
  });
});
