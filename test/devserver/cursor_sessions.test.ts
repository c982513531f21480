/**
 * Cursors belong to their session, as in mongod (getmore_cmd.cpp validateLSID): a
 * getMore from another session, without an lsid, or in a session on a cursor made
 * outside any, is refused with mongod's code and text, and the cursor survives the
 * refusal. killSessions and killAllSessions end the cursors of the sessions they kill,
 * a backup cursor included (its WiredTiger backup is released), while killCursors
 * works from any session.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Binary, Long, MongoClient, MongoServerError, type ClientSession, type Document } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { RawClient, opMsg } from '../helpers/raw_client.js';
import { openBackupCursor, closeBackupCursor } from '../helpers/backup_cursor_spy.js';

/**
 * How mongod prints an unauthenticated session: `id - sha256("") in base64 -  - `.
 * The driver gives a session its id on first use, so call this after.
 */
const sessionText = (session: ClientSession): string => {
  const id = session.id?.['id'];
  assert.ok(id instanceof Binary, 'the session has an id');
  return `${id.toUUID().toHexString(true)} - 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU= -  - `;
};

/** `message` is a function when it names sessions, whose ids exist only once used. */
function refusedWith(code: number, message: RegExp | (() => string)) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof MongoServerError, String(err));
    assert.equal(err.code, code, err.message);
    if (typeof message === 'function') assert.equal(err.message, message());
    else assert.match(err.message, message);
    return true;
  };
}

describe('cursors and sessions in the dev server', () => {
  let server: RunningDevServer;
  let client: MongoClient;

  before(async () => {
    server = await startDevServer();
    client = new MongoClient(server.uri);
    await client.db('app').collection('c').insertMany(Array.from({ length: 20 }, (_, i) => ({ i })));
  });

  after(async () => {
    await client.close();
    await server.stop();
    server.cleanup();
  });

  async function openFind(session: ClientSession): Promise<Long> {
    const reply = await client.db('app').command({ find: 'c', batchSize: 1 }, { session });
    return Long.fromValue((reply['cursor'] as { id: number | Long }).id);
  }

  const getMore = (id: Long, session: ClientSession) => client.db('app').command({ getMore: id, collection: 'c', batchSize: 1 }, { session });

  it('refuses a getMore from another session or without an lsid, and the cursor lives on', async () => {
    const owner = client.startSession();
    const other = client.startSession();
    const raw = await RawClient.connect(server.port);
    try {
      const id = await openFind(owner);
      await assert.rejects(
        getMore(id, other),
        refusedWith(50738, () => `Cannot run getMore on cursor ${id.toString()}, which was created in session ${sessionText(owner)}, in session ${sessionText(other)}`),
      );
      const noLsid = await raw.command(opMsg({ getMore: id, collection: 'c', $db: 'app' }));
      assert.equal(noLsid.doc['ok'], 0);
      assert.equal(noLsid.doc['code'], 50737);
      assert.equal(noLsid.doc['codeName'], 'Location50737');
      assert.equal(noLsid.doc['errmsg'], `Cannot run getMore on cursor ${id.toString()}, which was created in session ${sessionText(owner)}, without an lsid`);

      const batch = ((await getMore(id, owner))['cursor'] as Document)['nextBatch'] as Document[];
      assert.equal(batch.length, 1, 'the owner still reads its cursor after the refusals');
    } finally {
      raw.close();
      await owner.endSession();
      await other.endSession();
    }
  });

  it('refuses a session getMore on a cursor created outside any session', async () => {
    const session = client.startSession();
    const raw = await RawClient.connect(server.port);
    try {
      const created = await raw.command(opMsg({ find: 'c', batchSize: 1, $db: 'app' }));
      const id = Long.fromValue((created.doc['cursor'] as { id: number | Long }).id);
      assert.ok(!id.isZero());
      await assert.rejects(
        getMore(id, session),
        refusedWith(50736, () => `Cannot run getMore on cursor ${id.toString()}, which was not created in a session, in session ${sessionText(session)}`),
      );
      const more = await raw.command(opMsg({ getMore: id, collection: 'c', batchSize: 1, $db: 'app' }));
      assert.equal(more.doc['ok'], 1, JSON.stringify(more.doc));
    } finally {
      raw.close();
      await session.endSession();
    }
  });

  it('killSessions ends the cursors of the sessions it names, and only those', async () => {
    const killed = client.startSession();
    const spared = client.startSession();
    try {
      const doomed = await openFind(killed);
      const survivor = await openFind(spared);
      // From another connection, as an operator would.
      const operator = new MongoClient(server.uri);
      try {
        assert.equal((await operator.db('admin').command({ killSessions: [killed.id] }))['ok'], 1);
      } finally {
        await operator.close();
      }
      await assert.rejects(getMore(doomed, killed), refusedWith(43, new RegExp(`^cursor id ${doomed.toString()} not found$`)));
      assert.equal((((await getMore(survivor, spared))['cursor'] as Document)['nextBatch'] as Document[]).length, 1);
    } finally {
      await killed.endSession();
      await spared.endSession();
    }
  });

  it('killAllSessions ends every session cursor, but not one made outside any session', async () => {
    const session = client.startSession();
    const raw = await RawClient.connect(server.port);
    try {
      const inSession = await openFind(session);
      const created = await raw.command(opMsg({ find: 'c', batchSize: 1, $db: 'app' }));
      const sessionless = Long.fromValue((created.doc['cursor'] as { id: number | Long }).id);
      assert.equal((await client.db('admin').command({ killAllSessions: [] }))['ok'], 1);
      await assert.rejects(getMore(inSession, session), refusedWith(43, /not found/));
      const more = await raw.command(opMsg({ getMore: sessionless, collection: 'c', batchSize: 1, $db: 'app' }));
      assert.equal(more.doc['ok'], 1, JSON.stringify(more.doc));
    } finally {
      raw.close();
      await session.endSession();
    }
  });

  it('killSessions releases a backup cursor; killCursors then finds it gone', async () => {
    const backup = await openBackupCursor(client);
    const operator = new MongoClient(server.uri);
    try {
      const open = await operator.db('admin').command({ serverStatus: 1 });
      assert.equal((open['storageEngine'] as Document)['backupCursorOpen'], true);
      await operator.db('admin').command({ killSessions: [backup.session.id] });
      const closed = await operator.db('admin').command({ serverStatus: 1 });
      assert.equal((closed['storageEngine'] as Document)['backupCursorOpen'], false, 'the WiredTiger backup is released');
      const reply = await client.db('admin').command({ killCursors: '$cmd.aggregate', cursors: [backup.id] }, { session: backup.session });
      assert.deepEqual(reply['cursorsKilled'], []);
      assert.deepEqual((reply['cursorsNotFound'] as unknown[]).map(String), [backup.id.toString()]);
      // And a new backup may start at once.
      await closeBackupCursor(client, await openBackupCursor(client));
    } finally {
      await backup.session.endSession();
      await operator.close();
    }
  });

  it('lets any session kill a cursor with killCursors, as mongod does', async () => {
    const backup = await openBackupCursor(client);
    const other = client.startSession();
    try {
      const reply = await client.db('admin').command({ killCursors: '$cmd.aggregate', cursors: [backup.id] }, { session: other });
      assert.deepEqual((reply['cursorsKilled'] as unknown[]).map(String), [backup.id.toString()]);
    } finally {
      await other.endSession();
      await backup.session.endSession();
    }
  });
});
