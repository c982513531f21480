/** Child processes for the benchmarks: a socat relay, and CPU time read from /proc. */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { once } from 'node:events';
import { onCleanup, sleep } from './common.js';

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime+stime of one process (all its threads), in ms; undefined once it is gone. */
function processCpuMs(pid: number): { ms: number; pgrp: number } | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): pgrp is field 5, utime 14, stime 15.
  const pgrp = Number(fields[2]);
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { ms: (ticks * 1000) / CLOCK_TICKS, pgrp };
}

/** CPU ms used so far by `pid`. */
export function cpuMsOf(pid: number): number {
  return processCpuMs(pid)?.ms ?? 0;
}

/** CPU ms used so far by every live process of process group `pgid` (socat and its forks). */
export function cpuMsOfGroup(pgid: number): number {
  let total = 0;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const info = processCpuMs(Number(entry));
    if (info !== undefined && info.pgrp === pgid) total += info.ms;
  }
  return total;
}

/** A port nobody listens on right now (there is a small race until socat binds it). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface Relay {
  readonly port: number;
  /** The process group: socat and the child it forks per connection. */
  readonly pgid: number;
  readonly uri: string;
  stop(): Promise<void>;
}

/**
 * `socat TCP-LISTEN:<port>,bind=127.0.0.1,reuseaddr,fork TCP:127.0.0.1:<target>` (with
 * `,nodelay` on both addresses if asked) in its own process group, so that stopping it
 * also ends the children it forked.
 */
export async function startSocat(targetPort: number, options: { nodelay?: boolean } = {}): Promise<Relay> {
  const nodelay = options.nodelay === true ? ',nodelay' : '';
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const args = [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork${nodelay}`, `TCP:127.0.0.1:${targetPort}${nodelay}`];
    const child: ChildProcess = spawn('socat', args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = once(child, 'exit');
    const pgid = child.pid as number;
    const stop = onCleanup(`socat (pgid ${pgid})`, async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-pgid, 'SIGTERM');
      } catch {
        return;
      }
      await exited;
    });
    const deadline = Date.now() + 5_000;
    while (child.exitCode === null && Date.now() < deadline) {
      if (await canConnect(port)) return { port, pgid, uri: `mongodb://127.0.0.1:${port}/?directConnection=true`, stop };
      await sleep(20);
    }
    await stop();
    if (attempt >= 3) throw new Error(`socat did not listen on ${port}: ${stderr}`);
  }
}

/**
 * bench/relay.ts (a zero-inspection Node relay: `socket.pipe` both ways) as a child
 * process in front of `targetPort`, stopped at cleanup.
 */
export async function startNodeRelay(targetPort: number): Promise<{ uri: string; pid: number; stop(): Promise<void> }> {
  const script = new URL('./relay.js', import.meta.url).pathname;
  const child = spawn(process.execPath, [script, '--upstream-port', String(targetPort)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = once(child, 'exit');
  const stop = onCleanup(`node relay (pid ${child.pid})`, async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await exited;
  });
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /"port":(\d+)/.exec(output);
      if (match) resolve(Number(match[1]));
    });
    void exited.then(() => reject(new Error(`node relay exited before listening: ${output}`)));
  });
  return { uri: `mongodb://127.0.0.1:${port}/?directConnection=true`, pid: child.pid as number, stop };
}
