import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Int32 } from 'bson';
import { StorageEngine } from '../../../src/devserver/storage/storage_engine.js';
import { BSON_URL, ENGINE_URL, spawnScript, tempDir } from './helpers.js';

// Inserts forever: each _id is printed only once its synced commit returned.
// Checkpoints now and then, so recovery starts from one and replays the journal.
const WRITER = `
  import fs from 'node:fs';
  const { serialize, Int32 } = await import(${JSON.stringify(BSON_URL)});
  const { StorageEngine } = await import(${JSON.stringify(ENGINE_URL)});
  const engine = StorageEngine.open({ dbpath: process.argv[1], cacheSizeMB: 32 });
  engine.createCollection('crash.c');
  for (let i = 0; ; i++) {
    const doc = Buffer.from(serialize({ _id: new Int32(i), pad: 'x'.repeat(i % 200) }));
    engine.writeTransaction(() => engine.insertRecord('crash.c', doc, new Int32(i)), { sync: true });
    fs.writeSync(1, i + '\\n');
    if (i % 97 === 0) engine.checkpoint();
  }
`;

test('after SIGKILL, reopening finds every acknowledged insert', async (t) => {
  const { dir, cleanup } = tempDir('crash');
  t.after(cleanup);
  const child = spawnScript(WRITER, [dir]);
  const acknowledged: number[] = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let pending = '';
  const killed = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) acknowledged.push(Number(line));
    if (acknowledged.length >= 400) child.kill('SIGKILL');
  });
  assert.equal(await killed, 'SIGKILL', stderr);
  assert.ok(acknowledged.length >= 400);
  // No clean shutdown: mongod.lock still names the dead writer.
  assert.equal(fs.readFileSync(path.join(dir, 'mongod.lock'), 'utf8'), `${child.pid}\n`);

  const engine = StorageEngine.open({ dbpath: dir, cacheSizeMB: 32 });
  try {
    const missing = acknowledged.filter((i) => engine.findRecordById('crash.c', new Int32(i)) === undefined);
    assert.deepEqual(missing, []);
    // What was recovered is a prefix of the writer's sequence, with no holes
    // (it may hold a few inserts committed after the last line we read).
    const count = engine.countRecords('crash.c');
    assert.ok(count >= acknowledged.length);
    const rids = [...engine.scanRecords('crash.c')].map((r) => r.rid);
    assert.deepEqual(rids, Array.from({ length: count }, (_, i) => i + 1));
    assert.ok(engine.findRecordById('crash.c', new Int32(count - 1)) !== undefined);
  } finally {
    engine.close();
  }
});
