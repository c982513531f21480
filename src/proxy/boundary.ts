/**
 * Follows message boundaries in a byte stream the proxy forwards without framing it.
 *
 * Upstream-to-client bytes are written on as they arrive, chunk by chunk, with no
 * copies. But the proxy sometimes has a reply of its own to send to the same client,
 * and it must not land inside a message mongod is still sending (an exhaust stream such
 * as the driver's awaitable hello flows while the client is idle). So this tracker reads
 * only each message's 4-byte length prefix, possibly split across chunks, and skips the
 * rest by counting: it knows at every byte whether the stream is between two messages.
 */
import { ErrorCodes, MongoServerError } from '../errors.js';
import { HEADER_SIZE, MAX_MESSAGE_SIZE } from '../wire/constants.js';

const PREFIX_SIZE = 4;

export class MessageBoundaryTracker {
  readonly #maxMessageSize: number;
  /** Bytes of the current message still to come after its length prefix. */
  #remaining = 0;
  /** Bytes of the next length prefix seen so far, when it arrived split across chunks. */
  #prefixBytes = 0;
  /** The little-endian prefix assembled so far (valid for #prefixBytes bytes). */
  #prefix = 0;
  /** After a bad length the stream cannot be followed any more; every later call rethrows. */
  #failure: MongoServerError | undefined;
  #messages = 0;

  constructor(maxMessageSize: number = MAX_MESSAGE_SIZE) {
    this.#maxMessageSize = maxMessageSize;
  }

  /** True between two whole messages (and before the first one). */
  get atBoundary(): boolean {
    return this.#remaining === 0 && this.#prefixBytes === 0;
  }

  /** How many messages have been seen to completion. */
  get messages(): number {
    return this.#messages;
  }

  /** Consumes a whole chunk. Throws a ProtocolError on an impossible messageLength. */
  push(chunk: Buffer): void {
    this.#check();
    let offset = 0;
    while (offset < chunk.length) offset = this.#step(chunk, offset);
  }

  /**
   * Consumes `chunk` from `start` up to the first message boundary and returns its
   * offset: `start` itself when already between messages, `chunk.length` when the
   * chunk ends mid-message (then `atBoundary` stays false). Bytes past the returned
   * offset are not consumed; pass them to `push` once the caller has used the gap.
   */
  advanceToBoundary(chunk: Buffer, start = 0): number {
    this.#check();
    let offset = start;
    while (!this.atBoundary && offset < chunk.length) offset = this.#step(chunk, offset);
    return offset;
  }

  /** Consumes one run of bytes at `offset` and returns where the next run starts. */
  #step(chunk: Buffer, offset: number): number {
    if (this.#remaining > 0) {
      // The hot path: skip the body of the current message without looking at it.
      const n = Math.min(this.#remaining, chunk.length - offset);
      this.#remaining -= n;
      if (this.#remaining === 0) this.#messages++;
      return offset + n;
    }
    if (this.#prefixBytes === 0 && chunk.length - offset >= PREFIX_SIZE) {
      this.#begin(chunk.readInt32LE(offset));
      return offset + PREFIX_SIZE;
    }
    // The length prefix straddles chunks: gather it a byte at a time.
    this.#prefix += (chunk[offset] as number) * 2 ** (8 * this.#prefixBytes);
    this.#prefixBytes++;
    if (this.#prefixBytes === PREFIX_SIZE) {
      const length = this.#prefix | 0;
      this.#prefixBytes = 0;
      this.#prefix = 0;
      this.#begin(length);
    }
    return offset + 1;
  }

  #begin(length: number): void {
    if (length < HEADER_SIZE || length > this.#maxMessageSize) {
      this.#failure = new MongoServerError(
        ErrorCodes.ProtocolError,
        `recv(): message msgLen ${length} is invalid. Min ${HEADER_SIZE} Max: ${this.#maxMessageSize}`,
      );
      throw this.#failure;
    }
    this.#remaining = length - PREFIX_SIZE;
  }

  #check(): void {
    if (this.#failure) throw this.#failure;
  }
}
