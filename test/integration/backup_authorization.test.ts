/**
 * Through the proxy, in front of a dev server with --auth, mongod's own users decide who
 * may back up: the client's privileges are learnt on its own connection. Percona's rule
 * (jstests backup_auth.js in percona-server-mongodb): `backup` may, `dbAdmin` may not,
 * `root` may; `fsync` on the cluster (hostManager) may too.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient, MongoServerError, type Document } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { startTapRelay, type TapRelay } from '../helpers/tap_relay.js';
import { runMongosh } from '../helpers/mongosh.js';
import { tempDir } from '../helpers/paths.js';
import { RawClient, decodeReply, opMsg } from '../helpers/raw_client.js';
import { scramSha256 } from '../helpers/raw_scram.js';
import { oneAdminCommand } from '../helpers/one_command.js';

const USERS: Array<[string, Document[]]> = [
  ['root', [{ role: 'root', db: 'admin' }]],
  ['proxy', [{ role: 'hostManager', db: 'admin' }, { role: 'clusterMonitor', db: 'admin' }]],
  ['reader', [{ role: 'read', db: 'app' }]],
  ['dbadm', [{ role: 'dbAdmin', db: 'admin' }]],
  ['bkp', [{ role: 'backup', db: 'admin' }]],
  ['hm', [{ role: 'hostManager', db: 'admin' }]],
];
const password = (user: string): string => `${user}-Pw`;

function credentialed(port: number, user: string, extra = ''): string {
  return `mongodb://${user}:${password(user)}@127.0.0.1:${port}/?directConnection=true&authSource=admin${extra}`;
}

const run = oneAdminCommand;

async function refused(uri: string, command: Document, message: RegExp): Promise<void> {
  await assert.rejects(run(uri, command), (err: unknown) => {
    assert.ok(err instanceof MongoServerError, String(err));
    assert.equal(err.code, 13);
    assert.equal(err.codeName, 'Unauthorized');
    assert.match(err.message, message);
    return true;
  });
}

describe('backup commands through the proxy, authorized by mongod --auth users', () => {
  let server: RunningDevServer;
  let proxy: RunningProxy;
  let relay: TapRelay;
  const scratch = tempDir('backup-auth');

  before(async () => {
    server = await startDevServer({ args: ['--auth'] });
    const local = new MongoClient(server.uri);
    try {
      for (const [user, roles] of USERS.slice(0, 1)) await local.db('admin').command({ createUser: user, pwd: password(user), roles });
    } finally {
      await local.close();
    }
    const root = new MongoClient(credentialed(server.port, 'root'));
    try {
      for (const [user, roles] of USERS.slice(1)) await root.db('admin').command({ createUser: user, pwd: password(user), roles });
      await root.db('app').collection('c').insertOne({ v: 1 });
    } finally {
      await root.close();
    }
    // The proxy's own user: named in the URI, its password in a file, never on the command line.
    const passwordFile = path.join(scratch.dir, 'proxy.password');
    fs.writeFileSync(passwordFile, `${password('proxy')}\n`, { mode: 0o600 });
    proxy = await startProxy({ ...server, uri: `mongodb://proxy@127.0.0.1:${server.port}/?directConnection=true&authSource=admin` }, ['--upstream-password-file', passwordFile]);
    relay = await startTapRelay(proxy.port);
  });

  after(async () => {
    await relay?.close();
    await proxy?.stop();
    await server?.stop();
    server?.cleanup();
    scratch.remove();
  });

  it('refuses backupStart to an unauthenticated client with 13', async () => {
    await refused(proxy.uri, { backupStart: path.join(scratch.dir, 'anon') }, /^Command backupStart requires authentication$/);
  });

  for (const user of ['reader', 'dbadm']) {
    it(`refuses backupStart and backupThrottle to a ${user === 'reader' ? 'read' : 'dbAdmin'} user with 13`, async () => {
      const uri = credentialed(proxy.port, user);
      await refused(uri, { backupStart: path.join(scratch.dir, user) }, /^not authorized on admin to execute command \{ backupStart: "/);
      await refused(uri, { backupThrottle: '10MB' }, /^not authorized on admin to execute command \{ backupThrottle: "10MB"/);
    });
  }

  for (const user of ['bkp', 'hm', 'root']) {
    it(`lets a ${user === 'bkp' ? 'backup' : user === 'hm' ? 'hostManager' : 'root'} user back up and throttle`, async () => {
      const uri = credentialed(proxy.port, user);
      assert.equal((await run(uri, { backupThrottle: '1GB' }))['ok'], 1);
      assert.equal((await run(uri, { backupStart: path.join(scratch.dir, user) }))['ok'], 1);
    });
  }

  it('the npm driver authenticates through the proxy with SCRAM-SHA-256 in the handshake (speculativeAuthenticate)', async () => {
    const before = relay.commands.length;
    const status = await run(credentialed(relay.port, 'bkp', '&authMechanism=SCRAM-SHA-256'), { connectionStatus: 1 });
    assert.deepEqual(status['authInfo'].authenticatedUsers, [{ user: 'bkp', db: 'admin' }]);
    const names = relay.commands.slice(before).map((c) => c.name);
    assert.ok(names.includes('saslContinue') && !names.includes('saslStart'), names.join());
  });

  it('mongosh authenticates through the proxy with SCRAM-SHA-256 in the handshake (speculativeAuthenticate) and reads backupStatus', async () => {
    const before = relay.commands.length;
    const result = await runMongosh(
      credentialed(relay.port, 'bkp', '&authMechanism=SCRAM-SHA-256'),
      'const s = db.getSiblingDB("admin").runCommand({connectionStatus: 1}); const b = db.getSiblingDB("admin").runCommand({backupStatus: 1}); print(s.authInfo.authenticatedUsers[0].user + " " + b.ok)',
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^bkp 1$/m);
    const names = relay.commands.slice(before).map((c) => c.name);
    assert.ok(names.includes('saslContinue') && !names.includes('saslStart'), names.join());
  });

  it("never shows the proxy's upstream password: not in its arguments, logs or backupStatus", async () => {
    const status = await run(credentialed(proxy.port, 'root'), { backupStatus: 1 });
    assert.equal(status['ok'], 1);
    const secret = password('proxy');
    assert.ok(!JSON.stringify(status).includes(secret));
    assert.ok(!JSON.stringify(proxy.logs).includes(secret));
    assert.ok(!proxy.stderr().includes(secret));
    assert.ok(!(proxy.child.spawnargs ?? []).join(' ').includes(secret));
  });

  it('forgets what it learnt when the client logs out', async () => {
    const client = new MongoClient(credentialed(proxy.port, 'root', '&maxPoolSize=1'));
    try {
      const admin = client.db('admin');
      assert.equal((await admin.command({ backupThrottle: '1GB' }))['ok'], 1);
      await admin.command({ logout: 1 });
      await assert.rejects(admin.command({ backupThrottle: '1GB' }), (err: unknown) => err instanceof MongoServerError && err.code === 13);
    } finally {
      await client.close();
    }
  });

  it('forgets what it learnt for a command pipelined ahead of a logout', async () => {
    const raw = await RawClient.connect(proxy.port);
    try {
      await scramSha256(raw, 'root', password('root'));
      const throttle = opMsg({ backupThrottle: '1GB', $db: 'admin' });
      const logout = opMsg({ logout: 1, $db: 'admin' });
      const before = raw.frames.length;
      // One write: the logout arrives while the throttle's privileges are being learnt.
      raw.send(Buffer.concat([throttle, logout]));
      const [first, second] = (await raw.waitForFrames(before + 2)).slice(before).map(decodeReply);
      assert.equal(first?.doc['ok'], 1, JSON.stringify(first?.doc));
      assert.equal(second?.doc['ok'], 1, JSON.stringify(second?.doc));
      for (const command of [{ backupThrottle: '1GB' }, { backupStatus: 1 }]) {
        const reply = await raw.command(opMsg({ ...command, $db: 'admin' }));
        assert.equal(reply.doc['code'], 13, JSON.stringify(reply.doc));
        assert.match(String(reply.doc['errmsg']), /requires authentication$/);
      }
    } finally {
      raw.close();
    }
  });
});
