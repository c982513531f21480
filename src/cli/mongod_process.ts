/**
 * A real mongod (`restore --mongod PATH`) started on a restored dbpath as a standalone, as
 * Percona Backup for MongoDB's physical restore starts it (pbm/restore/physical.go,
 * `startMongo` and `tryConn`): `--dbpath`, a port of its own on 127.0.0.1, the
 * `--setParameter`s asked for; then polled with `hello` until it answers, and stopped with
 * `{shutdown: 1}` (mongod closes the connection instead of replying), waiting for the
 * process to exit. mongod cannot be told port 0, so a free port is found here first, and
 * what answers there must prove to be our child (src/cli/server_identity.ts).
 *
 * Everything it prints goes to a log file beside the dbpath (appended: one file for both
 * starts of a restore); its last lines go into any error. It never outlives a failure:
 * SIGTERM (mongod's clean shutdown), SIGKILL after a grace period, and SIGKILL when this
 * process exits while it still runs.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import readline from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { MongoClient, MongoNetworkError } from 'mongodb';
import { whenAborted, type ReplayServer } from './replay_server.js';
import { serverIdentityRefusal } from './server_identity.js';

const LOG_TAIL_LINES = 15;
const POLL_INTERVAL_MS = 250;

export interface MongodOptions {
  /** The mongod binary. */
  binary: string;
  dbpath: string;
  /** Each passed as `--setParameter NAME=VALUE`. */
  setParameters: readonly string[];
  /** Where its stdout and stderr go (appended). */
  logFile: string;
  /** How long it may take to answer `hello`: its startup recovery comes first. */
  startTimeoutMs: number;
  /** How long it may take to exit after `{shutdown: 1}`, and again after SIGTERM. */
  stopGraceMs: number;
  /** Aborting it while mongod starts stops mongod (SIGTERM, SIGKILL after stopGraceMs); startMongod then rejects with its reason. */
  signal?: AbortSignal;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

/** A port nothing listens on now; mongod binds it a moment later (a start that loses the race fails with its log). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function describeExit(exit: Exit): string {
  if (exit.error !== undefined) return `could not be run (${exit.error.message})`;
  return exit.signal === null ? `exited with code ${exit.code}` : `was ended by ${exit.signal}`;
}

export async function startMongod(options: MongodOptions): Promise<ReplayServer> {
  const port = await freePort();
  const name = `mongod ${options.binary}`;
  const args = ['--dbpath', options.dbpath, '--port', String(port), '--bind_ip', '127.0.0.1', ...options.setParameters.flatMap((p) => ['--setParameter', p])];
  const logStream = fs.createWriteStream(options.logFile, { flags: 'a' });
  logStream.on('error', () => undefined);
  logStream.write(`--- hotbackup restore: ${options.binary} ${args.join(' ')}\n`);
  const child = spawn(options.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const tail: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    stream.pipe(logStream, { end: false });
    readline.createInterface({ input: stream }).on('line', (line) => {
      tail.push(line.length > 1000 ? `${line.slice(0, 1000)}…` : line);
      if (tail.length > LOG_TAIL_LINES) tail.shift();
    });
  }
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  // 'close' once its output is read to the end; 'error' alone when it could not be spawned.
  const exited = new Promise<Exit>((resolve) => {
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal }));
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
  }).then((exit) => {
    process.off('exit', killOnExit);
    logStream.end();
    return exit;
  });
  let exit: Exit | undefined;
  void exited.then((value) => (exit = value));
  const logTail = () => (tail.length === 0 ? `nothing in ${options.logFile}` : `its log (${options.logFile}) ends:\n${tail.join('\n')}`);

  const waitForExit = async (ms: number): Promise<Exit | undefined> => {
    const timer = new AbortController();
    try {
      return await Promise.race([exited, delay(ms, undefined, { signal: timer.signal }).catch(() => undefined)]);
    } finally {
      timer.abort();
    }
  };
  const kill = async (): Promise<void> => {
    if (exit !== undefined) return;
    child.kill('SIGTERM');
    if ((await waitForExit(options.stopGraceMs)) !== undefined) return;
    child.kill('SIGKILL');
    await exited;
  };

  const uri = `mongodb://127.0.0.1:${port}/?directConnection=true`;
  try {
    await waitForHello(uri, () => exit, options.startTimeoutMs, exited, options.signal);
  } catch (err) {
    await kill();
    if (options.signal?.aborted === true) throw options.signal.reason as Error;
    if (exit !== undefined && !(err instanceof HelloTimeout)) throw new Error(`${name} ${describeExit(exit)} before answering on 127.0.0.1:${port}; ${logTail()}`);
    throw new Error(`${name} ${(err as Error).message}; it was stopped; ${logTail()}`);
  }
  // Another server may have taken the port between freePort and mongod's bind (after its
  // startup recovery): nothing is applied before it proves to be our child.
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000 });
  let refusal: string | undefined;
  try {
    refusal = await serverIdentityRefusal(client, { pid: child.pid ?? -1, dbpath: options.dbpath });
  } catch (err) {
    refusal = `did not say which server it is (${(err as Error).message})`;
  } finally {
    await client.close();
  }
  if (refusal !== undefined) {
    await kill();
    throw new Error(`${name}: on 127.0.0.1:${port}, ${refusal}; nothing was applied, and the mongod started was stopped; ${logTail()}`);
  }
  return {
    name,
    uri,
    async shutdown() {
      const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000 });
      try {
        await client.db('admin').command({ shutdown: 1 });
      } catch (err) {
        // The expected outcome: mongod closes the connection as it shuts down.
        if (!(err instanceof MongoNetworkError) && exit === undefined) {
          await kill();
          throw new Error(`${name} refused {shutdown: 1} (${(err as Error).message}); it was stopped with SIGTERM`);
        }
      } finally {
        await client.close();
      }
      if ((await waitForExit(options.stopGraceMs)) === undefined) {
        await kill();
        throw new Error(`${name} had not exited ${options.stopGraceMs / 1000} s after {shutdown: 1}; it was stopped with SIGTERM (SIGKILL if that was not enough); ${logTail()}`);
      }
      const done = exit as Exit;
      if (done.code !== 0) throw new Error(`${name} ${describeExit(done)} on {shutdown: 1}, not 0; ${logTail()}`);
    },
    kill,
  };
}

class HelloTimeout extends Error {}

async function waitForHello(uri: string, exitOf: () => Exit | undefined, timeoutMs: number, exited: Promise<Exit>, signal: AbortSignal | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const aborted = whenAborted(signal);
  aborted.catch(() => undefined);
  for (;;) {
    signal?.throwIfAborted();
    if (exitOf() !== undefined) throw new Error('exited');
    const client = new MongoClient(uri, { serverSelectionTimeoutMS: POLL_INTERVAL_MS * 2, connectTimeoutMS: POLL_INTERVAL_MS * 2 });
    try {
      await client.db('admin').command({ hello: 1 });
      return;
    } catch {
      // Not listening yet (its startup recovery runs first), or gone: the next round tells.
    } finally {
      await client.close();
    }
    if (Date.now() >= deadline) throw new HelloTimeout(`did not answer hello on ${new URL(uri.replace('mongodb:', 'http:')).host} within ${timeoutMs / 1000} s`);
    await Promise.race([delay(POLL_INTERVAL_MS), exited, aborted]);
  }
}
