/**
 * Where mongod's bytes are read into and how they are written on to the client, without
 * an allocation or a copy per read while the client keeps up (proxy_connection.ts).
 *
 * mongod's reads go into one buffer of ours, reused while no write to the client holds
 * it. Node keeps a written Buffer only for a write the kernel did not take at once
 * (lib/internal/stream_base_commons.js, handleWriteReq: `req.buffer = data` when the
 * write went async), and such a write keeps the socket's writableLength above 0 until it
 * completes (lib/internal/streams/writable.js, onwrite): then the next read needs a new
 * buffer.
 */
import type net from 'node:net';

/** As much as Node reads from a socket at once by default. */
const READ_BUFFER_SIZE = 64 * 1024;

export class UpstreamReadBuffer {
  #buffer: Buffer | undefined;
  /** A write to the client still holds #buffer: the next read needs a new one. */
  #held = false;

  /** `full` is called when the client's socket asks the writer to wait ('drain' follows). */
  constructor(
    private readonly client: net.Socket,
    private readonly full: () => void,
  ) {}

  /** The buffer mongod's next read goes into: the last one again, unless a write to the client still holds it. */
  next(): Buffer {
    if (this.#buffer === undefined || this.#held || this.client.destroyed) {
      this.#buffer = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);
      this.#held = false;
    }
    return this.#buffer;
  }

  /** Writes bytes (a part of the read buffer, or a reply of ours) to the client. */
  write(bytes: Buffer): void {
    // Behind an unfinished write, these bytes wait in the socket's queue: a part of the
    // shared read buffer would pin a fresh 64 KiB buffer per read for a slow client
    // (a stalled change stream). An exact copy pins only its own bytes.
    const fromReadBuffer = bytes.buffer === this.#buffer?.buffer;
    const queued = this.client.writableLength > 0;
    if (!this.client.write(queued && fromReadBuffer ? Buffer.from(bytes) : bytes)) this.full();
    // The kernel did not take it all at once: Node holds the buffer until it has.
    if (fromReadBuffer && !queued && this.client.writableLength > 0) this.#held = true;
  }
}
