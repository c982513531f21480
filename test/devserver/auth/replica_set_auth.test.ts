/**
 * `--auth --replSet rs0`: the replica set commands need what mongod's need. The
 * localhost exception initiates the set and reads its status, as mongod's docs set up a
 * set with access control; then replSetGetStatus and replSetGetConfig need
 * clusterMonitor's actions, and replSetInitiate clusterManager's (or root's).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MongoClient, MongoServerError, type Document } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../../helpers/dev_server.js';
import { oneAdminCommand } from '../../helpers/one_command.js';

async function rejects(work: Promise<unknown>, code: number, message: RegExp): Promise<void> {
  await assert.rejects(work, (err: unknown) => {
    assert.ok(err instanceof MongoServerError, String(err));
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

describe('dev server --auth --replSet rs0', () => {
  let server: RunningDevServer;
  const anonymous = (): string => `mongodb://127.0.0.1:${server.port}/?directConnection=true`;
  const as = (user: string, extra = 'directConnection=true'): string => `mongodb://${user}:${user}pw@127.0.0.1:${server.port}/?authSource=admin&${extra}`;

  before(async () => {
    server = await startDevServer({ args: ['--auth', '--replSet', 'rs0'] });
  });

  after(async () => {
    await server?.stop();
    server?.cleanup();
  });

  it('lets a local client with no user yet initiate the set and read its status, not its config', async () => {
    await rejects(oneAdminCommand(anonymous(), { replSetGetConfig: 1 }), 13, /^Command replSetGetConfig requires authentication$/);
    assert.equal((await oneAdminCommand(anonymous(), { replSetInitiate: {} }))['ok'], 1);
    assert.equal((await oneAdminCommand(anonymous(), { replSetGetStatus: 1 }))['myState'], 1);
    await rejects(oneAdminCommand(anonymous(), { find: 'c' }), 13, /^Command find requires authentication$/);
  });

  it('gives replSetGetStatus and replSetGetConfig to clusterMonitor, replSetInitiate to clusterManager and root', async () => {
    const client = new MongoClient(anonymous());
    try {
      const admin = client.db('admin');
      await admin.command({ createUser: 'root', pwd: 'rootpw', roles: ['root'] });
    } finally {
      await client.close();
    }
    const rootClient = new MongoClient(as('root'));
    try {
      const admin = rootClient.db('admin');
      await admin.command({ createUser: 'monitor', pwd: 'monitorpw', roles: ['clusterMonitor'] });
      await admin.command({ createUser: 'manager', pwd: 'managerpw', roles: ['clusterManager'] });
      await admin.command({ createUser: 'app', pwd: 'apppw', roles: [{ role: 'readWrite', db: 'app' }] });
    } finally {
      await rootClient.close();
    }
    // The localhost exception ends with the first user.
    await rejects(oneAdminCommand(anonymous(), { replSetGetStatus: 1 }), 13, /^Command replSetGetStatus requires authentication$/);
    const status = await oneAdminCommand(as('monitor'), { replSetGetStatus: 1 });
    assert.equal((status['members'] as Document[])[0]?.['stateStr'], 'PRIMARY');
    assert.equal(((await oneAdminCommand(as('monitor'), { replSetGetConfig: 1 }))['config'] as Document)['_id'], 'rs0');
    await rejects(oneAdminCommand(as('monitor'), { replSetInitiate: {} }), 13, /^not authorized on admin to execute command \{ replSetInitiate: /);
    await rejects(oneAdminCommand(as('app'), { replSetGetStatus: 1 }), 13, /^not authorized on admin to execute command \{ replSetGetStatus: /);
    // Authorized, so the answer is the set's own: it is initiated already.
    await rejects(oneAdminCommand(as('manager'), { replSetInitiate: {} }), 23, /^already initialized$/);
    await rejects(oneAdminCommand(as('root'), { replSetInitiate: {} }), 23, /^already initialized$/);
  });

  it('serves an authenticated replicaSet= client', async () => {
    const client = new MongoClient(as('app', 'replicaSet=rs0'), { serverSelectionTimeoutMS: 30_000 });
    try {
      await client.db('app').collection('c').insertOne({ _id: 1 as never });
      assert.equal(await client.db('app').collection('c').countDocuments(), 1);
    } finally {
      await client.close();
    }
  });
});
