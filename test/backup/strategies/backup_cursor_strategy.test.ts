/**
 * The $backupCursor strategy when the network fails it, against the dev server through a
 * relay that loses, cuts or swallows one chosen command:
 * - a lost open reply or killCursors must not leave the cursor open in mongod, where it
 *   would pin the checkpoint and refuse every later backup (50886) for 10 minutes;
 * - a keepalive on a connection gone silent must neither hold release() forever nor stop
 *   the keepalives that follow it, and an open on a silent connection must end;
 * - an open whose cursor opens in mongod only after the kill of its session must not
 *   block the next backup.
 * A swallowed command ends only at the strategy's own bound. commandTimeoutMs bounds every
 * getMore, killCursors and killSessions of the test, answered or not, so where one is
 * swallowed it is 5 s (SWALLOW_BOUND_MS): a busy machine delays an answered command by far
 * less. openTimeoutMs bounds the $backupCursor aggregate alone, so it may stay short.
 * node:test's timeout only detects a hang.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MongoClient, type Document } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../../helpers/dev_server.js';
import { startBackupCursorSpy, openBackupCursor, closeBackupCursor, type BackupCursorSpy, type NetworkFault } from '../../helpers/backup_cursor_spy.js';
import { until } from '../../helpers/poll.js';
import { captureLogger } from '../../proxy/support.js';
import { RawClient } from '../../helpers/raw_client.js';
import { BackupCursorStrategy, type BackupCursorOptions } from '../../../src/backup/strategies/backup_cursor_strategy.js';

const isBackupCursorOpen = (frame: Buffer): boolean => frame.includes(Buffer.from('$backupCursor'));

/** commandTimeoutMs where a swallowed command must time out: the wait it costs, and a stall no answered command reaches. */
const SWALLOW_BOUND_MS = 5_000;

describe('backup cursor strategy, when the network fails it', () => {
  let server: RunningDevServer;
  let spy: BackupCursorSpy;
  let direct: MongoClient;

  before(async () => {
    server = await startDevServer();
    spy = await startBackupCursorSpy(server.port);
    direct = new MongoClient(server.uri);
  });

  after(async () => {
    await direct?.close();
    await spy?.close();
    await server?.stop();
    server?.cleanup();
  });

  /** A strategy whose client reaches mongod through the spy; one client per test, closed by `use`. */
  async function use(options: Omit<BackupCursorOptions, 'dbpath'>, test: (strategy: BackupCursorStrategy, lines: Array<Record<string, unknown>>) => Promise<void>): Promise<void> {
    const client = new MongoClient(`mongodb://127.0.0.1:${spy.port}/?directConnection=true`);
    const { log, lines } = captureLogger();
    try {
      await test(new BackupCursorStrategy(client, log, { dbpath: server.dbpath, ...options }), lines);
    } finally {
      await client.close();
    }
  }

  /** What the next backup meets: no backup cursor left open, and a new one opens. */
  async function assertNoCursorLeftOpen(context: string): Promise<void> {
    const engine = (await direct.db('admin').command({ serverStatus: 1 }))['storageEngine'] as Document;
    const next = await openBackupCursor(direct).then(
      async (cursor) => {
        await closeBackupCursor(direct, cursor);
        return 'opens';
      },
      (err: { code?: number; message?: string }) => `fails: ${err.code}: ${err.message}`,
    );
    assert.equal(engine['backupCursorOpen'], false, `${context}; a backup cursor is still open in mongod; the next backup ${next}`);
    assert.equal(next, 'opens');
  }

  const messages = (lines: Array<Record<string, unknown>>): unknown[] => lines.map((l) => l['msg']);
  const KILLED = 'killed the backup cursor session, so no backup cursor is left open in mongod';

  it('leaves no cursor open when the reply to the $backupCursor aggregate is lost', async () => {
    await use({}, async (strategy, lines) => {
      const lost = spy.failNext('aggregate', 'lose-reply', isBackupCursorOpen);
      await assert.rejects(strategy.open(), { name: 'MongoNetworkError' });
      await lost;
      await assertNoCursorLeftOpen('open() rejected');
      assert.ok(messages(lines).includes(KILLED), JSON.stringify(lines));
    });
  });

  it('gives up an open that mongod never answers, with a MaxTimeMSExpired error, and leaves no cursor open', async () => {
    await use({ openTimeoutMs: 300 }, async (strategy, lines) => {
      const swallowed = spy.failNext('aggregate', 'swallow', isBackupCursorOpen);
      await assert.rejects(strategy.open(), (err: { code?: number; codeName?: string; message?: string }) => {
        assert.equal(err.code, 50);
        assert.equal(err.codeName, 'MaxTimeMSExpired');
        assert.match(String(err.message), /^operation exceeded time limit: mongod did not answer the \$backupCursor aggregate within 300 ms /);
        return true;
      });
      await swallowed;
      assert.ok(messages(lines).includes(KILLED), JSON.stringify(lines));
      await assertNoCursorLeftOpen('open() gave up');
    });
  });

  it('kills again, at the next open, the session of an open whose cursor opened after that session was killed', async () => {
    await use({}, async (strategy, lines) => {
      // The aggregate's connection is cut before mongod reads it; the test keeps its bytes.
      let late: Buffer | undefined;
      const cut = spy.failNext('aggregate', 'cut', (frame) => {
        if (!isBackupCursorOpen(frame)) return false;
        late = Buffer.from(frame);
        return true;
      });
      await assert.rejects(strategy.open(), { name: 'MongoNetworkError' });
      await cut;
      assert.ok(messages(lines).includes(KILLED), JSON.stringify(lines));
      // mongod runs that aggregate only now, after the kill (as one still in its socket
      // buffer, or waiting for a checkpoint, would): its cursor opens in the killed session.
      const raw = await RawClient.connect(server.port);
      try {
        const reply = await raw.command(late as Buffer);
        assert.equal(reply.doc['ok'], 1, JSON.stringify(reply.doc));
      } finally {
        raw.close();
      }
      const engine = (await direct.db('admin').command({ serverStatus: 1 }))['storageEngine'] as Document;
      assert.equal(engine['backupCursorOpen'], true, 'the late aggregate left a backup cursor open');
      // The next backup is not refused (50886): that session is killed again first.
      const snapshot = await strategy.open();
      await snapshot.release();
      await assertNoCursorLeftOpen('the next open succeeded and was released');
      assert.ok(
        messages(lines).includes('a backup cursor is open in mongod: killed the sessions of earlier opens that got no reply, in case one of them opened it late'),
        JSON.stringify(lines),
      );
    });
  });

  it('retries a killSessions whose connection is cut once, and still leaves no cursor open', async () => {
    await use({}, async (strategy, lines) => {
      const lost = spy.failNext('aggregate', 'lose-reply', isBackupCursorOpen);
      const cut = spy.failNext('killSessions', 'cut');
      await assert.rejects(strategy.open(), { name: 'MongoNetworkError' });
      await lost;
      await assertNoCursorLeftOpen('open() rejected, and the first killSessions never reached mongod');
      await cut;
      assert.ok(messages(lines).includes(KILLED), JSON.stringify(lines));
    });
  });

  for (const fault of ['cut', 'swallow'] satisfies NetworkFault[]) {
    it(`leaves no cursor open when release()'s killCursors is lost (${fault})`, async () => {
      await use({ commandTimeoutMs: SWALLOW_BOUND_MS }, async (strategy, lines) => {
        const snapshot = await strategy.open();
        const failed = spy.failNext('killCursors', fault);
        // Nothing proves the cursor lived until the end, so the backup still fails.
        await assert.rejects(snapshot.release(), fault === 'cut' ? { name: 'MongoNetworkError' } : { name: 'NoReplyError' });
        await failed;
        await assertNoCursorLeftOpen(`killCursors was ${fault === 'cut' ? 'cut' : 'swallowed'}`);
        assert.ok(messages(lines).includes(KILLED), JSON.stringify(lines));
      });
    });
  }

  it('releases while a keepalive waits forever on a silent connection', async () => {
    // The keepalive's own bound is far off: only release()'s bounded wait can end this.
    await use({ keepaliveMs: 20, releaseWaitMs: 100, commandTimeoutMs: 10 * 60_000 }, async (strategy, lines) => {
      const snapshot = await strategy.open();
      await spy.failNext('getMore', 'swallow');
      await snapshot.release();
      assert.equal(snapshot.lost.aborted, false);
      await assertNoCursorLeftOpen('release() resolved');
      assert.ok(messages(lines).includes('a keepalive is still unanswered; killing the backup cursor without waiting for it'), JSON.stringify(lines));
    });
  });

  it('counts a keepalive lost on a silent connection as a transient failure: the next ones keep the cursor', async () => {
    await use({ keepaliveMs: 20, commandTimeoutMs: SWALLOW_BOUND_MS }, async (strategy, lines) => {
      const snapshot = await strategy.open();
      await spy.failNext('getMore', 'swallow');
      const atSwallow = spy.accepted('getMore');
      const warned = (): boolean =>
        lines.some((l) => l['msg'] === 'backup cursor keepalive failed; retrying at the next tick' && String(l['err']).startsWith(`NoReplyError: getMore got no reply within ${SWALLOW_BOUND_MS} ms`));
      // Keepalives that mongod answered after the silent one gave up.
      await until(() => (warned() && spy.accepted('getMore') >= atSwallow + 3 ? true : undefined));
      assert.equal(snapshot.lost.aborted, false, String(snapshot.lost.reason));
      await snapshot.release();
      await assertNoCursorLeftOpen('release() resolved');
    });
  });
});
