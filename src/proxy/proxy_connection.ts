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
 * copies. A boundary tracker follows the message headers so that a reply of ours is
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
  maxMessageSize: number;
  upstreamConnectTimeoutMS: number;
  /** How long a client may send nothing in the middle of a message before it is dropped; 0: forever. */
  partialMessageTimeoutMS: number;
  log: Logger;
  stats: ProxyStats;
  /** Called once, when the connection is closed or starts closing gracefully. */
  onClose: (connection: ProxyConnection) => void;
}

/**
 * Frames queued behind a claimed command are held up to this many bytes before the
 * client is no longer read; one whole message may overshoot it. Reading on below it
 * keeps a client's disconnect visible while a long command (backupStart) runs.
 */
const QUEUE_HIGH_WATER = 1024 * 1024;

/** As much as Node reads from a socket at once by default. */
const READ_BUFFER_SIZE = 64 * 1024;

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
  /** Forwarded requests mongod has yet to answer; only kept when something can be claimed. */
  readonly #requests: ForwardedRequests | undefined;
  /** Client frames waiting behind a claimed command, in arrival order. */
  readonly #queue: Queued[] = [];
  #queuedBytes = 0;
  /** True while the queue is being worked through (a claimed command may be running). */
  #busy = false;
  /** Why client reads are paused; reading resumes when none is left. */
  readonly #clientPaused = new Set<'upstream-full' | 'queue-full'>();
  /** Runs the commands the interceptor claims; undefined without an interceptor. */
  readonly #claimed: ClaimedCommands | undefined;
  readonly #stall: PartialMessageTimeout | undefined;
  #readBuffer: Buffer | undefined;
  /** A write to the client still holds #readBuffer: the next read needs a new one. */
  #readBufferHeld = false;
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
    this.#toClient = new ReplySplicer(tracker, (bytes) => {
      // Behind an unfinished write, these bytes wait in the socket's queue: a part of the
      // shared read buffer would pin a fresh 64 KiB buffer per read for a slow client
      // (a stalled change stream). An exact copy pins only its own bytes.
      const fromReadBuffer = bytes.buffer === this.#readBuffer?.buffer;
      const queued = this.#client.writableLength > 0;
      if (!this.#client.write(queued && fromReadBuffer ? Buffer.from(bytes) : bytes)) this.#upstream.pause();
      // The kernel did not take it all at once: Node holds the buffer until it has.
      if (fromReadBuffer && !queued && this.#client.writableLength > 0) this.#readBufferHeld = true;
    });
    const interceptor = options.interceptor;
    this.#claimed = interceptor && new ClaimedCommands(interceptor, this.#claimHost());
    this.#framer = new ClientStreamFramer({
      sink: this.#clientSink(),
      maxMessageSize: options.maxMessageSize,
      holds: interceptor && watchingAuthentication(holdsWhole(interceptor), () => void this.#authGeneration++),
    });

    this.#client.setNoDelay(true);
    this.#stall =
      options.partialMessageTimeoutMS > 0
        ? new PartialMessageTimeout(
            this.#client,
            options.partialMessageTimeoutMS,
            () => this.#framer.midMessage && this.#clientPaused.size === 0 && !this.#closing,
            (ms) => this.#fail('client stalled in the middle of a message', new Error(`no byte for ${ms} ms in the middle of a message`)),
          )
        : undefined;
    const upstream = connectUpstream(options.upstream, options.upstreamTls, {
      // mongod's bytes are read into a buffer of ours, reused while no write holds it.
      buffer: () => this.#upstreamReadBuffer(),
      callback: (length, buffer) => this.#onUpstreamRead(length, buffer),
    });
    this.#upstream = upstream.socket;
    // Until connected (and, over TLS, the handshake done), a silent upstream would otherwise
    // hold the client for the OS's connect timeout (minutes); once connected, idle is
    // normal (exhaust streams, pools).
    this.#upstream.setTimeout(options.upstreamConnectTimeoutMS, () =>
      this.#fail('upstream connect timed out', new Error(`no connection after ${options.upstreamConnectTimeoutMS} ms`)),
    );
    this.#upstream.once(upstream.ready, () => this.#upstream.setTimeout(0));

    // Every handler is guarded: nothing it throws may reach the process.
    this.#client.on('data', (chunk: Buffer) => {
      try {
        if (!this.#closing) this.#framer.push(chunk);
      } catch (err) {
        this.#fail('client data failed', err);
      }
    });
    this.#upstream.on('drain', () => this.#resumeClient('upstream-full'));
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

  /** One read from mongod, into the buffer #upstreamReadBuffer gave (always a Buffer). */
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

  /**
   * The buffer mongod's next read goes into: the last one again, unless a write to the
   * client still holds it, then a new one. Node keeps a written Buffer only for a write
   * the kernel did not take at once (lib/internal/stream_base_commons.js, handleWriteReq:
   * `req.buffer = data` when the write went async), and such a write keeps the socket's
   * writableLength above 0 until it completes (lib/internal/streams/writable.js, onwrite).
   * So mongod's bytes cost no allocation per read while the client keeps up.
   */
  #upstreamReadBuffer(): Buffer {
    if (this.#readBuffer === undefined || this.#readBufferHeld || this.#client.destroyed) {
      this.#readBuffer = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);
      this.#readBufferHeld = false;
    }
    return this.#readBuffer;
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
    const item = inspectClientMessage(received, this.#options.interceptor, this.#log);
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
    if (item.kind === 'frame') {
      this.#queuedBytes += item.frame.length;
      if (this.#queuedBytes > QUEUE_HIGH_WATER) this.#pauseClient('queue-full');
    }
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
    this.#countForwarded(frame.readInt32LE(4), this.#requests !== undefined && expectsReply(frame, peeked));
    this.#writeUpstream(frame);
  }

  /** One more client message for mongod; one it will answer is awaited (reply_order.ts). */
  #countForwarded(requestID: number, expectsReply: boolean): void {
    this.#options.stats.forwarded++;
    if (expectsReply) this.#requests?.forwarded(requestID);
  }

  #writeUpstream(bytes: Buffer): void {
    if (!this.#upstream.write(bytes)) this.#pauseClient('upstream-full');
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
        this.#queuedBytes -= item.frame.length;
        if (this.#queuedBytes <= QUEUE_HIGH_WATER) this.#resumeClient('queue-full');
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

  #pauseClient(reason: 'upstream-full' | 'queue-full'): void {
    this.#clientPaused.add(reason);
    this.#client.pause();
  }

  #resumeClient(reason: 'upstream-full' | 'queue-full'): void {
    if (!this.#clientPaused.delete(reason) || this.#clientPaused.size > 0 || this.#closed || this.#closing) return;
    this.#client.resume();
    this.#stall?.rearm();
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
      this.#queuedBytes = 0;
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
