/**
 * The node flags the proxy is tuned with live in one place, the CLI's shebang; `npm
 * start` must pass the same ones, since it runs `node dist/src/cli.js` without it.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CLI_NODE_FLAGS, PROJECT_ROOT } from '../helpers/paths.js';

it("npm start runs the CLI with its shebang's node flags", () => {
  assert.ok(CLI_NODE_FLAGS.some((flag) => flag.startsWith('--max-semi-space-size=')), `flags: ${CLI_NODE_FLAGS.join(' ')}`);
  const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.equal(pkg.scripts['start'], ['node', ...CLI_NODE_FLAGS, 'dist/src/cli.js', 'start'].join(' '));
});
