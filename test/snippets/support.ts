/**
 * Shared by the snippet tests: a dev server with a proxy in front and 20+ MB of data,
 * and the real mongosh run with its output read line by line as it comes.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { MONGOSH, PROJECT_ROOT, tempDir } from '../helpers/paths.js';

export const SNIPPET = path.join(PROJECT_ROOT, 'snippets', 'hotbackup', 'index.js');
export const LOCAL_INDEX = path.join(PROJECT_ROOT, 'snippets', 'hotbackup', 'local-index.js');
export const MANIFEST = 'hotbackup-manifest.json';

/** A load() line for the snippet, as a user would type it. */
export const LOAD = `load(${JSON.stringify(SNIPPET)});`;

/** What mongosh needs to stay quiet and offline, as test/helpers/mongosh.ts sets it. */
export function mongoshEnv(home: string): NodeJS.ProcessEnv {
  return { ...process.env, HOME: home, MONGOSH_NO_UPDATE_CHECK: '1', DO_NOT_TRACK: '1', NO_COLOR: '1' };
}

/**
 * A progress line: percent, bytes done (copied, and for an incremental backup "+ N reused"
 * from its base) of total, files, rate, ETA (the current file may follow).
 */
export const PROGRESS_LINE = /^\s*(\d{1,3}\.\d)%\s+[\d.]+ (?:B|KiB|MiB|GiB)(?: \+ [\d.]+ (?:B|KiB|MiB|GiB) reused)? of [\d.]+ (?:B|KiB|MiB|GiB), \d+\/\d+ files\s+(?:[\d.]+ (?:B|KiB|MiB|GiB)\/s|--)\s+ETA \S+/;

export interface Fixture {
  server: RunningDevServer;
  proxy: RunningProxy;
  client: MongoClient;
  scratch: { dir: string; remove: () => void };
  /** backupStatus through the proxy, from the test's own driver connection. */
  status(): Promise<Record<string, unknown>>;
  throttle(value: number | string): Promise<void>;
  stop(): Promise<void>;
}

/** A dev server holding `megabytes` of incompressible documents, checkpointed, behind a proxy. */
export async function startFixture(megabytes = 24, serverArgs: string[] = []): Promise<Fixture> {
  const server = await startDevServer({ args: serverArgs });
  const proxy = await startProxy(server);
  const client = new MongoClient(proxy.uri);
  await client.connect();
  const coll = client.db('app').collection('blobs');
  for (let batch = 0; batch < megabytes; batch += 1) {
    // ~1 MB per batch: 10 documents of 100 KB of base64 random bytes.
    await coll.insertMany(Array.from({ length: 10 }, (_, i) => ({ batch, i, pad: crypto.randomBytes(75_000).toString('base64') })));
  }
  await client.db('admin').command({ fsync: 1 }); // checkpoint: the data is in the collection file
  const admin = client.db('admin');
  const scratch = tempDir('snippet');
  return {
    server,
    proxy,
    client,
    scratch,
    status: () => admin.command({ backupStatus: 1 }),
    async throttle(value) {
      await admin.command({ backupThrottle: value });
    },
    async stop() {
      await client.close();
      await proxy.stop();
      await server.stop();
      server.cleanup();
      scratch.remove();
    },
  };
}

export interface StreamedMongosh {
  /** stdout lines so far, each with the time it arrived. */
  readonly lines: Array<{ text: string; at: number }>;
  /** Whether mongosh has exited (then `done` is settled). */
  readonly exited: boolean;
  readonly done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** The real mongosh, non-interactive, with an isolated HOME; stdout is read as it arrives. */
export function streamMongosh(uri: string, script: string, timeoutMs = 60_000): StreamedMongosh {
  const home = tempDir('mongosh-home');
  const child = spawn(MONGOSH, [uri, '--quiet', '--norc', '--eval', script], {
    env: mongoshEnv(home.dir),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<{ text: string; at: number }> = [];
  let stdout = '';
  let stderr = '';
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const text of parts) lines.push({ text, at: Date.now() });
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      home.remove();
      resolve({ code, stdout, stderr });
    });
  });
  let exited = false;
  void done.then(() => {
    exited = true;
  });
  return {
    lines,
    done,
    get exited() {
      return exited;
    },
  };
}
