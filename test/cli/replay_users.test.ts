/**
 * User management on a replica set is in the oplog, as mongod logs it: createUser,
 * updateUser and dropUser are insert, update and delete entries on admin.system.users,
 * and `hotbackup replay` of them onto a standalone gives the same users, who can log in
 * with their passwords.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient, type Document } from 'mongodb';
import { serialize } from 'bson';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startReplDevServer } from '../helpers/repl_dev_server.js';
import { runCli } from '../helpers/cli_run.js';
import { tempDir } from '../helpers/paths.js';

describe('user management on a replica set', () => {
  const servers: RunningDevServer[] = [];
  const work = tempDir('replay-users');

  after(async () => {
    for (const server of servers) {
      await server.stop();
      server.cleanup();
    }
    work.remove();
  });

  it('is logged on admin.system.users and replays onto a standalone', async () => {
    const source = await startReplDevServer();
    servers.push(source);
    const target = await startDevServer();
    servers.push(target);
    const client = await MongoClient.connect(source.uri);
    let entries: Document[];
    try {
      const admin = client.db('admin');
      await admin.command({ createUser: 'alice', pwd: 'alice-pw', roles: [{ role: 'read', db: 'app' }] });
      await admin.command({ updateUser: 'alice', customData: { team: 'ops' } });
      await admin.command({ createUser: 'bob', pwd: 'bob-pw', roles: [] });
      await admin.command({ dropUser: 'bob' });
      entries = await client.db('local').collection('oplog.rs').find({}, { promoteValues: false }).toArray();
    } finally {
      await client.close();
    }
    const userOps = entries.filter((e) => e['ns'] === 'admin.system.users').map((e) => [e['op'], (e['o2'] ?? e['o'])['_id']]);
    assert.deepEqual(userOps, [['i', 'admin.alice'], ['u', 'admin.alice'], ['i', 'admin.bob'], ['d', 'admin.bob']]);

    const dir = path.join(work.dir, 'oplog');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'oplog000000.bson'), Buffer.concat(entries.map((e) => Buffer.from(serialize(e)))));
    const first = entries[0]?.['ts'] as { t: number; i: number };
    const last = entries[entries.length - 1]?.['ts'] as { t: number; i: number };
    const run = await runCli(['replay', dir, '--to', target.uri, '--from', `${first.t},${first.i}`, '--until', `${last.t},${last.i}`]);
    assert.equal(run.code, 0, run.stderr);

    const replayed = await MongoClient.connect(target.uri);
    try {
      const info = await replayed.db('admin').command({ usersInfo: { forAllDBs: true } });
      const users = (info['users'] as Document[]).map((u) => [u['user'], u['customData']]);
      assert.deepEqual(users, [['alice', { team: 'ops' }]]);
    } finally {
      await replayed.close();
    }
    const alice = new MongoClient(target.uri, { auth: { username: 'alice', password: 'alice-pw' }, authSource: 'admin' });
    try {
      await alice.connect();
      const status = await alice.db('admin').command({ connectionStatus: 1 });
      assert.deepEqual(status['authInfo']['authenticatedUsers'], [{ user: 'alice', db: 'admin' }]);
    } finally {
      await alice.close();
    }
  });
});
