/** The real mongosh shell against the dev server. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { runMongosh } from '../helpers/mongosh.js';

describe('mongosh against the dev server', () => {
  let server: RunningDevServer;

  before(async () => {
    server = await startDevServer();
  });

  after(async () => {
    await server?.stop();
    server?.cleanup();
  });

  it('connects without startup errors and does CRUD', async () => {
    const script = `
      db = db.getSiblingDB('shop');
      const r = db.c.insertOne({ item: 'pen', qty: 3 });
      db.c.insertOne({ item: 'ink', qty: 7 });
      print('inserted=' + (r.insertedId !== undefined));
      print('found=' + JSON.stringify(db.c.find({ qty: { $gt: 5 } }, { _id: 0 }).toArray()));
      print('count=' + db.c.countDocuments());
      print('dbpath=' + db.adminCommand({ getCmdLineOpts: 1 }).parsed.storage.dbPath);
    `;
    const result = await runMongosh(server.uri, script);
    assert.equal(result.code, 0, `mongosh failed:\n${result.stdout}\n${result.stderr}`);
    assert.equal(result.stderr.trim(), '', 'no warnings or errors on stderr');
    const lines = result.stdout.trim().split('\n');
    assert.deepEqual(lines, [
      'inserted=true',
      'found=[{"item":"ink","qty":7}]',
      'count=2',
      `dbpath=${server.dbpath}`,
    ]);
  });

  it('shows a server error as mongosh shows mongod errors', async () => {
    const result = await runMongosh(server.uri, `db.runCommand({ definitelyNotACommand: 1 })`);
    assert.notEqual(result.code, 0);
    assert.match(result.stdout + result.stderr, /MongoServerError.*no such command: 'definitelyNotACommand'/);
  });
});
