/**
 * The proxy's listener: accepts clients and gives each one its own upstream connection
 * to mongod (see connection.ts for what flows between them).
 *
 *   const proxy = await ProxyServer.start({ upstream: { host, port }, port: 27018, log });
 *   ...
 *   await proxy.close();
 */
import net from 'node:net';
import type tls from 'node:tls';
import type { Logger } from 'pino';
import { MAX_MESSAGE_SIZE } from '../wire/constants.js';
import { ProxyConnection, type ProxyStats } from './proxy_connection.js';
import type { Interceptor } from './interceptor.js';
import { ClientAcceptor } from '../tls/client_acceptor.js';
import type { ServerTls } from '../tls/server_tls.js';
import { presentsClientCertificate, refusingX509, warnClientCertificate } from './x509_refusal.js';

export type { ProxyStats };

export interface ProxyOptions {
  /** The mongod every client is relayed to. */
  upstream: { host: string; port: number };
  /** TLS towards mongod: the upstream URI's options (src/tls/upstream_tls.ts); none: plain TCP. */
  upstreamTls?: tls.ConnectionOptions | undefined;
  /** TLS towards clients (`--tls-mode allow|require`, src/tls/server_tls.ts); none: plain only. */
  tls?: ServerTls | undefined;
  /** Port to listen on; 0 picks a free one (see `address`). */
  port: number;
  /** Address to listen on; defaults to 127.0.0.1, as a sidecar should. */
  bind?: string;
  /** Answers the commands it claims; without one the proxy only forwards. */
  interceptor?: Interceptor;
  /**
   * `host:port` to name in mongod's handshake replies instead of the replica-set member's
   * own address (advertised_hello.ts), so that a driver given `replicaSet=` stays on the
   * proxy; undefined: replies cross untouched.
   */
  advertise?: string | undefined;
  log: Logger;
  /** Largest message accepted from either side; defaults to mongod's 48,000,000. */
  maxMessageSize?: number;
  /** How long to wait for the upstream TCP connection before closing the client; 10 s. */
  upstreamConnectTimeoutMS?: number;
  /**
   * How long a client may send nothing in the middle of a message (half a header, a
   * stalled body) before it is dropped; 0: never. Idle between messages is never timed
   * out. Default 60 s (partial_message_timeout.ts).
   */
  partialMessageTimeoutMS?: number;
}

const DEFAULT_BIND = '127.0.0.1';

/** An interceptor that claims nothing: the proxy still reads handshakes (and tracks replies), as --advertise needs. */
const CLAIMS_NOTHING: Interceptor = Object.freeze({
  intercepts: () => false,
  run: () => Promise.reject(new Error('nothing is claimed')),
});
const DEFAULT_UPSTREAM_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_PARTIAL_MESSAGE_TIMEOUT_MS = 60_000;

export class ProxyServer {
  readonly address: { host: string; port: number };
  /** Live counters (read them, do not write them). */
  readonly stats: Readonly<ProxyStats>;
  readonly #stats: ProxyStats;
  readonly #server: net.Server;
  readonly #connections = new Set<ProxyConnection>();
  #acceptor: ClientAcceptor | undefined;
  #closing: Promise<void> | undefined;

  private constructor(server: net.Server, stats: ProxyStats) {
    this.#server = server;
    this.#stats = stats;
    this.stats = stats;
    const bound = server.address() as net.AddressInfo;
    this.address = Object.freeze({ host: bound.address, port: bound.port });
  }

  /** Listens, and resolves once clients can connect; rejects if the port cannot be bound. */
  static async start(options: ProxyOptions): Promise<ProxyServer> {
    const stats: ProxyStats = { connectionsCurrent: 0, connectionsTotal: 0, intercepted: 0, forwarded: 0 };
    // Half-open: a client's FIN must not end our side before the answers to what it
    // sent are written (connection.ts ends the client once they are).
    const server = net.createServer({ noDelay: true, allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.bind ?? DEFAULT_BIND, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const proxy = new ProxyServer(server, stats);
    // A client certificate on the forwarding sockets is the proxy's identity, shown to
    // mongod on every client's connection: no client may authenticate with it (x509_refusal.ts).
    const refuseX509 = presentsClientCertificate(options.upstreamTls);
    if (refuseX509) warnClientCertificate(options.log);
    // Rewriting handshake replies needs the handshakes held and peeked, which an interceptor turns on.
    const interceptor = options.interceptor ?? (options.advertise === undefined ? undefined : CLAIMS_NOTHING);
    proxy.#accept({ ...options, interceptor: refuseX509 ? refusingX509(interceptor, options.log) : interceptor }, refuseX509);
    options.log.info({ address: proxy.address, upstream: options.upstream, advertise: options.advertise, tlsMode: options.tls?.mode ?? 'disabled', upstreamTls: options.upstreamTls !== undefined }, 'proxy listening');
    return proxy;
  }

  #accept(options: ProxyOptions, refuseX509: boolean): void {
    const log = options.log;
    // After listening, a server error (EMFILE on accept, say) is logged, not fatal.
    this.#server.on('error', (err) => log.warn({ err: err.message }, 'proxy listener error'));
    this.#acceptor = new ClientAcceptor(this.#server, options.tls, log, (client) => {
      try {
        if (this.#closing !== undefined) {
          client.destroy();
          return;
        }
        this.#stats.connectionsTotal++;
        this.#stats.connectionsCurrent++;
        const connection = new ProxyConnection({
          id: this.#stats.connectionsTotal,
          client,
          upstream: options.upstream,
          upstreamTls: options.upstreamTls,
          interceptor: options.interceptor,
          advertise: options.advertise,
          refuseX509,
          maxMessageSize: options.maxMessageSize ?? MAX_MESSAGE_SIZE,
          upstreamConnectTimeoutMS: options.upstreamConnectTimeoutMS ?? DEFAULT_UPSTREAM_CONNECT_TIMEOUT_MS,
          partialMessageTimeoutMS: options.partialMessageTimeoutMS ?? DEFAULT_PARTIAL_MESSAGE_TIMEOUT_MS,
          log,
          stats: this.#stats,
          onClose: () => {
            this.#stats.connectionsCurrent--;
          },
        });
        // Kept until its sockets are gone, so close() also cuts short a graceful close.
        this.#connections.add(connection);
        void connection.gone.then(() => this.#connections.delete(connection));
      } catch (err) {
        // Only a bug gets here; it must cost one client, not the process.
        log.warn({ err: err instanceof Error ? err.message : String(err) }, 'cannot set up client connection');
        client.destroy();
      }
    });
  }

  /** Stops listening and closes every client and upstream connection. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#acceptor?.close();
      for (const connection of [...this.#connections]) connection.destroy();
    });
    return this.#closing;
  }
}
