/**
 * What every backup benchmark runs against: a scratch directory, the dev server with
 * periodic checkpoints off (the dbpath must not change between the copies compared),
 * the proxy in front of it, and a driver client through the proxy. Each is registered
 * with onCleanup, so cleanupAll() tears them down whatever happened.
 */
import { MongoClient } from 'mongodb';
import { onCleanup } from './common.js';
import { startDevServer, type RunningDevServer } from '../test/helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../test/helpers/proxy.js';
import { tempDir } from '../test/helpers/paths.js';

export interface BenchStack {
  /** A scratch directory for destinations and copies. */
  workDir: string;
  server: RunningDevServer;
  proxy: RunningProxy;
  /** Connected through the proxy. */
  client: MongoClient;
}

/** `proxyEnv` is added to the proxy's environment (bench/s3.ts: the AWS variables of its radosgw). */
export async function startBenchStack(name: string, proxyEnv: NodeJS.ProcessEnv = {}): Promise<BenchStack> {
  const work = tempDir(name);
  onCleanup(`temp dir ${work.dir}`, () => work.remove());
  const server = await startDevServer({ args: ['--checkpoint-interval', '0'] });
  onCleanup('dev server', async () => {
    await server.stop();
    server.cleanup();
  });
  // For A/B runs of the proxy's own settings, e.g. HOTBACKUP_BENCH_PROXY_ARGS='--copy-writes buffered'.
  const proxyArgs = (process.env.HOTBACKUP_BENCH_PROXY_ARGS ?? '').split(/\s+/).filter((arg) => arg !== '');
  const proxy = await startProxy(server, proxyArgs, proxyEnv);
  onCleanup('proxy', () => proxy.stop());
  const client = new MongoClient(proxy.uri, { serverSelectionTimeoutMS: 10_000 });
  onCleanup('driver client (proxy)', () => client.close(true));
  await client.connect();
  return { workDir: work.dir, server, proxy, client };
}
