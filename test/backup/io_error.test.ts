/** I/O errors read as Percona's did: glibc's strerror wording, not libuv's. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { strerror, toCommandError } from '../../src/backup/io_error.js';

describe('strerror', () => {
  it("uses glibc's wording where libuv has its own or none", () => {
    assert.equal(strerror(constants.errno.EIO), 'Input/output error');
    assert.equal(strerror(constants.errno.EEXIST), 'File exists');
    assert.equal(strerror(constants.errno.EDQUOT), 'Disk quota exceeded');
    assert.equal(strerror(constants.errno.ENOSPC), 'No space left on device');
  });

  it('takes libuv-style negative errnos too, and says Unknown error as glibc does', () => {
    assert.equal(strerror(-constants.errno.ENOENT), 'No such file or directory');
    assert.equal(strerror(4242), 'Unknown error 4242');
  });

  it('names the Linux errors Node has no name for, and falls back to libuv words before none', () => {
    assert.equal(strerror(117), 'Structure needs cleaning');
    assert.equal(strerror(constants.errno.ENOTCONN), 'Transport endpoint is not connected');
    // EPROTO is in libuv's table only.
    assert.equal(strerror(constants.errno.EPROTO), 'Protocol error');
  });
});

describe('toCommandError', () => {
  it("keeps a relayed mongod error's code and codeName, even one the proxy has no name for", () => {
    const relayed = Object.assign(new Error('ns does not exist'), { code: 26, codeName: 'NamespaceNotFound' });
    const err = toCommandError(relayed, 'backup');
    assert.deepEqual([err.code, err.codeName, err.message], [26, 'NamespaceNotFound', 'ns does not exist']);
  });

  it('turns a system error into OperationFailed with errno and strerror', () => {
    const err = Object.assign(new Error('EIO: i/o error, read'), { errno: -constants.errno.EIO, code: 'EIO', syscall: 'read', path: '/x/y' });
    const reply = toCommandError(err, 'copying').toReply();
    assert.deepEqual(reply, {
      ok: 0,
      errmsg: 'copying failed: read /x/y: Input/output error',
      code: 96,
      codeName: 'OperationFailed',
      errno: constants.errno.EIO,
      strerror: 'Input/output error',
    });
  });
});
