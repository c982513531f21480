/**
 * Percona-era clients send commands as legacy OP_QUERY on `admin.$cmd`, wrapped as
 * `{$query: {...}}` or `{query: {...}}` when they add a read preference. The proxy
 * answers both wrapper spellings itself, as it answers the bare command, and leaves a
 * `query` field that is not the first one (count's filter) where it is. Only `<db>.$cmd`
 * exactly is a command namespace, as in mongod.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { RawClient } from '../helpers/raw_client.js';
import { OpCode } from '../../src/wire/constants.js';
import { LocationCodes } from '../../src/errors.js';
import { encodeOpQuery } from '../../src/wire/op_query.js';
import { deserialize } from 'bson';
import { decodeRequest, encodeDocument, type Document } from '../../src/wire/command_message.js';

let nextRequestID = 5000;

/** The decoder keeps BSON types (Int32...); compare as plain values. */
function plain(doc: Document): Document {
  return deserialize(encodeDocument(doc));
}

function opQuery(query: Document, fullCollectionName = 'admin.$cmd'): Buffer {
  return encodeOpQuery({ requestID: nextRequestID++, flags: 0, fullCollectionName, numberToSkip: 0, numberToReturn: -1, query: encodeDocument(query) });
}

describe('legacy OP_QUERY command wrappers', () => {
  it('decodes a first-field $query or query wrapper as the command inside, with its $readPreference', () => {
    const readPreference = { mode: 'secondaryPreferred' };
    for (const wrapper of ['$query', 'query']) {
      const request = decodeRequest(opQuery({ [wrapper]: { backupStatus: 1 }, $readPreference: readPreference }));
      assert.equal(request.name, 'backupStatus', wrapper);
      assert.equal(request.db, 'admin');
      assert.deepEqual(plain(request.command), { backupStatus: 1, $readPreference: readPreference });
    }
  });

  it('leaves a query field that is not first alone (count takes a query argument)', () => {
    const request = decodeRequest(opQuery({ count: 'docs', query: { a: 1 } }, 'app.$cmd'));
    assert.equal(request.name, 'count');
    assert.deepEqual(plain(request.command), { count: 'docs', query: { a: 1 } });
  });

  describe('through the proxy', () => {
    let server: RunningDevServer;
    let proxy: RunningProxy;

    before(async () => {
      server = await startDevServer();
      proxy = await startProxy(server);
    });

    after(async () => {
      await proxy?.stop();
      await server?.stop();
      server?.cleanup();
    });

    for (const wrapper of ['$query', 'query']) {
      it(`answers {${wrapper}: {backupStatus: 1}} itself with an OP_REPLY`, async () => {
        const raw = await RawClient.connect(proxy.port);
        try {
          const request = opQuery({ [wrapper]: { backupStatus: 1 }, $readPreference: { mode: 'primary' } });
          const reply = await raw.command(request);
          assert.equal(reply.opCode, OpCode.Reply);
          assert.equal(reply.responseTo, request.readInt32LE(4));
          assert.equal(reply.doc['ok'], 1, JSON.stringify(reply.doc));
          assert.equal(reply.doc['inProgress'], false);
          assert.equal(reply.doc['bytesCopied'], 0);
          assert.equal(reply.doc['filesCopied'], 0);
        } finally {
          raw.close();
        }
      });
    }

    it('leaves a query on a collection named like a command to mongod (admin.foo.$cmd is not admin.foo\'s $cmd)', async () => {
      const raw = await RawClient.connect(proxy.port);
      try {
        const request = opQuery({ backupStatus: 1 }, 'admin.foo.$cmd');
        const reply = await raw.command(request);
        assert.equal(reply.opCode, OpCode.Reply);
        assert.equal(reply.doc['ok'], 0, JSON.stringify(reply.doc));
        assert.equal(reply.doc['code'], LocationCodes.OpQueryRemoved, 'the server refuses a legacy query, as mongod does');
        assert.equal(reply.doc['inProgress'], undefined, 'not answered by the proxy');
      } finally {
        raw.close();
      }
    });
  });
});
