/** Which clients mongod's localhost exception is left to (the rest: test/integration/localhost_exception.test.ts). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isLoopbackClient } from '../../src/commands/localhost_exception.js';

describe('isLoopbackClient', () => {
  it('takes 127.0.0.0/8, ::1 and IPv4-mapped 127.x as loopback, from host:port', () => {
    for (const address of ['127.0.0.1:5000', '127.1.2.3:1', '::1:27017', '::ffff:127.0.0.1:4242', '::FFFF:127.0.0.9:1']) assert.equal(isLoopbackClient(address), true, address);
  });

  it('takes everything else as remote, an unreadable address too', () => {
    for (const address of ['192.0.2.2:5000', '10.0.0.1:1', '::ffff:192.0.2.2:1', 'fe80::1:1', '1127.0.0.1:1', ':0', '', '127.0.0.1.evil:1']) assert.equal(isLoopbackClient(address), false, address);
  });
});
