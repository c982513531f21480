/**
 * TLS on both sides of the proxy, with certificates made by openssl for this run: the
 * dev server requires TLS and a client certificate; the proxy reaches it with the
 * upstream URI's options (tlsCAFile, tlsCertificateKeyFile), on its driver connection
 * and on every forwarding socket alike; clients reach the proxy as --tls-mode says.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import crypto from 'node:crypto';
import { once } from 'node:events';
import { MongoClient } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { makeTestCerts, type TestCerts } from '../helpers/tls_certs.js';
import { runMongosh } from '../helpers/mongosh.js';
import { tempDir } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';
import { opMsg, RawClient } from '../helpers/raw_client.js';

/** Short, so that a client stalled before its first 16 bytes is dropped soon; real clients send at once. */
const HANDSHAKE_TIMEOUT_MS = 3_000;

/** A refused client fails as soon as its socket closes; this only bounds the driver's retries. */
const REFUSED_SELECTION_MS = 3_000;

function portUri(port: number, options: Record<string, string> = {}): string {
  const query = new URLSearchParams({ directConnection: 'true', ...options });
  return `mongodb://127.0.0.1:${port}/?${query.toString()}`;
}

/** Connects, runs `work`, closes; what `work` returned. */
async function withClient<T>(uri: string, work: (client: MongoClient) => Promise<T>): Promise<T> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: REFUSED_SELECTION_MS });
  try {
    await client.connect();
    return await work(client);
  } finally {
    await client.close();
  }
}

async function ping(uri: string): Promise<number> {
  return withClient(uri, async (client) => Number((await client.db('admin').command({ ping: 1 }))['ok']));
}

async function refused(uri: string): Promise<void> {
  await assert.rejects(ping(uri), (err: Error) => err.name === 'MongoServerSelectionError');
}

function logged(proxy: RunningProxy, msg: string): Record<string, unknown> | undefined {
  return proxy.logs.find((entry) => entry['msg'] === msg);
}

describe('TLS', () => {
  let certs: TestCerts;
  let server: RunningDevServer;
  /** The dev server's URI for the proxy: TLS, its CA, and the client certificate it demands. */
  let upstream: RunningDevServer;
  const proxies: RunningProxy[] = [];
  let backups: { dir: string; remove: () => void };

  before(async () => {
    certs = makeTestCerts();
    backups = tempDir('tls-backups');
    server = await startDevServer({
      args: ['--tls-mode', 'require', '--tls-cert-key-file', certs.serverPemFile, '--tls-ca-file', certs.caFile],
    });
    upstream = { ...server, uri: portUri(server.port, { tls: 'true', tlsCAFile: certs.caFile, tlsCertificateKeyFile: certs.clientPemFile }) };
  });

  after(async () => {
    for (const proxy of proxies) await proxy.stop();
    await server?.stop();
    server?.cleanup();
    backups?.remove();
    certs?.remove();
  });

  async function proxy(args: string[]): Promise<RunningProxy> {
    // Each its own state dir: proxies in front of one mongod cannot share the default one.
    const started = await startProxy(upstream, [...args, '--state-dir', path.join(backups.dir, `state-${proxies.length}`)]);
    proxies.push(started);
    return started;
  }

  it('the dev server itself refuses a plain client and one without a client certificate', async () => {
    await refused(portUri(server.port));
    await refused(portUri(server.port, { tls: 'true', tlsCAFile: certs.caFile }));
    assert.equal(await ping(upstream.uri), 1);
  });

  describe('--tls-mode require', () => {
    let required: RunningProxy;
    before(async () => {
      required = await proxy(['--tls-mode', 'require', '--tls-cert', certs.serverCertFile, '--tls-key', certs.serverKeyFile]);
    });

    it('serves the driver over TLS, backupStart included, with mongod over TLS behind', async () => {
      const dest = path.join(backups.dir, 'over-tls');
      const uri = portUri(required.port, { tls: 'true', tlsCAFile: certs.caFile });
      const reply = await withClient(uri, async (client) => {
        await client.db('shop').collection('orders').insertOne({ item: 'pen' });
        // Forwarded over the client's own TLS socket to mongod.
        assert.deepEqual(await client.db('shop').collection('orders').find({}, { projection: { _id: 0 } }).toArray(), [{ item: 'pen' }]);
        // Answered by the proxy, through its own TLS driver connection to mongod.
        return client.db('admin').command({ backupStart: dest });
      });
      assert.equal(reply['ok'], 1);
      assert.ok(fs.existsSync(path.join(dest, 'hotbackup-manifest.json')), 'the backup is complete');
      assert.equal(logged(required, 'proxy listening')?.['tlsMode'], 'require');
    });

    it('refuses a plain client, saying so in mongod words', async () => {
      await refused(portUri(required.port));
      await until(() => logged(required, 'The server is configured to only allow SSL connections'));
    });

    it('serves mongosh --tls', async () => {
      const result = await runMongosh(
        `${portUri(required.port)}`,
        `print(db.adminCommand({ backupStatus: 1 }).ok); print(db.getSiblingDB('shop').orders.countDocuments())`,
        60_000,
        ['--tls', '--tlsCAFile', certs.caFile],
      );
      assert.equal(result.code, 0, `mongosh failed:\n${result.stdout}\n${result.stderr}`);
      assert.deepEqual(result.stdout.trim().split('\n'), ['1', '1']);
    });
  });

  describe('--tls-mode allow', () => {
    let allowing: RunningProxy;
    before(async () => {
      allowing = await proxy(['--tls-mode', 'allow', '--tls-cert', certs.serverPemFile, '--tls-handshake-timeout-ms', String(HANDSHAKE_TIMEOUT_MS)]);
    });

    it('serves plain and TLS clients on one port', async () => {
      assert.equal(await ping(portUri(allowing.port)), 1);
      assert.equal(await ping(portUri(allowing.port, { tls: 'true', tlsCAFile: certs.caFile })), 1);
      const count = await withClient(portUri(allowing.port), (client) => client.db('shop').collection('orders').countDocuments());
      assert.equal(count, 1);
    });

    it('serves a plain message whose first byte is 0x16, a TLS record\'s, as plain', async () => {
      // 278 = 0x116: the length's low byte, the message's first, is a TLS handshake record's type.
      const bare = opMsg({ ping: 1, $db: 'admin', pad: '' });
      const message = opMsg({ ping: 1, $db: 'admin', pad: 'x'.repeat(278 - bare.length) });
      assert.equal(message.length, 278);
      assert.equal(message[0], 0x16);
      const client = await RawClient.connect(allowing.port);
      try {
        assert.equal((await client.command(message)).doc['ok'], 1);
      } finally {
        client.close();
      }
    });

    it('presents the certificate given: a client with its CA gets that one, a client without refuses it', async () => {
      const given = new crypto.X509Certificate(fs.readFileSync(certs.serverCertFile));
      const trusting = tls.connect({ port: allowing.port, host: '127.0.0.1', ca: fs.readFileSync(certs.caFile) });
      await once(trusting, 'secureConnect');
      assert.equal(trusting.getPeerX509Certificate()?.fingerprint256, given.fingerprint256);
      trusting.destroy();
      // Node's own CA list: the proxy's certificate chains to none of them.
      const untrusting = tls.connect({ port: allowing.port, host: '127.0.0.1' });
      const [err] = (await once(untrusting, 'error').catch((e: unknown) => [e])) as [NodeJS.ErrnoException];
      assert.equal(err.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
      await refused(portUri(allowing.port, { tls: 'true' }));
    });

    it('closes a connection that sends 10 bytes and stalls, once --tls-handshake-timeout-ms passes; others are served', async () => {
      const stalled = await RawClient.connect(allowing.port);
      stalled.send(opMsg({ ping: 1, $db: 'admin' }).subarray(0, 10));
      assert.equal(await ping(portUri(allowing.port)), 1);
      await stalled.closed;
      const line = await until(() => logged(allowing, 'client sent no first message in time'));
      assert.equal(line['bytes'], 10);
      assert.equal(line['timeoutMS'], HANDSHAKE_TIMEOUT_MS);
      assert.equal(await ping(portUri(allowing.port, { tls: 'true', tlsCAFile: certs.caFile })), 1);
    });

    it('garbage and early closes while it tells TLS from plain cost only their own connections', async () => {
      for (let i = 0; i < 20; i++) {
        const garbage = await RawClient.connect(allowing.port);
        garbage.socket.end(Buffer.alloc(16, 0x41));
        const early = await RawClient.connect(allowing.port);
        early.socket.end(Buffer.from([0x16, 0x03, 0x01]));
        await Promise.all([garbage.closed, early.closed]);
      }
      await until(() => logged(allowing, 'TLS handshake failed'));
      assert.equal(await ping(portUri(allowing.port)), 1);
      assert.equal(await ping(portUri(allowing.port, { tls: 'true', tlsCAFile: certs.caFile })), 1);
    });
  });

  describe("the upstream URI's client certificate is the proxy's alone", () => {
    // mongod sees the proxy's certificate on every client's connection (the URI has
    // tlsCertificateKeyFile): MONGODB-X509 would log any client in as the proxy's user.
    let guarded: RunningProxy;
    before(async () => {
      guarded = await proxy(['--tls-mode', 'allow', '--tls-cert', certs.serverPemFile]);
    });

    function refusals(via: string): number {
      return guarded.logs.filter((entry) => entry['msg'] === 'refused MONGODB-X509 authentication' && entry['via'] === via).length;
    }

    it('warns at start', () => {
      const line = guarded.logs.find((entry) => entry['refused'] === 'MONGODB-X509');
      assert.equal(line?.['level'], 40);
      assert.match(String(line?.['msg']), /would be taken as their identity/);
    });

    it('answers authenticate with MONGODB-X509 itself, as mongod answers a failed one; another mechanism reaches mongod', async () => {
      const client = await RawClient.connect(guarded.port);
      try {
        const { doc } = await client.command(opMsg({ authenticate: 1, mechanism: 'MONGODB-X509', $db: '$external' }));
        // Forwarded, the dev server (which has no authenticate command) would answer CommandNotFound.
        assert.deepEqual(doc, { ok: 0, errmsg: 'Authentication failed.', code: 18, codeName: 'AuthenticationFailed' });
        await until(() => refusals('authenticate') === 1);
        const other = await client.command(opMsg({ authenticate: 1, mechanism: 'MONGODB-CR', $db: 'admin' }));
        assert.equal(other.doc['codeName'], 'CommandNotFound');
      } finally {
        client.close();
      }
    });

    it("takes a MONGODB-X509 speculativeAuthenticate out of the hello it forwards, and only that one", async () => {
      const client = await RawClient.connect(guarded.port);
      try {
        const speculative = { authenticate: 1, mechanism: 'MONGODB-X509' };
        const { doc } = await client.command(opMsg({ hello: 1, speculativeAuthenticate: speculative, $db: 'admin' }));
        assert.equal(doc['ok'], 1);
        assert.equal(doc['speculativeAuthenticate'], undefined);
        await until(() => refusals('speculativeAuthenticate') === 1);
        await client.command(opMsg({ hello: 1, speculativeAuthenticate: { ...speculative, mechanism: 'SCRAM-SHA-256' }, $db: 'admin' }));
        // Lines come in order: had the SCRAM one been stripped, its line would come before this one's.
        await client.command(opMsg({ hello: 1, speculativeAuthenticate: speculative, $db: 'admin' }));
        await until(() => refusals('speculativeAuthenticate') >= 2);
        assert.equal(refusals('speculativeAuthenticate'), 2);
      } finally {
        client.close();
      }
    });

    it('the driver asking for MONGODB-X509 with a certificate of its own is refused with AuthenticationFailed', async () => {
      const before = refusals('speculativeAuthenticate');
      const uri = portUri(guarded.port, { tls: 'true', tlsCAFile: certs.caFile, tlsCertificateKeyFile: certs.clientPemFile, authMechanism: 'MONGODB-X509' });
      await assert.rejects(ping(uri), (err: Error & { code?: unknown; cause?: { code?: unknown } }) => err.code === 18 || err.cause?.code === 18);
      // Its hello tried speculatively, then its explicit authenticate was refused.
      await until(() => refusals('speculativeAuthenticate') > before && refusals('authenticate') >= 2);
    });
  });

  describe('--tls-ca: client certificates', () => {
    let verifying: RunningProxy;
    let lenient: RunningProxy;
    before(async () => {
      verifying = await proxy(['--tls-cert', certs.serverCertFile, '--tls-key', certs.serverKeyFile, '--tls-ca', certs.caFile]);
      lenient = await proxy(['--tls-mode', 'allow', '--tls-cert', certs.serverPemFile, '--tls-ca', certs.caFile, '--tls-allow-connections-without-certificates']);
    });

    it('lets a client in with a certificate from the CA', async () => {
      assert.equal(await ping(portUri(verifying.port, { tls: 'true', tlsCAFile: certs.caFile, tlsCertificateKeyFile: certs.clientPemFile })), 1);
    });

    it('refuses a certificate from another CA, even where a client without one may connect', async () => {
      for (const proxyUnderTest of [verifying, lenient]) {
        await refused(portUri(proxyUnderTest.port, { tls: 'true', tlsCAFile: certs.caFile, tlsCertificateKeyFile: certs.rogueClientPemFile }));
        const line = await until(() => logged(proxyUnderTest, 'SSL peer certificate validation failed'));
        assert.match(String(line['reason']), /CERT|SIGNATURE|ISSUER/);
      }
    });

    it('refuses a client without a certificate, as mongod does by default', async () => {
      await refused(portUri(verifying.port, { tls: 'true', tlsCAFile: certs.caFile }));
      await until(() => logged(verifying, 'no SSL certificate provided by peer; connection rejected'));
    });

    it('with --tls-allow-connections-without-certificates, lets one in (and plain clients, in allow mode)', async () => {
      assert.equal(await ping(portUri(lenient.port, { tls: 'true', tlsCAFile: certs.caFile })), 1);
      assert.equal(await ping(portUri(lenient.port, { tls: 'true', tlsCAFile: certs.caFile, tlsCertificateKeyFile: certs.clientPemFile })), 1);
      assert.equal(await ping(portUri(lenient.port)), 1);
    });
  });
});
