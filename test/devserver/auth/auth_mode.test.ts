/**
 * The dev server with --auth, through the npm driver: the localhost exception, SCRAM
 * with both mechanisms (speculatively, in hello), code 13 for an unauthenticated or an
 * unprivileged command in mongod's words, code 18 for a wrong password, user management
 * and connectionStatus.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MongoClient, MongoServerError } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../../helpers/dev_server.js';
import { startTapRelay, type TapRelay } from '../../helpers/tap_relay.js';

function userUri(port: number, user: string, password: string, extra = ''): string {
  return `mongodb://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/?directConnection=true&authSource=admin${extra}`;
}

async function withClient<T>(uri: string, use: (client: MongoClient) => Promise<T>): Promise<T> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 20_000 });
  try {
    await client.connect();
    return await use(client);
  } finally {
    await client.close();
  }
}

async function rejects13(work: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(work, (err: unknown) => {
    assert.ok(err instanceof MongoServerError, String(err));
    assert.equal(err.code, 13);
    assert.equal(err.codeName, 'Unauthorized');
    assert.match(err.message, message);
    return true;
  });
}

describe('dev server --auth', () => {
  let server: RunningDevServer;
  let relay: TapRelay;
  const anonymous = (): string => `mongodb://127.0.0.1:${server.port}/?directConnection=true`;

  before(async () => {
    server = await startDevServer({ args: ['--auth'] });
    relay = await startTapRelay(server.port);
  });

  after(async () => {
    await relay?.close();
    await server?.stop();
    server?.cleanup();
  });

  it('lets a local client create the first user and nothing else (the localhost exception)', async () => {
    await withClient(anonymous(), async (client) => {
      const admin = client.db('admin');
      assert.equal((await admin.command({ ping: 1 }))['ok'], 1);
      await rejects13(client.db('app').collection('c').findOne({}), /^Command find requires authentication$/);
      await admin.command({ createUser: 'root', pwd: 'rootpw', roles: ['root'] });
      // The exception is gone once a user exists.
      await rejects13(admin.command({ createUser: 'second', pwd: 'x', roles: ['root'] }), /^Command createUser requires authentication$/);
    });
    await withClient(userUri(server.port, 'root', 'rootpw'), async (client) => {
      const admin = client.db('admin');
      await admin.command({ createUser: 'reader', pwd: 'readerpw', roles: [{ role: 'read', db: 'app' }] });
      await admin.command({ createUser: 'sha1only', pwd: 'sha1pw', roles: ['clusterMonitor'], mechanisms: ['SCRAM-SHA-1'] });
      await admin.command({ createUser: 'hostmgr', pwd: 'hmpw', roles: ['hostManager'] });
      await client.db('app').collection('c').insertOne({ _id: 1 as never, v: 'x' });
      const info = await admin.command({ usersInfo: 'reader' });
      assert.deepEqual(info['users'][0].roles, [{ role: 'read', db: 'app' }]);
      assert.deepEqual(info['users'][0].mechanisms, ['SCRAM-SHA-1', 'SCRAM-SHA-256']);
      assert.equal(info['users'][0].credentials, undefined);
      // `usersInfo: 1` lists the database's users, as mongosh's db.getUsers() asks.
      const all = await admin.command({ usersInfo: 1 });
      assert.deepEqual(all['users'].map((u: { user: string }) => u.user).sort(), ['hostmgr', 'reader', 'root', 'sha1only']);
    });
  });

  it('refuses a wrong password with 18 AuthenticationFailed, and a missing user alike', async () => {
    for (const [user, password] of [['reader', 'wrong'], ['nobody', 'x']] as const) {
      await assert.rejects(withClient(userUri(server.port, user, password), (c) => c.db('admin').command({ ping: 1 })), (err: unknown) => {
        assert.ok(err instanceof MongoServerError, String(err));
        assert.equal(err.code, 18);
        assert.equal(err.codeName, 'AuthenticationFailed');
        assert.equal(err.message, 'Authentication failed.');
        return true;
      });
    }
  });

  it('authenticates with SCRAM-SHA-256 in the handshake itself (speculativeAuthenticate)', async () => {
    const before = relay.commands.length;
    await withClient(userUri(relay.port, 'reader', 'readerpw'), async (client) => {
      assert.deepEqual(await client.db('app').collection('c').findOne({}), { _id: 1, v: 'x' });
      const status = await client.db('admin').command({ connectionStatus: 1, showPrivileges: true });
      assert.deepEqual(status['authInfo'].authenticatedUsers, [{ user: 'reader', db: 'admin' }]);
      assert.deepEqual(status['authInfo'].authenticatedUserRoles, [{ role: 'read', db: 'app' }]);
      const privilege = status['authInfo'].authenticatedUserPrivileges.find((p: { resource: { db?: string } }) => p.resource.db === 'app');
      assert.ok(privilege.actions.includes('find') && !privilege.actions.includes('insert'), JSON.stringify(privilege));
    });
    const names = relay.commands.slice(before).map((c) => c.name);
    // speculative: the hello carried saslStart, so only saslContinue follows.
    assert.ok(names.includes('saslContinue'), names.join());
    assert.ok(!names.includes('saslStart'), names.join());
  });

  it('authenticates with SCRAM-SHA-1, explicitly and by negotiation', async () => {
    for (const extra of ['&authMechanism=SCRAM-SHA-1', '']) {
      await withClient(userUri(server.port, 'sha1only', 'sha1pw', extra), async (client) => {
        assert.equal((await client.db('admin').command({ serverStatus: 1 }))['ok'], 1);
      });
    }
  });

  it("refuses a command outside the user's privileges with 13 in mongod's words", async () => {
    await withClient(userUri(server.port, 'reader', 'readerpw'), async (client) => {
      await rejects13(client.db('app').collection('c').insertOne({ v: 1 }), /^not authorized on app to execute command \{ insert: "c", /);
      await rejects13(client.db('admin').command({ fsync: 1, lock: true }), /^not authorized on admin to execute command \{ fsync: 1, lock: true, /);
      await rejects13(client.db('admin').aggregate([{ $backupCursor: {} }]).toArray(), /to execute command \{ aggregate: 1, pipeline: \[ \{ \$backupCursor: \{\} \} \]/);
    });
    // Its own operations, any authenticated user; everyone's, a holder of inprog (current_op.cpp, document_source_current_op.h).
    await withClient(userUri(server.port, 'reader', 'readerpw'), async (client) => {
      const admin = client.db('admin');
      assert.equal((await admin.command({ currentOp: 1, $ownOps: true }))['ok'], 1);
      assert.ok(Array.isArray(await admin.aggregate([{ $currentOp: {} }]).toArray()));
      await rejects13(admin.command({ currentOp: 1 }), /^not authorized on admin to execute command \{ currentOp: 1, /);
      await rejects13(admin.aggregate([{ $currentOp: { allUsers: true } }]).toArray(), /^not authorized on admin to execute command \{ aggregate: 1, /);
    });
    // mongod snips the password out of the command before printing it (snipForLogging).
    await withClient(userUri(server.port, 'reader', 'readerpw'), async (client) => {
      const admin = client.db('admin');
      await rejects13(admin.command({ createUser: 'evil', pwd: 'TopSecretPw1', roles: [] }), /^not authorized on admin to execute command \{ createUser: "evil", pwd: "xxx", roles: \[\], /);
      await assert.rejects(admin.command({ updateUser: 'reader', pwd: 'TopSecretPw2' }), (err: unknown) => err instanceof MongoServerError && err.code === 13 && /pwd: "xxx"/.test(err.message) && !err.message.includes('TopSecret'));
    });
    // fsync on the cluster opens a backup cursor.
    await withClient(userUri(server.port, 'hostmgr', 'hmpw'), async (client) => {
      // A backup cursor stays open until killed: read its metadata document, then close it.
      const cursor = client.db('admin').aggregate([{ $backupCursor: {} }]);
      assert.ok((await cursor.next())?.['metadata'] !== undefined);
      await cursor.close();
    });
  });

  it('logout ends the authentication; dropUser and updateUser take effect at once', async () => {
    await withClient(userUri(server.port, 'root', 'rootpw'), async (root) => {
      await root.db('admin').command({ createUser: 'temp', pwd: 'old', roles: [{ role: 'read', db: 'app' }] });
      await root.db('admin').command({ updateUser: 'temp', pwd: 'new', roles: [{ role: 'readWrite', db: 'app' }] });
      await withClient(userUri(server.port, 'temp', 'new'), async (temp) => {
        await temp.db('app').collection('t').insertOne({ v: 1 });
        await root.db('admin').command({ dropUser: 'temp' });
        await rejects13(temp.db('app').collection('t').insertOne({ v: 2 }), /not authorized on app/);
      });
      await assert.rejects(root.db('admin').command({ dropUser: 'temp' }), (err: unknown) => err instanceof MongoServerError && err.code === 11);
    });
    // logout, on one pinned connection (a raw command through a 1-connection pool).
    await withClient(userUri(server.port, 'reader', 'readerpw', '&maxPoolSize=1'), async (client) => {
      await client.db('app').collection('c').findOne({});
      await client.db('admin').command({ logout: 1 });
      const status = await client.db('admin').command({ connectionStatus: 1 });
      assert.deepEqual(status['authInfo'].authenticatedUsers, []);
    });
  });
});
