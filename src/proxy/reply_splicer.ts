/**
 * mongod to client: passes mongod's bytes on to the client as they arrive (no framing, no
 * copies) and splices the proxy's own replies in between two of mongod's messages,
 * never inside one. The boundary tracker (boundary.ts) says where messages end.
 */
import type { MessageBoundaryTracker } from './boundary.js';

export class ReplySplicer {
  readonly #tracker: MessageBoundaryTracker;
  readonly #write: (bytes: Buffer) => void;
  /** Our replies waiting for the upstream message in flight to end. */
  #pending: Buffer[] = [];
  /** Woken when our pending replies are written and upstream is between messages. */
  #flushed: (() => void) | undefined;

  /** `write` sends bytes to the client (and applies backpressure to mongod). */
  constructor(tracker: MessageBoundaryTracker, write: (bytes: Buffer) => void) {
    this.#tracker = tracker;
    this.#write = write;
  }

  /** Writes a reply of ours now if the upstream stream is between messages, else holds it. */
  inject(reply: Buffer): void {
    if (this.#pending.length === 0 && this.#tracker.atBoundary) this.#write(reply);
    else this.#pending.push(reply);
  }

  /** Passes on one read from mongod, with any reply of ours that was waiting for its boundary. */
  push(chunk: Buffer): void {
    let rest = chunk;
    if (this.#pending.length > 0) {
      // A reply of ours waits: pass on the message in flight, then slip it in.
      const cut = this.#tracker.advanceToBoundary(chunk);
      if (cut > 0) this.#write(cut === chunk.length ? chunk : chunk.subarray(0, cut));
      if (!this.#tracker.atBoundary) return;
      for (const reply of this.#pending) this.#write(reply);
      this.#pending = [];
      rest = chunk.subarray(cut);
    }
    if (rest.length > 0) {
      this.#tracker.push(rest);
      this.#write(rest);
    }
    if (this.#flushed !== undefined && this.#pending.length === 0 && this.#tracker.atBoundary) this.#wake();
  }

  /**
   * Resolves once our replies are written and mongod's stream is between messages (the
   * last answer's header may be in, not the rest of it); undefined when that is so now.
   * Released early by `close()`.
   */
  flushed(): Promise<void> | undefined {
    if (this.#pending.length === 0 && this.#tracker.atBoundary) return undefined;
    return new Promise<void>((wake) => (this.#flushed = wake));
  }

  /** The connection is closing: drop what waits, release a waiter. */
  close(): void {
    this.#pending = [];
    this.#wake();
  }

  #wake(): void {
    const wake = this.#flushed;
    this.#flushed = undefined;
    wake?.();
  }
}
