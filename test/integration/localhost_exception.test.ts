/**
 * mongod's localhost exception through the proxy: every connection the proxy opens to
 * mongod comes from 127.0.0.1, so without a check of its own the proxy would hand the
 * exception (create the first user without authenticating) to any client that reaches
 * it. mongod is restarted with --auth before its first user exists, as its tutorial has
 * it (enable access control, then create the first user from localhost). The proxy
 * listens on every address here and the remote client connects through
 * the machine's own non-loopback address: the proxy sees it as a remote client, as it
 * would one on another machine (skipped where the machine has no such address).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { MongoServerError } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { oneAdminCommand } from '../helpers/one_command.js';

/** An IPv4 address of this machine that is not loopback, if it has one. */
function externalAddress(): string | undefined {
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

const external = externalAddress();

const run = oneAdminCommand;

describe("mongod's localhost exception through the proxy", { skip: external === undefined ? 'no non-loopback IPv4 address on this machine' : false }, () => {
  let first: RunningDevServer;
  let server: RunningDevServer;
  let proxy: RunningProxy;
  const remote = (): string => `mongodb://${external as string}:${proxy.port}/?directConnection=true`;

  before(async () => {
    // The way a deployment meets the exception: mongod started without access control
    // (the proxy needs no user of its own then), restarted with --auth, no user yet.
    first = await startDevServer();
    proxy = await startProxy(first, ['--bind', '0.0.0.0']);
    await first.stop();
    server = await startDevServer({ dbpath: first.dbpath, port: first.port, args: ['--auth'] });
  });

  after(async () => {
    await proxy?.stop();
    await server?.stop();
    first?.cleanup();
  });

  it('refuses createUser and createRole to an unauthenticated remote client, in mongod’s words', async () => {
    for (const [name, command] of [
      ['createUser', { createUser: 'evil', pwd: 'evil-Pw', roles: [{ role: 'root', db: 'admin' }] }],
      ['createRole', { createRole: 'evil', privileges: [], roles: [{ role: 'root', db: 'admin' }] }],
    ] as const) {
      await assert.rejects(run(remote(), command), (err: unknown) => {
        assert.ok(err instanceof MongoServerError, String(err));
        assert.equal(err.code, 13);
        assert.equal(err.codeName, 'Unauthorized');
        assert.equal(err.message, `Command ${name} requires authentication`);
        return true;
      });
    }
  });

  it('leaves the exception to a loopback client, then lets the remote one in once it authenticates', async () => {
    // Still no user (the remote createUser never reached mongod): the exception applies.
    const created = await run(proxy.uri, { createUser: 'root', pwd: 'root-Pw', roles: [{ role: 'root', db: 'admin' }] });
    assert.equal(created['ok'], 1);
    const root = `mongodb://root:root-Pw@${external as string}:${proxy.port}/?directConnection=true&authSource=admin`;
    assert.equal((await run(root, { createUser: 'reader', pwd: 'reader-Pw', roles: [{ role: 'read', db: 'app' }] }))['ok'], 1);
  });
});
