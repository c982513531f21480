/**
 * `hotbackup serve --source-name NAME`: a backup's manifest names NAME as the machine it
 * is of (source.hostname), not the container's changing hostname, so that retention and
 * incremental bases see one source across containers.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { readManifest } from '../../src/backup/manifest.js';

describe('serve --source-name', () => {
  let server: RunningDevServer;
  let proxy: RunningProxy;
  let client: MongoClient;
  const scratch = tempDir('source-name');

  before(async () => {
    server = await startDevServer();
    proxy = await startProxy(server, ['--dbpath', server.dbpath, '--source-name', 'mongo-0']);
    client = new MongoClient(proxy.uri);
    await client.connect();
  });
  after(async () => {
    await client?.close();
    await proxy?.stop();
    await server?.stop();
    server?.cleanup();
    scratch.remove();
  });

  it("records the name in the backup's manifest as the machine the backup is of", async () => {
    const admin = client.db('admin');
    const destination = path.join(scratch.dir, 'b1');
    // Without async, backupStart answers once the backup is whole (Percona's createBackup).
    const reply = await admin.command({ backupStart: destination });
    assert.equal(reply['ok'], 1, JSON.stringify(reply));
    assert.equal((await readManifest(destination)).source.hostname, 'mongo-0');
  });
});
