/**
 * How a long-running subcommand stops: the first SIGINT or SIGTERM starts the cleanup
 * (a running backup releases its cursor or fsync lock, sockets close), and the process
 * exits when the cleanup is done or after a bounded wait, whatever handles are still
 * open. A second signal exits at once. Nothing left behind (a watchdog child, a stuck
 * upstream socket) can keep the process alive after the operator asked it to stop.
 */
import type { Logger } from '../log.js';

/** The exit codes a shell reports for a process killed by the signal (128 + number). */
const SIGNAL_EXIT_CODE: Readonly<Record<string, number>> = { SIGINT: 130, SIGTERM: 143 };

export const DEFAULT_SHUTDOWN_TIMEOUT_SECS = 20;

/**
 * Resolves on the first SIGINT or SIGTERM. From then on the handlers stay installed,
 * so that a second signal exits at once instead of waiting for the cleanup.
 */
export function untilSignal(log: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received: NodeJS.Signals | undefined;
    const onSignal = (signal: NodeJS.Signals) => {
      if (received === undefined) {
        received = signal;
        log.info({ signal }, 'signal received: shutting down');
        resolve(signal);
        return;
      }
      log.warn({ signal }, 'second signal: exiting now, without waiting for the cleanup');
      process.exit(SIGNAL_EXIT_CODE[signal] ?? 1);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

export interface ShutdownOptions {
  /** The cleanup: close the engine, the proxy, the dev server. */
  cleanup: () => Promise<void>;
  /** How long the cleanup may take before the process exits anyway. */
  timeoutSecs: number;
  /** What was still running, logged when the wait runs out. */
  describeLeft: () => Record<string, unknown>;
  log: Logger;
  /** The exit code after a clean cleanup: 1 when what started the shutdown was itself a failure. Default 0. */
  exitCode?: number;
}

/**
 * Runs the cleanup, waiting at most `timeoutSecs`, then exits: `exitCode` (0) after a
 * clean stop, 1 when the cleanup failed or did not finish in time.
 */
export async function shutDownAndExit(options: ShutdownOptions): Promise<never> {
  const { log } = options;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), options.timeoutSecs * 1000);
  });
  let code = options.exitCode ?? 0;
  try {
    const outcome = await Promise.race([options.cleanup().then(() => 'done' as const), timedOut]);
    if (outcome === 'timeout') {
      code = 1;
      log.error({ timeoutSecs: options.timeoutSecs, left: options.describeLeft() }, 'shutdown did not finish in time; exiting anyway');
    } else {
      log.info('shutdown complete');
    }
  } catch (err) {
    code = 1;
    log.error({ err: String(err), left: options.describeLeft() }, 'shutdown failed; exiting anyway');
  } finally {
    clearTimeout(timer);
  }
  process.exit(code);
}
