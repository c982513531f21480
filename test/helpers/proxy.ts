/** `hotbackup serve` as a child process in front of a dev server, as a user would run it. */
import { spawnCli, type CliProcess } from './cli_process.js';
import type { RunningDevServer } from './dev_server.js';

export interface RunningProxy extends CliProcess {
  readonly uri: string;
}

/** `env` is added to the proxy's environment, e.g. `{HOTBACKUP_TEST_FAILPOINTS: 'hangWhileWritesBlocked'}` (src/failpoints.ts). */
export async function startProxy(upstream: RunningDevServer, args: string[] = [], env: NodeJS.ProcessEnv = {}, wrapper: string[] = []): Promise<RunningProxy> {
  const cli = await spawnCli(['serve', '--upstream', upstream.uri, '--port', '0', ...args], 'proxy listening', wrapper, env);
  return { ...cli, uri: `mongodb://127.0.0.1:${cli.port}/?directConnection=true` };
}
