/**
 * `work`'s result, or `signal`'s reason as soon as it aborts (or at once, if it has). The
 * work runs on, and its outcome is still observed here (no unhandled rejection): a caller
 * that gave up on something mongod may still do (a checkpoint, a lock) keeps `work` to
 * settle it later.
 */
export function unlessAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return work;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
