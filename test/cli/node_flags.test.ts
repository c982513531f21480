/**
 * The proxy's node flags are given in three places a user reads or runs: `npm start`
 * (package.json), the README's `serve` line and the systemd unit in docs/commands.md.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CLI_NODE_FLAGS, PROJECT_ROOT } from '../helpers/paths.js';

it('npm start, the README and the systemd unit run the proxy with the same node flags', () => {
  assert.ok(CLI_NODE_FLAGS.some((flag) => flag.startsWith('--max-semi-space-size=')), `flags: ${CLI_NODE_FLAGS.join(' ')}`);
  const nodeOptions = `NODE_OPTIONS=${CLI_NODE_FLAGS.join(' ')}`;
  for (const doc of ['README.md', 'docs/commands.md']) {
    const text = fs.readFileSync(path.join(PROJECT_ROOT, doc), 'utf8');
    assert.ok(text.includes('hotbackup serve --upstream'), `${doc} shows how to run serve`);
    assert.ok(text.includes(nodeOptions), `${doc} sets ${nodeOptions} for it`);
  }
});
