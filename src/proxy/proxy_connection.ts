/**
 * One client of the proxy and its own upstream connection to mongod.
 *
 * Client to upstream: a message is streamed through as it arrives once its first bytes
 * (opcode, command name) say the proxy has nothing to do with it (client_stream.ts): its
 * bytes are written upstream as the same Buffers they were read in, never gathered,
 * never re-encoded. Only messages the proxy must read whole are assembled: a claimed
 * command, decoded and answered by claimed_command.ts, a handshake (a compressor we cannot read is taken
 * out, see hello_compressors.ts), an OP_COMPRESSED (the name is inside), and whatever
 * arrives while a claimed command runs: those wait in a queue, so that the client's
 * request order is what mongod sees. A compressed message we cannot decompress (or a bad
 * length) is never forwarded: it takes its place in that queue as a "close" marker, so
 * everything sent before it is still answered, in order, before the client is ended.
 * The client's FIN is such a marker too.
 *
 * Upstream to client: chunks are written on as they arrive, with no framing and no
 * copies (upstream_read_buffer.ts). A boundary tracker follows the message headers so that a reply of ours is
 * written only between two whole upstream messages, and so that a claimed command runs
 * only once mongod has answered every request forwarded before it (reply_order.ts).
 *
 * Everything that can go wrong is caught here and closes this connection only.
 */
import type net from 'node:net';
import type tls from 'node:tls';
import type { Logger } from 'pino';
import type { PeekedCommand } from '../wire/peek.js';
import { MessageBoundaryTracker } from './boundary.js';
import { ForwardedRequests, expectsReply } from './reply_order.js';
import { holdsWhole, inspectClientMessage, type Queued, type QueuedClose, type QueuedFrame } from './client_message.js';
import { ClientStreamFramer, type ClientStreamSink } from './client_stream.js';
import { ReplySplicer } from './reply_splicer.js';
import { ClaimedCommands, type ClaimHost } from './claimed_command.js';
import { PartialMessageTimeout } from './partial_message_timeout.js';
import type { ClientInfo, Interceptor } from './interceptor.js';
import { connectUpstream } from './upstream_socket.js';
import { changesAuthentication, watchingAuthentication } from './authentication_watch.js';
import { UpstreamReadBuffer } from './upstream_read_buffer.js';
import { ClientBackpressure } from './client_backpressure.js';
import { HandshakeReplies } from './handshake_replies.js';
import { isHandshakeCommand } from './hello_compressors.js';

/** Counters shared by every connection of one proxy. */
export interface ProxyStats {
  connectionsCurrent: number;
  connectionsTotal: number;
  /** Client messages claimed by the interceptor (one it then sends on to mongod counts as forwarded too). */
  intercepted: number;
  /** Client messages forwarded to mongod. */
  forwarded: number;
}

export interface ProxyConnectionOptions {
  id: number;
  /** Plain or TLS (a tls.TLSSocket is a net.Socket): nothing here depends on which. */
  client: net.Socket;
  upstream: { host: string; port: number };
  /** The upstream URI's TLS options, when it asks for TLS; kept out of every log line. */
  upstreamTls: tls.ConnectionOptions | undefined;
  interceptor: Interceptor | undefined;
  /** `--advertise host:port`: mongod's handshake replies name this address instead of its own (advertised_hello.ts). */
  advertise: string | undefined;
  /** The forwarding sockets present a client certificate: MONGODB-X509 is refused (x509_refusal.ts). */
  refuseX509: boolean;
  maxMessageSize: number;
  upstreamConnectTimeoutMS: number;
  /** How long a client may send nothing in the middle of a message before it is dropped; 0: forever. */
  partialMessageTimeoutMS: number;
  log: Logger;
  stats: ProxyStats;
  /** Called once, when the connection is closed or starts closing gracefully. */
  onClose: (connection: ProxyConnection) => void;
}

/** How long a gracefully ended socket may take to flush before it is destroyed. */
const CLOSE_GRACE_MS = 5_000;

/** Resolves on 'close' (events.once would reject on an 'error' first, which we handle elsewhere). */
function closed(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

export class ProxyConnection {
  readonly info: ClientInfo;
  /** Settles when both sockets are closed (a graceful close may take a moment longer). */
  readonly gone: Promise<void>;
  readonly #client: net.Socket;
  readonly #upstream: net.Socket;
  readonly #options: ProxyConnectionOptions;
  readonly #log: Logger;
  readonly #framer: ClientStreamFramer;
  readonly #toClient: ReplySplicer;
  /** With --advertise: the handshakes whose replies are rewritten. */
  readonly #handshakes: HandshakeReplies | undefined;
  /** Forwarded requests mongod has yet to answer; only kept when something can be claimed. */
  readonly #requests: ForwardedRequests | undefined;
  /** Client frames waiting behind a claimed command, in arrival order. */
  readonly #queue: Queued[] = [];
  /** True while the queue is being worked through (a claimed command may be running). */
  #busy = false;
  readonly #backpressure: ClientBackpressure;
  /** Runs the commands the interceptor claims; undefined without an interceptor. */
  readonly #claimed: ClaimedCommands | undefined;
  readonly #stall: PartialMessageTimeout | undefined;
  #closed = false;
  /** See ClientInfo.authGeneration. */
  #authGeneration = 0;
  /** A close marker is queued: nothing more is read from the client or forwarded. */
  #closing = false;
  /** mongod's connection is gone while a claimed command runs; the client waits for its reply. */
  #upstreamGone = false;

  constructor(options: ProxyConnectionOptions) {
    this.#options = options;
    this.#client = options.client;
    const remoteAddress = `${this.#client.remoteAddress ?? ''}:${this.#client.remotePort ?? 0}`;
    const connection = this;
    this.info = Object.freeze({
      id: options.id,
      remoteAddress,
      get authGeneration() {
        return connection.#authGeneration;
      },
    });
    this.#log = options.log.child({ connectionId: options.id, remoteAddress });
    const requests = options.interceptor === undefined ? undefined : new ForwardedRequests();
    this.#requests = requests;
    const tracker = new MessageBoundaryTracker(options.maxMessageSize, requests && ((responseTo, moreToCome) => requests.answered(responseTo, moreToCome)));
    const reads = new UpstreamReadBuffer(this.#client, () => this.#upstream.pause());
    this.#handshakes = options.advertise === undefined ? undefined : new HandshakeReplies(options.advertise, this.#log);
    this.#toClient = new ReplySplicer(tracker, (bytes) => reads.write(bytes), this.#handshakes);
    const interceptor = options.interceptor;
    this.#claimed = interceptor && new ClaimedCommands(interceptor, this.#claimHost());
    this.#framer = new ClientStreamFramer({
      sink: this.#clientSink(),
      maxMessageSize: options.maxMessageSize,
      holds: interceptor && watchingAuthentication(holdsWhole(interceptor), () => void this.#authGeneration++),
    });

    this.#client.setNoDelay(true);
    this.#backpressure = new ClientBackpressure(this.#client, () => !this.#closed && !this.#closing, () => this.#stall?.rearm());
    this.#stall =
      options.partialMessageTimeoutMS > 0
        ? new PartialMessageTimeout(
            this.#client,
            options.partialMessageTimeoutMS,
            () => this.#framer.midMessage && !this.#backpressure.paused && !this.#closing,
            (ms) => this.#fail('client stalled in the middle of a message', new Error(`no byte for ${ms} ms in the middle of a message`)),
          )
        : undefined;
    // mongod's bytes are read into a buffer of ours, reused while no write holds it.
    const onread = { buffer: () => reads.next(), callback: (length: number, buffer: Uint8Array) => this.#onUpstreamRead(length, buffer) };
    const timeoutMS = options.upstreamConnectTimeoutMS;
    this.#upstream = connectUpstream(options.upstream, options.upstreamTls, onread, {
      timeoutMS,
      timedOut: () => this.#fail('upstream connect timed out', new Error(`no connection after ${timeoutMS} ms`)),
    });

    // Every handler is guarded: nothing it throws may reach the process.
    this.#client.on('data', (chunk: Buffer) => {
      try {
        if (!this.#closing) this.#framer.push(chunk);
      } catch (err) {
        this.#fail('client data failed', err);
      }
    });
    this.#upstream.on('drain', () => this.#backpressure.upstreamDrained());
    this.#client.on('drain', () => this.#upstream.resume());
    this.#client.on('error', (err) => this.#fail('client error', err));
    this.#upstream.on('error', (err) => this.#upstreamEnded('upstream error', err));
    // The client's FIN (its socket is half-open, see server.ts): it still gets the answers
    // to what it sent before, as from mongod. mongod's FIN ends things at once (with
    // allowHalfOpen off, Node ends our side of that socket itself).
    this.#client.on('end', () => {
      try {
        this.#enqueueClose('client ended', undefined);
      } catch (err) {
        this.#fail('client end failed', err);
      }
    });
    this.#upstream.on('end', () => this.#upstreamEnded('upstream ended', undefined));
    this.#client.on('close', () => this.#end('client closed'));
    this.#upstream.on('close', () => this.#upstreamEnded('upstream closed', undefined));
    this.gone = Promise.all([closed(this.#client), closed(this.#upstream)]).then(() => undefined);
    this.#log.debug({ upstream: options.upstream }, 'connection opened');
  }

  /** One read from mongod, into the buffer UpstreamReadBuffer gave (always a Buffer). */
  #onUpstreamRead(length: number, read: Uint8Array): boolean {
    const buffer = read as Buffer;
    try {
      if (!this.#closed) this.#toClient.push(length === buffer.length ? buffer : buffer.subarray(0, length));
    } catch (err) {
      this.#fail('upstream data failed', err);
    }
    // Returning false would pause reading; backpressure pauses the socket itself.
    return true;
  }

  /** Ends both sides at once, dropping whatever is buffered (proxy shutdown). Idempotent. */
  destroy(): void {
    this.#close('proxy closing', undefined, false);
  }

  /**
   * Whether a queued frame is the interceptor's. Asked again as its turn comes: whether a
   * name is claimed may change meanwhile (currentOp is claimed only while a backup runs),
   * and mongod would have run it only now, after everything before it on this connection.
   */
  #claims(item: QueuedFrame): boolean {
    if (item.claimed) return true;
    const { peeked } = item;
    return peeked !== undefined && this.#options.interceptor?.intercepts(peeked.commandName, peeked.argumentType) === true;
  }

  /** What running a claimed command may do to this connection (claimed_command.ts). */
  #claimHost(): ClaimHost {
    return {
      info: this.info,
      log: this.#log,
      closed: () => this.#closed,
      allAnswered: () => this.#requests?.allAnswered(),
      forward: (frame, peeked) => this.#forward(frame, peeked),
      capture: (requestID) => this.#toClient.capture(requestID),
      inject: (reply) => this.#toClient.inject(reply),
      intercepted: () => void this.#options.stats.intercepted++,
      fail: (reason, err) => this.#fail(reason, err),
    };
  }

  /** Where the framer hands the client's messages. */
  #clientSink(): ClientStreamSink {
    return {
      holding: () => this.#busy,
      pass: (bytes) => {
        if (this.#closed) return false;
        this.#writeUpstream(bytes);
        return true;
      },
      passed: (requestID, expectsReply) => this.#countForwarded(requestID, expectsReply),
      whole: (frame) => this.#onWholeMessage(frame),
      badLength: (err) => this.#enqueueClose('bad message length from client', err),
    };
  }

  /** A client message the framer held until whole; false once nothing more is to be read. */
  #onWholeMessage(received: Buffer): boolean {
    if (this.#closed || this.#closing) return false;
    const item = inspectClientMessage(received, this.#options.interceptor, this.#log, this.#options.refuseX509);
    // Held whole without its name read first (compressed, or behind a claimed command).
    if (item.kind === 'frame' && item.peeked !== undefined && changesAuthentication(item.peeked.commandName)) this.#authGeneration++;
    if (item.kind === 'frame') item.authGeneration = this.#authGeneration;
    if (item.kind === 'close') {
      this.#enqueueClose(item.reason, item.err);
      return false;
    }
    if (!this.#busy && !item.claimed) this.#forward(item.frame, item.peeked);
    else this.#enqueue(item);
    return !this.#closed && !this.#closing;
  }

  #enqueue(item: Queued): void {
    this.#queue.push(item);
    if (item.kind === 'frame') this.#backpressure.queued(item.frame.length);
    if (!this.#busy) void this.#drainQueue();
  }

  /** Stops reading the client; what it sent before is still served, then it is ended. */
  #enqueueClose(reason: string, err: unknown): void {
    if (this.#closed || this.#closing) return;
    this.#closing = true;
    this.#client.pause();
    this.#enqueue({ kind: 'close', reason, err });
  }

  #forward(frame: Buffer, peeked: PeekedCommand | undefined): void {
    const requestID = frame.readInt32LE(4);
    const answered = (this.#requests !== undefined || this.#handshakes !== undefined) && expectsReply(frame, peeked);
    // Every handshake is held whole and peeked (holdsWhole), so none is streamed past this.
    if (answered && this.#handshakes !== undefined && peeked !== undefined && isHandshakeCommand(peeked.commandName)) this.#handshakes.requested(requestID);
    this.#countForwarded(requestID, answered);
    this.#writeUpstream(frame);
  }

  /** One more client message for mongod; one it will answer is awaited (reply_order.ts). */
  #countForwarded(requestID: number, expectsReply: boolean): void {
    this.#options.stats.forwarded++;
    if (expectsReply) this.#requests?.forwarded(requestID);
  }

  #writeUpstream(bytes: Buffer): void {
    if (!this.#upstream.write(bytes)) this.#backpressure.upstreamFull();
  }

  /** Works through the queue in order; a claimed command holds back everything behind it. */
  async #drainQueue(): Promise<void> {
    this.#busy = true;
    try {
      for (let item = this.#queue.shift(); item !== undefined && !this.#closed; item = this.#queue.shift()) {
        if (item.kind === 'close') {
          await this.#closeAfterAnswers(item);
          return;
        }
        this.#backpressure.dequeued(item.frame.length);
        if (this.#claims(item)) await (this.#claimed as ClaimedCommands).run(item);
        else this.#forward(item.frame, item.peeked);
      }
    } catch (err) {
      this.#fail('intercepted command failed', err);
    } finally {
      this.#busy = false;
    }
  }

  /**
   * The close marker's turn: every claimed command before it has run (the queue is
   * worked in order). Waits for mongod's answers to everything forwarded before it and
   * for our replies to be written, then ends the client gracefully.
   */
  async #closeAfterAnswers(marker: QueuedClose): Promise<void> {
    this.#queue.length = 0;
    if (this.#requests === undefined) {
      // A plain pipe (no interceptor) does not track requests: pass the client's FIN on.
      // mongod answers what it has read, then closes, and 'upstream ended' follows.
      this.#upstream.end();
      return;
    }
    const earlier = this.#requests.allAnswered();
    if (earlier !== undefined) await earlier;
    if (this.#closed) return;
    // The last answer's header is in, maybe not the rest of it; and our own replies may
    // still wait for a boundary.
    const flushed = this.#toClient.flushed();
    if (flushed !== undefined) {
      await flushed;
      if (this.#closed) return;
    }
    this.#close(marker.reason, marker.err, true);
  }

  /**
   * mongod's connection ended (its FIN, a reset, mongod killed). The client follows, at
   * once, unless a claimed command is running: that one answers without this connection
   * (a backupStart whose mongod died says why it failed, as mongod would have had it
   * failed), so the client is ended only after its reply. Nothing queued behind it can
   * reach mongod any more, and is dropped.
   */
  #upstreamEnded(reason: string, err: unknown): void {
    if (this.#closed || this.#upstreamGone) return;
    try {
      if (!this.#busy || !this.#toClient.upstreamEnded()) {
        this.#close(reason, err, err === undefined);
        return;
      }
      this.#upstreamGone = true;
      this.#log.debug({ reason, err: err === undefined ? undefined : String(err) }, 'upstream gone; answering the claimed command first');
      this.#requests?.close();
      this.#queue.length = 0;
      this.#backpressure.queueDropped();
      this.#closing = true;
      this.#client.pause();
      this.#queue.push({ kind: 'close', reason, err });
    } catch (error) {
      this.#fail('upstream end failed', error);
    }
  }

  #fail(reason: string, err: unknown): void {
    this.#close(reason, err, false);
  }

  /** One side ended: let the other flush what it was given, then close. */
  #end(reason: string): void {
    this.#close(reason, undefined, true);
  }

  #close(reason: string, err: unknown, graceful: boolean): void {
    if (this.#closed) {
      if (!graceful) this.#destroyBoth();
      return;
    }
    this.#closed = true;
    this.#queue.length = 0;
    this.#toClient.close();
    this.#requests?.close();
    if (err === undefined) this.#log.debug({ reason }, 'connection closed');
    else this.#log.warn({ reason, err: err instanceof Error ? err.message : String(err) }, 'connection closed');
    if (graceful) {
      // A reply mongod sent just before closing (or a last write from the client)
      // should still arrive; destroySoon ends the socket once its buffer is flushed.
      this.#client.destroySoon();
      this.#upstream.destroySoon();
      const timer = setTimeout(() => this.#destroyBoth(), CLOSE_GRACE_MS).unref();
      void this.gone.then(() => clearTimeout(timer));
    } else {
      this.#destroyBoth();
    }
    this.#options.onClose(this);
  }

  #destroyBoth(): void {
    this.#client.destroy();
    this.#upstream.destroy();
  }
}
