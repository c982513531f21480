/**
 * One proxy per state dir, for as long as it runs. Two proxies on one state dir would
 * write one state file: the second's backup overwrites the first's record, and a kill -9
 * of the first then leaves its fsync lock with nobody (neither its watchdog nor a
 * restart) knowing it is owed. And by default the state dir is derived from the dbpath,
 * so two proxies in front of one mongod share it unless told otherwise.
 *
 * The claim is a listening socket in Linux's abstract namespace (unix(7)), named from
 * the state dir's real path: the kernel frees it the moment its process dies, kill -9
 * included, so a claim is never stale and needs no cleanup. A second claimant gets
 * EADDRINUSE, connects, and reads the holder's pid, for the error. Abstract names are
 * per network namespace: proxies in separate containers sharing one state dir volume
 * are not seen (docs/commands.md says to give each its own).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';

export interface StateDirClaim {
  /** Gives the state dir up (at shutdown). Idempotent. */
  release(): Promise<void>;
}

function socketName(realDir: string, tag: string): string {
  const digest = createHash('sha256').update(realDir).digest('hex').slice(0, 32);
  return `\0hotbackup-${tag}-${digest}`;
}

/** The pid the holder of `name` says it has, or undefined when it does not answer. */
async function holderPid(name: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ path: name });
    let text = '';
    const done = (pid: number | undefined) => {
      socket.destroy();
      resolve(pid);
    };
    socket.setTimeout(2000, () => done(undefined));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    socket.on('end', () => done(/^\d+$/.test(text.trim()) ? Number(text.trim()) : undefined));
    socket.on('error', () => done(undefined));
  });
}

/** Claims `stateDir` (which must exist) for this process; rejects, naming the holder, when another process has it. */
export async function claimStateDir(stateDir: string, pid: number = process.pid): Promise<StateDirClaim> {
  return claimDirectory(stateDir, 'state', (holder) =>
    `another hotbackup proxy${holder === undefined ? '' : ` (pid ${holder})`} already uses the state dir ${stateDir}: two proxies ` +
      'cannot share one, or a crash of one would leave what its backup holds unknown to both. Give each proxy its own --state-dir.',
  pid);
}

/**
 * Claims `dir` (which must exist) for this process under `tag` (one claim per tag and
 * directory: a proxy's state dir, an oplog streamer's output); rejects with
 * `busy(holder's pid)` when another process holds it.
 */
export async function claimDirectory(dir: string, tag: string, busy: (holder: number | undefined) => string, pid: number = process.pid): Promise<StateDirClaim> {
  const name = socketName(await fs.realpath(dir), tag);
  const server = net.createServer((socket) => socket.end(`${pid}\n`));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: name }, () => resolve());
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    throw new Error(busy(await holderPid(name)));
  }
  // The claim never keeps the process alive on its own.
  server.unref();
  let released: Promise<void> | undefined;
  return {
    release: () =>
      (released ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
      })),
  };
}
