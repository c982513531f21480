/**
 * The buffers one copy thread reads parts into, reused across parts and files: at most
 * `limit` of them, each as large as the largest part asked for so far. So a thread holds
 * at most limit × (largest part size) bytes, whatever the number and size of the files:
 * files go out largest first (copy_pool.ts), so the first part size is the largest and
 * no buffer is ever replaced in a typical run.
 *
 * A buffer is lent until the request that sends it has settled, retries included (the
 * SDK resends the same bytes), and only then read into again.
 */
export class PartBuffers {
  readonly #free: Buffer[] = [];
  readonly #waiters: Array<() => void> = [];
  #count = 0;
  #bytes = 0;
  #peak = 0;

  constructor(readonly limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`the number of part buffers must be a positive integer, got ${limit}`);
  }

  /** Bytes of the buffers held now, lent or free. */
  get allocatedBytes(): number {
    return this.#bytes;
  }

  /** The most bytes ever held at once. */
  get peakBytes(): number {
    return this.#peak;
  }

  /** Buffers lent and not yet given back. */
  get lent(): number {
    return this.#count - this.#free.length;
  }

  /** A buffer of at least `size` bytes; waits while `limit` buffers are lent. */
  async acquire(size: number): Promise<Buffer> {
    for (;;) {
      const fit = this.#free.findIndex((buffer) => buffer.length >= size);
      if (fit !== -1) return this.#free.splice(fit, 1)[0] as Buffer;
      if (this.#free.length > 0) {
        // Too small for this part: dropped, so that the count (and the bound) holds.
        const dropped = this.#free.pop() as Buffer;
        this.#count -= 1;
        this.#bytes -= dropped.length;
      }
      if (this.#count < this.limit) {
        // Outside Node's shared pool: a part buffer lives as long as the thread.
        const buffer = Buffer.allocUnsafeSlow(size);
        this.#count += 1;
        this.#bytes += size;
        this.#peak = Math.max(this.#peak, this.#bytes);
        return buffer;
      }
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Gives a buffer back, once nothing will read it any more. */
  release(buffer: Buffer): void {
    this.#free.push(buffer);
    this.#waiters.shift()?.();
  }
}
