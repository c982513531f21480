/**
 * Follows message boundaries in a byte stream the proxy forwards without framing it.
 *
 * Upstream-to-client bytes are written on as they arrive, chunk by chunk, with no
 * copies. But the proxy sometimes has a reply of its own to send to the same client,
 * and it must not land inside a message mongod is still sending (an exhaust stream such
 * as the driver's awaitable hello flows while the client is idle). So this tracker reads
 * only the first 20 bytes of each message (messageLength, responseTo, opCode and an
 * OP_MSG's flagBits), possibly split across chunks, and skips the rest by
 * counting: it knows at every byte whether the stream is between two messages, and it
 * tells a listener which request each message answers and whether more follow unasked
 * (so the proxy can keep its replies in mongod's order).
 */
import type { CommandError } from '../errors.js';
import { messageLengthError } from '../wire/framing.js';
import { HEADER_SIZE, MAX_MESSAGE_SIZE, OpCode, OpMsgFlag } from '../wire/constants.js';

/** The 16-byte header and an OP_MSG's flagBits: all the tracker reads of a message. */
const TRACKED_HEADER_SIZE = HEADER_SIZE + 4;

/**
 * Told of each message as soon as its header is in (before its body has passed).
 * `moreToCome` is an OP_MSG's flag (false for other opcodes), or undefined for an
 * OP_COMPRESSED, whose flags are inside its compressed body.
 */
export type MessageListener = (responseTo: number, moreToCome: boolean | undefined) => void;

export class MessageBoundaryTracker {
  readonly #maxMessageSize: number;
  readonly #onMessage: MessageListener | undefined;
  /** Bytes of the current message still to come after its tracked header. */
  #remaining = 0;
  /** Bytes of the next header seen so far, when it arrived split across chunks. */
  #headerBytes = 0;
  /** How much of the split header to gather: its length prefix, then up to 20 bytes. */
  #headerWanted = 4;
  /** The split header assembled so far (valid for #headerBytes bytes). */
  readonly #header = Buffer.alloc(TRACKED_HEADER_SIZE);
  /** After a bad length the stream cannot be followed any more; every later call rethrows. */
  #failure: CommandError | undefined;
  #moreToCome = false;

  constructor(maxMessageSize: number = MAX_MESSAGE_SIZE, onMessage?: MessageListener) {
    this.#maxMessageSize = maxMessageSize;
    this.#onMessage = onMessage;
  }

  /**
   * Whether the last message whose header is in was an OP_MSG flagged moreToCome: the
   * message after it is then the rest of an exhaust stream, not the answer to a request.
   * False for a compressed one (its flags are inside the compressed body), as in
   * ForwardedRequests.
   */
  get lastMoreToCome(): boolean {
    return this.#moreToCome;
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
      const length = chunk.readInt32LE(offset);
      this.#checkLength(length);
      // A message may be shorter than 20 bytes (16 at least): track only its own bytes.
      const tracked = Math.min(length, TRACKED_HEADER_SIZE);
      this.#begin(chunk, offset, length, tracked);
      return offset + tracked;
    }
    // The header straddles chunks: gather it (a copy of at most 20 bytes), its length
    // prefix first, which says how much of the rest is header.
    const n = Math.min(this.#headerWanted - this.#headerBytes, chunk.length - offset);
    chunk.copy(this.#header, this.#headerBytes, offset, offset + n);
    this.#headerBytes += n;
    if (this.#headerBytes === 4 && this.#headerWanted === 4) {
      // A bad length is refused as soon as its 4 bytes are in, not a header later.
      const length = this.#header.readInt32LE(0);
      this.#checkLength(length);
      this.#headerWanted = Math.min(length, TRACKED_HEADER_SIZE);
    } else if (this.#headerBytes === this.#headerWanted) {
      this.#headerBytes = 0;
      this.#headerWanted = 4;
      const length = this.#header.readInt32LE(0);
      this.#begin(this.#header, 0, length, Math.min(length, TRACKED_HEADER_SIZE));
    }
    return offset + n;
  }

  /** A message's header is in (`tracked` bytes of it at `at`); its body is to be skipped. */
  #begin(bytes: Buffer, at: number, length: number, tracked: number): void {
    this.#remaining = length - tracked;
    const opCode = bytes.readInt32LE(at + 12);
    let moreToCome: boolean | undefined = false;
    if (opCode === OpCode.Compressed) moreToCome = undefined;
    else if (opCode === OpCode.Msg && tracked === TRACKED_HEADER_SIZE) {
      moreToCome = (bytes.readUInt32LE(at + HEADER_SIZE) & OpMsgFlag.MoreToCome) !== 0;
    }
    this.#moreToCome = moreToCome === true;
    this.#onMessage?.(bytes.readInt32LE(at + 8), moreToCome);
  }

  #checkLength(length: number): void {
    const failure = messageLengthError(length, this.#maxMessageSize);
    if (failure === undefined) return;
    this.#failure = failure;
    throw failure;
  }

  #check(): void {
    if (this.#failure) throw this.#failure;
  }
}
