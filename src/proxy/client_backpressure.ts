/**
 * When a client is no longer read (proxy_connection.ts): while mongod's socket has more
 * than it will take ('drain' follows), and while the messages waiting behind a claimed
 * command pass a high-water mark. Reading resumes only when neither holds.
 */
import type net from 'node:net';

/**
 * Frames queued behind a claimed command are held up to this many bytes before the
 * client is no longer read; one whole message may overshoot it. Reading on below it
 * keeps a client's disconnect visible while a long command (backupStart) runs.
 */
const QUEUE_HIGH_WATER = 1024 * 1024;

type PauseReason = 'upstream-full' | 'queue-full';

export class ClientBackpressure {
  readonly #reasons = new Set<PauseReason>();
  #queuedBytes = 0;

  /**
   * `mayResume` says whether the client may be read again at all (not once it is closing);
   * `resumed` is called after it is.
   */
  constructor(
    private readonly client: net.Socket,
    private readonly mayResume: () => boolean,
    private readonly resumed: () => void,
  ) {}

  /** Whether reads are paused for backpressure (a pause for closing is not counted). */
  get paused(): boolean {
    return this.#reasons.size > 0;
  }

  upstreamFull(): void {
    this.#pause('upstream-full');
  }

  upstreamDrained(): void {
    this.#resume('upstream-full');
  }

  /** A frame of `bytes` joined the queue. */
  queued(bytes: number): void {
    this.#queuedBytes += bytes;
    if (this.#queuedBytes > QUEUE_HIGH_WATER) this.#pause('queue-full');
  }

  /** A frame of `bytes` left the queue. */
  dequeued(bytes: number): void {
    this.#queuedBytes -= bytes;
    if (this.#queuedBytes <= QUEUE_HIGH_WATER) this.#resume('queue-full');
  }

  /** The queue was emptied without being worked through. */
  queueDropped(): void {
    this.#queuedBytes = 0;
  }

  #pause(reason: PauseReason): void {
    this.#reasons.add(reason);
    this.client.pause();
  }

  #resume(reason: PauseReason): void {
    if (!this.#reasons.delete(reason) || this.#reasons.size > 0 || !this.mayResume()) return;
    this.client.resume();
    this.resumed();
  }
}
