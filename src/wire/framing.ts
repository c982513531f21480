/**
 * Cuts a TCP byte stream into whole wire messages by their messageLength prefix. It
 * knows nothing of opcodes: giving frames meaning is the decoders' job.
 *
 * Chunks are kept in a list with a running byte count and concatenated once, when a
 * message is complete, so a 48 MB message arriving in 64 KiB pieces costs one copy
 * rather than one per piece. The dev server and the tests' clients use it: they need
 * whole messages. The proxy does not assemble the messages it forwards unchanged; it
 * streams them (src/proxy/client_stream.ts) and shares only the length check.
 */
import { ErrorCodes, CommandError } from '../errors.js';
import { HEADER_SIZE, MAX_MESSAGE_SIZE } from './constants.js';

export interface MessageFramerOptions {
  /** Largest messageLength accepted; defaults to mongod's 48,000,000. */
  maxMessageSize?: number;
}

/**
 * The ProtocolError for a messageLength below a header or above `maxMessageSize`, in
 * mongod's own wording for the same condition; undefined for a length that is fine.
 */
export function messageLengthError(length: number, maxMessageSize: number): CommandError | undefined {
  if (length >= HEADER_SIZE && length <= maxMessageSize) return undefined;
  return new CommandError(ErrorCodes.ProtocolError, `recv(): message msgLen ${length} is invalid. Min ${HEADER_SIZE} Max: ${maxMessageSize}`);
}

export class MessageFramer {
  readonly #maxMessageSize: number;
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** messageLength of the message being assembled, once its first 4 bytes are in. */
  #expected = -1;
  /** After a bad length the stream has lost sync for good; every later push rethrows. */
  #failure: CommandError | undefined;

  constructor(options: MessageFramerOptions = {}) {
    this.#maxMessageSize = options.maxMessageSize ?? MAX_MESSAGE_SIZE;
  }

  /** Bytes received but not yet returned as part of a frame. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** The bad length that stopped this stream, once one was met. */
  get failure(): CommandError | undefined {
    return this.#failure;
  }

  /**
   * Adds a chunk and returns every message completed so far, in order, each a Buffer
   * holding exactly one message including its header. On an impossible messageLength
   * there is no way to find the next message boundary, so the caller must close the
   * connection: the whole messages before it are still returned (check `failure`), and
   * a push that has none to return throws a ProtocolError CommandError.
   */
  push(chunk: Buffer): Buffer[] {
    if (this.#failure) throw this.#failure;
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    const frames: Buffer[] = [];
    for (;;) {
      if (this.#expected < 0) {
        if (this.#buffered < 4) break;
        try {
          this.#expected = this.#checkLength(this.#peekLength());
        } catch (err) {
          if (frames.length > 0) break;
          throw err;
        }
      }
      if (this.#buffered < this.#expected) break;
      frames.push(this.#take(this.#expected));
      this.#expected = -1;
    }
    return frames;
  }

  #checkLength(length: number): number {
    const failure = messageLengthError(length, this.#maxMessageSize);
    if (failure === undefined) return length;
    this.#failure = failure;
    this.#chunks = [];
    this.#buffered = 0;
    throw this.#failure;
  }

  /** The little-endian int32 at the start of the buffered bytes, which may span chunks. */
  #peekLength(): number {
    const first = this.#chunks[0] as Buffer;
    if (first.length >= 4) return first.readInt32LE(0);
    const bytes = Buffer.alloc(4);
    let filled = 0;
    for (const chunk of this.#chunks) {
      filled += chunk.copy(bytes, filled, 0, Math.min(chunk.length, 4 - filled));
      if (filled === 4) break;
    }
    return bytes.readInt32LE(0);
  }

  /** Removes and returns the first `length` buffered bytes, copying only when they span chunks. */
  #take(length: number): Buffer {
    const first = this.#chunks[0] as Buffer;
    let frame: Buffer;
    if (first.length >= length) {
      frame = first.subarray(0, length);
      if (first.length === length) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(length);
    } else {
      frame = Buffer.allocUnsafe(length);
      let filled = 0;
      let used = 0;
      while (filled < length) {
        const chunk = this.#chunks[used] as Buffer;
        const n = Math.min(chunk.length, length - filled);
        chunk.copy(frame, filled, 0, n);
        filled += n;
        if (n === chunk.length) used++;
        else this.#chunks[used] = chunk.subarray(n);
      }
      // One splice per frame, not one shift per chunk, keeps this linear.
      this.#chunks.splice(0, used);
    }
    this.#buffered -= length;
    return frame;
  }
}
