/**
 * `npm start`: the embedded dev server on a persistent, git-ignored dbpath inside
 * the project, with the mongosh line that connects to it.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { serveUntilStopped } from './dev_server.js';
import { createLogger } from '../log.js';

const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export async function runStart(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      port: { type: 'string', default: process.env['HOTBACKUP_DEV_PORT'] ?? '27017' },
      dbpath: { type: 'string', default: path.join(PROJECT_ROOT, 'data', 'devserver') },
    },
  });
  const port = Number(values.port);
  const log = createLogger({ name: 'hotbackup', format: 'auto' });
  const uri = `mongodb://127.0.0.1:${port}/?directConnection=true`;
  process.stdout.write(`\nConnect with:  npx mongosh "${uri}"\n\n`);
  return serveUntilStopped(
    {
      dbpath: path.resolve(values.dbpath ?? ''),
      port,
      bind: '127.0.0.1',
      checkpointIntervalSecs: 60,
      backupCursor: true,
      argv: ['hotbackup', 'start', ...args],
    },
    log,
  );
}
