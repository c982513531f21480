/**
 * Authorization when it cannot tell whether mongod enforces authentication: it fails
 * closed. (What mongod's users may do through the proxy: test/integration/backup_authorization.test.ts.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Document } from 'bson';
import { Authorization } from '../../src/commands/authorization.js';
import { CommandError } from '../../src/errors.js';
import type { ClientInfo, Upstream } from '../../src/proxy/interceptor.js';

/** mongod as a client's connection sees it: no user authenticated, and `listDatabases` answering `probe`. */
function noUser(probe: () => Promise<Document>): Upstream {
  return {
    forward: () => Promise.reject(new Error('not forwarded here')),
    command: async (_db, command) => ('connectionStatus' in command ? { authInfo: { authenticatedUsers: [], authenticatedUserRoles: [], authenticatedUserPrivileges: [] }, ok: 1 } : probe()),
  };
}

let nextId = 1;
const client = (): ClientInfo => ({ id: nextId++, remoteAddress: '127.0.0.1:5555', authGeneration: 0 });

const refusal = (err: unknown): boolean => err instanceof CommandError && err.code === 13 && err.message === 'Command backupStart requires authentication';

describe('Authorization without an AuthEnforcement', () => {
  it('allows everything when mongod lists databases for a client with no user (no --auth)', async () => {
    await new Authorization().authorize(client(), noUser(async () => ({ databases: [], ok: 1 })), 'backup', 'backupStart', { backupStart: '/b' });
  });

  it('refuses when mongod answers 13, and when it answers any other error (fail closed)', async () => {
    for (const reply of [
      { ok: 0, code: 13, codeName: 'Unauthorized', errmsg: 'Command listDatabases requires authentication' },
      { ok: 0, code: 91, codeName: 'ShutdownInProgress', errmsg: 'The server is in quiesce mode and will shut down' },
      { ok: 0, code: 11601, codeName: 'Interrupted', errmsg: 'operation was interrupted' },
    ]) {
      await assert.rejects(new Authorization().authorize(client(), noUser(async () => reply), 'backup', 'backupStart', { backupStart: '/b' }), refusal, reply.codeName);
    }
  });

  it('refuses when mongod cannot be asked at all', async () => {
    const gone = noUser(() => Promise.reject(new Error('connection closed')));
    await assert.rejects(new Authorization().authorize(client(), gone, 'backup', 'backupStart', { backupStart: '/b' }));
    assert.equal(await new Authorization().holds(client(), gone, 'inprog'), false);
  });
});
