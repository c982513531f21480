/**
 * Turns a listener's raw connections into clients, plain or TLS, as `--tls-mode` says.
 * What it hands on is a net.Socket either way (a tls.TLSSocket is one), so the code that
 * serves a client does not know which it got.
 *
 * TLS and plain clients share the port: the first 16 bytes tell them apart, as mongod
 * does (src/mongo/transport/session_asio.h, maybeHandshakeSSLForIngress; later
 * asio_session_impl.cpp). A client's first MongoDB message has `responseTo` 0 (or -1)
 * in bytes 8 to 11 of its header; a TLS ClientHello has its handshake length and
 * version (0x03 0x0N) there, never 0 or -1. The first byte alone (0x16, a TLS handshake
 * record) would not do: it is also the low byte of a 278- or 534-byte message's length.
 *
 * Without TLS nothing is read here: the socket goes straight on.
 *
 * Telling them apart has a deadline (`handshakeTimeoutMS`, then node:tls's own for the
 * handshake), which mongod has not: without it a client that sends nothing, or 10 bytes,
 * would hold its descriptor for ever. The warnings a stranger can cause are rate-limited
 * (warn_limiter.ts).
 */
import type net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { ServerTls } from './server_tls.js';
import { WarnLimiter } from './warn_limiter.js';

/** A MongoDB message header: enough to tell a client's first message from a ClientHello. */
const SNIFF_BYTES = 16;
const RESPONSE_TO_OFFSET = 8;

export class ClientAcceptor {
  readonly #tls: ServerTls | undefined;
  readonly #tlsServer: tls.Server | undefined;
  readonly #log: Logger;
  readonly #warnings: WarnLimiter;
  readonly #onClient: (socket: net.Socket) => void;
  /** Raw sockets still being sniffed or in their handshake: close() ends them. */
  readonly #pending = new Set<net.Socket>();
  /** How many of them are still to show whether they are TLS: logged when one times out. */
  #undecided = 0;

  /**
   * Listens for `server`'s connections and calls `onClient` with each client's socket,
   * paused where bytes were already read (call `socket.resume()` once listening, or
   * attach a 'data' listener and resume). `onClient` must attach its own 'error' listener.
   * `warnIntervalMS`: see warn_limiter.ts (tests set it long, to count).
   */
  constructor(server: net.Server, tlsConfig: ServerTls | undefined, log: Logger, onClient: (socket: net.Socket) => void, warnIntervalMS?: number) {
    this.#tls = tlsConfig;
    this.#log = log;
    this.#warnings = new WarnLimiter(log, warnIntervalMS);
    this.#onClient = onClient;
    if (tlsConfig !== undefined) {
      // Never listens: the sniffed sockets are handed to it (its 'connection' listener
      // wraps each in a TLSSocket, with the handshake timeout).
      const tlsServer = tls.createServer(tlsConfig.options);
      tlsServer.on('secureConnection', (socket: tls.TLSSocket) => this.#secured(socket));
      tlsServer.on('tlsClientError', (err, socket) => {
        this.#warnings.warn({ remoteAddress: remote(socket), err: err.message }, 'TLS handshake failed');
        socket.destroy();
      });
      this.#tlsServer = tlsServer;
    }
    server.on('connection', (socket: net.Socket) => this.#accept(socket));
  }

  /** Ends the connections not yet handed on (the listener is closing). */
  close(): void {
    for (const socket of [...this.#pending]) socket.destroy();
    this.#pending.clear();
    this.#warnings.close();
  }

  #accept(raw: net.Socket): void {
    if (this.#tls === undefined) {
      this.#onClient(raw);
      return;
    }
    const timeoutMS = this.#tls.handshakeTimeoutMS;
    this.#pending.add(raw);
    this.#undecided++;
    const chunks: Buffer[] = [];
    let length = 0;
    // Until it is handed on, nobody else handles its errors.
    const onError = (err: Error) => this.#log.debug({ remoteAddress: remote(raw), err: err.message }, 'connection error before its first message');
    const onEnd = () => raw.destroy();
    const timer = setTimeout(() => {
      this.#warnings.warn({ remoteAddress: remote(raw), bytes: length, timeoutMS, undecided: this.#undecided }, 'client sent no first message in time');
      raw.destroy();
    }, timeoutMS);
    /** Detection is over, whichever way: nothing here listens to the socket any more. */
    const decided = () => {
      clearTimeout(timer);
      this.#undecided--;
      raw.off('data', onData);
      raw.off('end', onEnd);
      raw.off('error', onError);
      raw.off('close', onClose);
    };
    const onClose = () => {
      decided();
      this.#pending.delete(raw);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length < SNIFF_BYTES) return;
      decided();
      raw.pause();
      const head = chunks.length === 1 ? chunk : Buffer.concat(chunks, length);
      // Put back as read: the client's bytes still reach mongod in the reads they came in.
      raw.unshift(head);
      this.#route(raw, head.readInt32LE(RESPONSE_TO_OFFSET));
    };
    raw.on('data', onData);
    raw.on('end', onEnd);
    raw.on('error', onError);
    raw.on('close', onClose);
  }

  #route(raw: net.Socket, responseTo: number): void {
    const tlsConfig = this.#tls as ServerTls;
    if (responseTo !== 0 && responseTo !== -1) {
      // Still ours to end at close(). Its errors are its TLSSocket's now, but an error
      // must never find the raw socket without a listener.
      raw.on('error', (err) => this.#log.debug({ remoteAddress: remote(raw), err: err.message }, 'TLS connection error'));
      raw.once('close', () => this.#pending.delete(raw));
      // A ClientHello: node:tls reads it from the socket's buffer (_tls_wrap.js, initRead).
      (this.#tlsServer as tls.Server).emit('connection', raw);
      return;
    }
    this.#pending.delete(raw);
    if (tlsConfig.mode === 'require') {
      // mongod's words, for the same refusal (session_asio.h, SSLHandshakeFailed).
      this.#warnings.warn({ remoteAddress: remote(raw) }, 'The server is configured to only allow SSL connections');
      raw.destroy();
      return;
    }
    this.#onClient(raw);
    raw.resume();
  }

  /**
   * The handshake is done. With a CA, the client's certificate is checked here, as
   * mongod's SSLManager does (src/mongo/util/net/ssl_manager_openssl.cpp,
   * parseAndValidatePeerCertificate): none is refused unless
   * allowConnectionsWithoutCertificates, one that does not chain to the CA always is.
   * node:tls verified it already (rejectUnauthorized is off so that we decide, and log).
   */
  #secured(socket: tls.TLSSocket): void {
    const tlsConfig = this.#tls as ServerTls;
    if (tlsConfig.verifyClients) {
      const presented = Object.keys(socket.getPeerCertificate()).length > 0;
      if (!presented && !tlsConfig.allowConnectionsWithoutCertificates) {
        this.#warnings.warn({ remoteAddress: remote(socket) }, 'no SSL certificate provided by peer; connection rejected');
        socket.destroy();
        return;
      }
      if (presented && !socket.authorized) {
        this.#warnings.warn({ remoteAddress: remote(socket), reason: String(socket.authorizationError) }, 'SSL peer certificate validation failed');
        socket.destroy();
        return;
      }
    }
    // Its raw socket stays in #pending until it closes (it closes with this one): close()
    // ends it like the caller's other clients.
    this.#onClient(socket);
  }
}

function remote(socket: net.Socket): string {
  return `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`;
}
