/**
 * The acceptor in front of a real listener, in `allow` mode, with real sockets: what
 * happens to connections that have not yet shown whether they are TLS or plain. The
 * handed-on side just echoes, so a client that is served sees its own bytes back.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import fs from 'node:fs';
import { once } from 'node:events';
import { ClientAcceptor } from '../../src/tls/client_acceptor.js';
import { loadServerTls, type ServerTls } from '../../src/tls/server_tls.js';
import { makeTestCerts, type TestCerts } from '../helpers/tls_certs.js';
import { captureLogger } from '../proxy/support.js';
import { opMsg } from '../helpers/raw_client.js';
import { until } from '../helpers/poll.js';

/** Small, so the stalled clients are closed soon; the served ones send at once. */
const TIMEOUT_MS = 300;
/** Longer than any test: every warning after the first of a kind is counted, not logged. */
const ONE_HOUR_MS = 3_600_000;

interface Listener {
  port: number;
  acceptor: ClientAcceptor;
  lines: Array<Record<string, unknown>>;
  /** The sockets handed on, server side. */
  served: net.Socket[];
  close(): Promise<void>;
}

async function listen(serverTls: ServerTls): Promise<Listener> {
  const { log, lines } = captureLogger();
  const server = net.createServer();
  const served: net.Socket[] = [];
  const acceptor = new ClientAcceptor(
    server,
    serverTls,
    log,
    (socket) => {
      served.push(socket);
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => socket.write(chunk));
    },
    ONE_HOUR_MS,
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    acceptor,
    lines,
    served,
    close: async () => {
      acceptor.close();
      for (const socket of served) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  return socket;
}

/** Writes `bytes` and resolves with the first `bytes.length` bytes echoed back. */
async function echoed(socket: net.Socket, bytes: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  const done = new Promise<Buffer>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length < bytes.length) return;
      socket.off('data', onData);
      resolve(Buffer.concat(chunks).subarray(0, bytes.length));
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error('closed before the echo')));
  });
  socket.write(bytes);
  return done;
}

function withMsg(lines: Array<Record<string, unknown>>, msg: string, level?: number): Array<Record<string, unknown>> {
  return lines.filter((line) => line['msg'] === msg && (level === undefined || line['level'] === level));
}

const WARN = 40;
const DEBUG = 20;

describe('ClientAcceptor: telling TLS from plain', () => {
  let certs: TestCerts;
  let serverTls: ServerTls;

  before(async () => {
    certs = makeTestCerts();
    serverTls = (await loadServerTls({
      mode: 'allow',
      certFile: certs.serverPemFile,
      allowConnectionsWithoutCertificates: false,
      handshakeTimeoutMS: TIMEOUT_MS,
      flags: { cert: '--tls-cert', ca: '--tls-ca', mode: '--tls-mode' },
    })) as ServerTls;
  });
  after(() => certs?.remove());

  it('closes a client that sends 10 bytes, or nothing, once the timeout passes; one that sends its message is served', async () => {
    const listener = await listen(serverTls);
    try {
      const plain = await connect(listener.port);
      const message = opMsg({ ping: 1, $db: 'admin' });
      assert.deepEqual(await echoed(plain, message), message);

      const tenBytes = await connect(listener.port);
      tenBytes.write(message.subarray(0, 10));
      const silent = await connect(listener.port);
      await Promise.all([once(tenBytes, 'close'), once(silent, 'close')]);

      const timedOut = withMsg(listener.lines, 'client sent no first message in time');
      assert.deepEqual(timedOut.map((line) => line['bytes']).sort(), [0, 10]);
      assert.equal(timedOut[0]?.['timeoutMS'], TIMEOUT_MS);
      // Handed on before either: its own timer was cleared, it is still served.
      assert.deepEqual(await echoed(plain, message), message);
      assert.equal(listener.served.length, 1);
      plain.destroy();
    } finally {
      await listener.close();
    }
  });

  it('garbage, and connections that close early, during detection: no crash, one warning, others served', async () => {
    const listener = await listen(serverTls);
    try {
      const GARBAGE = 100;
      const clients: Array<Promise<unknown>> = [];
      for (let i = 0; i < GARBAGE; i++) {
        clients.push(
          (async () => {
            // 16 bytes whose responseTo is not 0 or -1: taken for a ClientHello; OpenSSL refuses it.
            const garbage = await connect(listener.port);
            garbage.end(Buffer.alloc(16, 0x41));
            // Half a header, then FIN.
            const early = await connect(listener.port);
            early.end(Buffer.alloc(5, 0x16));
            // Gone at once, with a reset.
            const reset = await connect(listener.port);
            reset.resetAndDestroy();
            await Promise.all([once(garbage, 'close'), once(early, 'close')]);
          })(),
        );
      }
      await Promise.all(clients);

      const plain = await connect(listener.port);
      const message = opMsg({ ping: 1, $db: 'admin' });
      assert.deepEqual(await echoed(plain, message), message);
      const secure = tls.connect({ port: listener.port, host: '127.0.0.1', ca: fs.readFileSync(certs.caFile) });
      await once(secure, 'secureConnect');
      assert.deepEqual(await echoed(secure, message), message);

      const failed = await until(() => {
        const all = withMsg(listener.lines, 'TLS handshake failed');
        return all.length === GARBAGE ? all : undefined;
      });
      assert.equal(failed.filter((line) => line['level'] === WARN).length, 1, 'one warning; the others at debug');
      listener.acceptor.close();
      const summary = withMsg(listener.lines, 'TLS handshake failed', WARN).at(-1);
      assert.equal(summary?.['suppressed'], GARBAGE - 1);
      plain.destroy();
      secure.destroy();
    } finally {
      await listener.close();
    }
  });

  it('a plain client handed on: its later errors are no longer "before its first message"', async () => {
    const listener = await listen(serverTls);
    try {
      const plain = await connect(listener.port);
      const message = opMsg({ ping: 1, $db: 'admin' });
      assert.deepEqual(await echoed(plain, message), message);
      const served = listener.served[0] as net.Socket;
      // Not events.once: it would reject on the very error this test is about.
      const gone = new Promise((resolve) => served.once('close', resolve));
      // ECONNRESET on the served socket: an error after the hand-off.
      plain.resetAndDestroy();
      await gone;
      assert.deepEqual(withMsg(listener.lines, 'connection error before its first message', DEBUG), []);
    } finally {
      await listener.close();
    }
  });
});
