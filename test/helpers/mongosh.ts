/** Runs the real npm `mongosh`, non-interactively, with an isolated HOME. */
import { execFile } from 'node:child_process';
import { MONGOSH, tempDir } from './paths.js';

export interface MongoshResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `args` go before the script, e.g. `['--tls', '--tlsCAFile', ca]`. */
export async function runMongosh(uri: string, script: string, timeoutMs = 60_000, args: string[] = []): Promise<MongoshResult> {
  const home = tempDir('mongosh-home');
  try {
    return await new Promise<MongoshResult>((resolve) => {
      execFile(
        MONGOSH,
        [uri, ...args, '--quiet', '--norc', '--eval', script],
        {
          timeout: timeoutMs,
          env: { ...process.env, HOME: home.dir, MONGOSH_NO_UPDATE_CHECK: '1', DO_NOT_TRACK: '1', NO_COLOR: '1' },
          maxBuffer: 16 * 1024 * 1024,
        },
        (err, stdout, stderr) => {
          const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
          resolve({ code, stdout, stderr });
        },
      );
    });
  } finally {
    home.remove();
  }
}
