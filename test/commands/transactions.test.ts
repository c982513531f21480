/**
 * The backup commands are not transaction statements. A request that carries a
 * transaction (the driver's `session.startTransaction()`, or raw `txnNumber` and
 * `autocommit: false`) gets the refusal mongod would give it: on a standalone any
 * transaction number is IllegalOperation (20); on a replica-set member the command is
 * OperationNotSupportedInTransaction (263), or NotARetryableWriteCommand (50768) for a
 * bare txnNumber. Nothing runs: no backup starts, the throttle stays as it was.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Long, MongoClient, MongoServerError, UUID, type Document } from 'mongodb';
import { pino } from 'pino';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { ProxyServer } from '../../src/proxy/proxy_server.js';
import { BackupEngine } from '../../src/backup/backup_engine.js';
import { BackupCommands } from '../../src/commands/backup_commands.js';

async function expectRefusal(promise: Promise<unknown>, code: number, codeName: string, message: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof MongoServerError, `expected a server error, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.codeName, codeName);
    assert.equal(err.message, message);
    return true;
  });
}

/** The fields the driver adds to the first statement of a transaction. */
function rawTransactionStatement(command: Document): Document {
  return { ...command, lsid: { id: new UUID() }, txnNumber: Long.fromNumber(1), autocommit: false, startTransaction: true };
}

describe('backup commands inside a transaction', () => {
  let server: RunningDevServer;
  const scratch = tempDir('transactions');

  before(async () => {
    server = await startDevServer();
  });

  after(async () => {
    await server?.stop();
    server?.cleanup();
    scratch.remove();
  });

  describe('in front of a standalone (the dev server)', () => {
    let proxy: RunningProxy;
    let client: MongoClient;
    const STANDALONE = 'Transaction numbers are only allowed on a replica set member or mongos';

    before(async () => {
      proxy = await startProxy(server);
      client = new MongoClient(proxy.uri);
      await client.connect();
    });

    after(async () => {
      await client?.close();
      await proxy?.stop();
    });

    it('refuses backupStatus after session.startTransaction() with IllegalOperation, as mongod does', async () => {
      const session = client.startSession();
      try {
        session.startTransaction();
        await expectRefusal(client.db('admin').command({ backupStatus: 1 }, { session }), 20, 'IllegalOperation', STANDALONE);
      } finally {
        await session.endSession();
      }
    });

    it('refuses a raw transaction statement for each command, and runs none of them', async () => {
      const admin = client.db('admin');
      const dest = path.join(scratch.dir, 'never');
      for (const command of [{ backupStatus: 1 }, { backupStart: dest }, { backupThrottle: 1024 }]) {
        await expectRefusal(admin.command(rawTransactionStatement(command)), 20, 'IllegalOperation', STANDALONE);
      }
      const status = await admin.command({ backupStatus: 1 });
      assert.equal(status['inProgress'], false);
      assert.equal(status['last'], undefined, 'no backup ran');
      assert.equal(Number(status['throttleBytesPerSec']), 0, 'the throttle was not set');
    });

    it('still answers a command that only carries the implicit session', async () => {
      const status = await client.db('admin').command({ backupStatus: 1, lsid: { id: new UUID() } });
      assert.equal(status['ok'], 1);
    });
  });

  describe('in front of a replica-set member', () => {
    let proxy: ProxyServer;
    let engine: BackupEngine;
    let client: MongoClient;

    before(async () => {
      engine = new BackupEngine({ dbpath: server.dbpath, upstreamUri: server.uri, log: pino({ level: 'silent' }) });
      // The dev server is a standalone; the role is what a replica-set member's hello says.
      const replicaSetMember = { acceptsTransactionNumbers: async () => true };
      proxy = await ProxyServer.start({
        upstream: { host: '127.0.0.1', port: server.port },
        port: 0,
        bind: '127.0.0.1',
        interceptor: new BackupCommands(engine, replicaSetMember),
        log: pino({ level: 'silent' }),
      });
      client = new MongoClient(`mongodb://127.0.0.1:${proxy.address.port}/?directConnection=true`);
      await client.connect();
    });

    after(async () => {
      await client?.close();
      await proxy?.close();
      await engine?.close();
    });

    it('refuses backupStatus after session.startTransaction() with OperationNotSupportedInTransaction', async () => {
      const session = client.startSession();
      try {
        session.startTransaction();
        await expectRefusal(
          client.db('admin').command({ backupStatus: 1 }, { session }),
          263,
          'OperationNotSupportedInTransaction',
          "Cannot run 'backupStatus' in a multi-document transaction.",
        );
      } finally {
        await session.endSession();
      }
    });

    it('refuses raw transaction statements of each command the same way', async () => {
      const admin = client.db('admin');
      for (const command of [{ backupStart: path.join(scratch.dir, 'never') }, { backupThrottle: 1024 }]) {
        const name = Object.keys(command)[0] as string;
        await expectRefusal(admin.command(rawTransactionStatement(command)), 263, 'OperationNotSupportedInTransaction', `Cannot run '${name}' in a multi-document transaction.`);
      }
      assert.equal((await admin.command({ backupStatus: 1 }))['last'], undefined, 'no backup ran');
    });

    it('refuses a txnNumber without autocommit: backupThrottle is not a retryable write', async () => {
      await expectRefusal(
        client.db('admin').command({ backupThrottle: 1024, lsid: { id: new UUID() }, txnNumber: Long.fromNumber(3) }),
        50768,
        'NotARetryableWriteCommand',
        'txnNumber may only be provided for multi-document transactions and retryable write commands. autocommit:false was not provided, and backupThrottle is not a retryable write command.',
      );
    });
  });
});
