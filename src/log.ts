/**
 * Structured logging: JSON lines (pino) for machines, a human format for terminals.
 * `format: 'auto'` picks the human format only when stdout is a TTY.
 */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };
export type LogFormat = 'json' | 'pretty' | 'auto';

export interface LoggerOptions {
  name: string;
  format?: LogFormat;
  level?: string;
  /** Where log lines go; defaults to stdout. Tests pass a stream to capture them. */
  destination?: NodeJS.WritableStream;
}

function usesPretty(format: LogFormat, destination: NodeJS.WritableStream): boolean {
  return format === 'pretty' || (format === 'auto' && (destination as { isTTY?: boolean }).isTTY === true);
}

export function createLogger(options: LoggerOptions): Logger {
  const format = options.format ?? 'auto';
  const destination = options.destination ?? process.stdout;
  const usePretty = usesPretty(format, destination);
  const base = { name: options.name, level: options.level ?? process.env['LOG_LEVEL'] ?? 'info' };
  if (usePretty) {
    // pino-pretty as a synchronous stream, not a worker transport: one process, ordered output.
    return pino(base, pretty({ destination: destination as NodeJS.WritableStream & { fd?: number }, colorize: true, sync: true }));
  }
  return pino(base, options.destination ?? pino.destination({ dest: 1, sync: true }));
}

/**
 * Writes another process's JSON log lines (pino's, as `--log-format json` prints them)
 * into this process's log stream, as a logger made with the same options would show
 * them: verbatim in JSON, so each line keeps its own time, pid and name; through the
 * same human formatter otherwise. Each call is one whole line.
 */
export function createLogRelay(options: Omit<LoggerOptions, 'name' | 'level'>): (line: string) => void {
  const destination = options.destination ?? process.stdout;
  if (!usesPretty(options.format ?? 'auto', destination)) return (line) => void destination.write(`${line}\n`);
  const formatter = pretty({ destination: destination as NodeJS.WritableStream & { fd?: number }, colorize: true, sync: true });
  return (line) => void formatter.write(`${line}\n`);
}
