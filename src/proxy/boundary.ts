/**
 * Follows message boundaries in a byte stream the proxy forwards without framing it.
 *
 * Upstream-to-client bytes are written on as they arrive, chunk by chunk, with no
 * copies. But the proxy sometimes has a reply of its own to send to the same client,
 * and it must not land inside a message mongod is still sending (an exhaust stream such
 * as the driver's awaitable hello flows while the client is idle). So this tracker reads
 * only the first 12 bytes of each message's header (messageLength, requestID,
 * responseTo), possibly split across chunks, and skips the rest by counting: it knows at
 * every byte whether the stream is between two messages, and it tells a listener which
 * request each message answers (so the proxy can keep its replies in mongod's order).
 */
import { ErrorCodes, MongoServerError } from '../errors.js';
import { HEADER_SIZE, MAX_MESSAGE_SIZE } from '../wire/constants.js';

/** messageLength, requestID, responseTo: all the tracker reads of a message. */
const TRACKED_HEADER_SIZE = 12;
const RESPONSE_TO_OFFSET = 8;

/** Told of each message as soon as its responseTo is known (before its body has passed). */
export type MessageListener = (responseTo: number) => void;

export class MessageBoundaryTracker {
  readonly #maxMessageSize: number;
  readonly #onMessage: MessageListener | undefined;
  /** Bytes of the current message still to come after its tracked header. */
  #remaining = 0;
  /** Bytes of the next header seen so far, when it arrived split across chunks. */
  #headerBytes = 0;
  /** The split header assembled so far (valid for #headerBytes bytes). */
  readonly #header = Buffer.alloc(TRACKED_HEADER_SIZE);
  /** After a bad length the stream cannot be followed any more; every later call rethrows. */
  #failure: MongoServerError | undefined;

  constructor(maxMessageSize: number = MAX_MESSAGE_SIZE, onMessage?: MessageListener) {
    this.#maxMessageSize = maxMessageSize;
    this.#onMessage = onMessage;
  }

  /** True between two whole messages (and before the first one). */
  get atBoundary(): boolean {
    return this.#remaining === 0 && this.#headerBytes === 0;
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
      return offset + n;
    }
    if (this.#headerBytes === 0 && chunk.length - offset >= TRACKED_HEADER_SIZE) {
      this.#begin(chunk.readInt32LE(offset), chunk.readInt32LE(offset + RESPONSE_TO_OFFSET));
      return offset + TRACKED_HEADER_SIZE;
    }
    // The header straddles chunks: gather its 12 bytes (a copy of at most 12 bytes).
    const n = Math.min(TRACKED_HEADER_SIZE - this.#headerBytes, chunk.length - offset);
    chunk.copy(this.#header, this.#headerBytes, offset, offset + n);
    this.#headerBytes += n;
    // A bad length is refused as soon as its 4 bytes are in, not a header later.
    if (this.#headerBytes >= 4) this.#checkLength(this.#header.readInt32LE(0));
    if (this.#headerBytes === TRACKED_HEADER_SIZE) {
      this.#headerBytes = 0;
      this.#begin(this.#header.readInt32LE(0), this.#header.readInt32LE(RESPONSE_TO_OFFSET));
    }
    return offset + n;
  }

  #begin(length: number, responseTo: number): void {
    this.#checkLength(length);
    this.#remaining = length - TRACKED_HEADER_SIZE;
    this.#onMessage?.(responseTo);
  }

  #checkLength(length: number): void {
    if (length < HEADER_SIZE || length > this.#maxMessageSize) {
      this.#failure = new MongoServerError(
        ErrorCodes.ProtocolError,
        `recv(): message msgLen ${length} is invalid. Min ${HEADER_SIZE} Max: ${this.#maxMessageSize}`,
      );
      throw this.#failure;
    }
  }

  #check(): void {
    if (this.#failure) throw this.#failure;
  }
}
