/**
 * restore --mongod finds a free port, then starts mongod, which binds it only after its
 * startup recovery: whatever answers hello on that port meanwhile may be another server.
 * serverIdentityRefusal (src/cli/server_identity.ts) tells ours from it before any
 * applyOps, by serverStatus's pid and getCmdLineOpts' dbPath; here the real dev server
 * answers, as ours and as somebody else's.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { serverIdentityRefusal } from '../../src/cli/server_identity.js';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';

describe('serverIdentityRefusal', () => {
  let server: RunningDevServer;
  let client: MongoClient;

  before(async () => {
    server = await startDevServer();
    client = new MongoClient(server.uri);
  });

  after(async () => {
    await client.close();
    await server.stop();
    server.cleanup();
  });

  it('accepts the server started on this dbpath with this pid (the dbpath as given, relative or not)', async () => {
    assert.equal(await serverIdentityRefusal(client, { pid: server.child.pid as number, dbpath: server.dbpath }), undefined);
    assert.equal(await serverIdentityRefusal(client, { pid: server.child.pid as number, dbpath: path.relative(process.cwd(), server.dbpath) }), undefined);
  });

  it('refuses a server on another dbpath, naming what answered', async () => {
    const other = path.join(path.dirname(server.dbpath), 'restored');
    const refusal = await serverIdentityRefusal(client, { pid: server.child.pid as number, dbpath: other });
    assert.equal(refusal, `the server answering is not the one started: it runs on dbpath ${server.dbpath} (pid ${server.child.pid}), not ${other}`);
  });

  it('refuses a server with another pid', async () => {
    const refusal = await serverIdentityRefusal(client, { pid: 1, dbpath: server.dbpath });
    assert.equal(refusal, `the server answering is not the one started: it is pid ${server.child.pid}, not 1`);
  });
});
