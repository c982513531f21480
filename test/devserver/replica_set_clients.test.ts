/**
 * Real clients against the dev server as a replica set, with `replicaSet=rs0` and no
 * directConnection: mongosh (rs.initiate(), rs.status(), rs.conf(), an insert and a
 * read) and Debian's pymongo 3.11, each discovering the primary from hello's hosts.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startReplicaSet, REPLICA_SET_NAME, type RunningReplicaSet } from '../helpers/replica_set.js';
import { runMongosh } from '../helpers/mongosh.js';
import { PYMONGO_MISSING, runPymongo } from '../helpers/pymongo.js';

describe('clients with replicaSet=rs0', () => {
  let rs: RunningReplicaSet;

  before(async () => {
    // Uninitiated: mongosh initiates it, as a user would.
    rs = await startReplicaSet({ initiate: false });
  });

  after(async () => {
    await rs?.server.stop();
    rs?.server.cleanup();
  });

  it('mongosh initiates the set with rs.initiate() and shows rs.conf()', async () => {
    const result = await runMongosh(
      `mongodb://127.0.0.1:${rs.server.port}/?directConnection=true`,
      `const r = rs.initiate(); const c = rs.conf(); print(JSON.stringify({ ok: r.ok, me: r.me, id: c._id, hosts: c.members.map((m) => m.host) }));`,
    );
    assert.equal(result.code, 0, result.stderr);
    const me = `127.0.0.1:${rs.server.port}`;
    assert.deepEqual(JSON.parse(result.stdout.trim()), { ok: 1, me, id: REPLICA_SET_NAME, hosts: [me] });
  });

  it('mongosh with ?replicaSet=rs0 runs rs.status(), inserts and reads', async () => {
    const result = await runMongosh(
      rs.uri,
      `const s = rs.status();
       db.getSiblingDB('app').shell.insertOne({ _id: 1, from: 'mongosh' });
       const doc = db.getSiblingDB('app').shell.findOne({ _id: 1 });
       print(JSON.stringify({ set: s.set, states: s.members.map((m) => m.stateStr), self: s.members[0].self, doc, primary: db.hello().primary }));`,
    );
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout.trim()), {
      set: REPLICA_SET_NAME,
      states: ['PRIMARY'],
      self: true,
      doc: { _id: 1, from: 'mongosh' },
      primary: `127.0.0.1:${rs.server.port}`,
    });
  });

  it('pymongo 3.11 with replicaSet=rs0 finds the primary, inserts and reads', { skip: PYMONGO_MISSING }, async () => {
    const result = await runPymongo(rs.uri);
    assert.equal(result.code, 0, result.stderr);
    const out = JSON.parse(result.stdout.trim()) as { version: string; primary: [string, number]; docs: unknown[] };
    assert.deepEqual(out.primary, ['127.0.0.1', rs.server.port]);
    assert.deepEqual(out.docs, [{ _id: 1, from: 'pymongo' }]);
  });
});
