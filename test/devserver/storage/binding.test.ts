import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isWtError, openConnection, WtCode, wiredtigerVersion, type WtConnection } from '../../../src/devserver/storage/wiredtiger.js';
import { runScript, tempDir, WIREDTIGER_URL } from './helpers.js';

const CONFIG = 'create,cache_size=16M';

function withConnection(fn: (conn: WtConnection) => void): void {
  const { dir, cleanup } = tempDir('binding');
  const conn = openConnection(dir, CONFIG);
  try {
    fn(conn);
  } finally {
    if (conn.isOpen) conn.close();
    cleanup();
  }
}

test('cursors convert q, u and S keys and values, and copy them out', () => {
  assert.match(wiredtigerVersion(), /^WiredTiger 3\.2\.1/);
  withConnection((conn) => {
    const s = conn.openSession();
    s.create('table:t', 'key_format=q,value_format=u');
    s.create('table:names', 'key_format=S,value_format=S');
    const c = s.openCursor('table:t');
    assert.deepEqual([c.keyFormat, c.valueFormat, c.uri], ['q', 'u', 'table:t']);
    for (let i = 1; i <= 5; i++) c.insert(i * 10, Buffer.from(`v${i}`));
    const v30 = c.search(30) as Buffer;
    assert.deepEqual(v30, Buffer.from('v3'));
    c.update(30, Buffer.from('changed')); // the earlier value was a copy
    assert.deepEqual(v30, Buffer.from('v3'));
    assert.equal(c.search(31), null);
    const near = c.searchNear(31); // WT may land on either neighbour
    assert.ok(near !== null && near.exact !== 0);
    assert.equal(c.getKey(), near.exact < 0 ? 30 : 40);
    assert.ok(c.next());
    assert.equal(c.getKey(), near.exact < 0 ? 40 : 50);
    c.reset();
    assert.deepEqual(c.nextBatch(3).map(([k]) => k), [10, 20, 30]);
    assert.deepEqual(c.nextBatch(3).map(([k]) => k), [40, 50]);
    assert.ok(c.prev());
    assert.equal(c.getKey(), 50);
    assert.equal(c.remove(50), true);
    assert.throws(() => c.insert(1.5, Buffer.alloc(0)), RangeError);
    assert.throws(() => c.insert(1, 'not bytes'), TypeError);

    const n = s.openCursor('table:names');
    n.insert('ключ', 'значение');
    assert.equal(n.search('ключ'), 'значение');
  });
});

test('WiredTiger failures throw with wtCode; WT_NOTFOUND answers null or false', () => {
  withConnection((conn) => {
    const s = conn.openSession();
    s.create('table:t', 'key_format=q,value_format=u');
    const c = s.openCursor('table:t', 'overwrite=false');
    c.insert(1, Buffer.from('a'));
    assert.throws(() => c.insert(1, Buffer.from('b')), (err: unknown) => {
      assert.ok(isWtError(err, WtCode.WT_DUPLICATE_KEY));
      assert.equal(err.message, 'WT_DUPLICATE_KEY: attempt to insert an existing key');
      assert.equal(err.wtCall, 'WT_CURSOR.insert');
      return true;
    });
    assert.equal(c.update(2, Buffer.from('x')), false);
    assert.equal(c.remove(2), false);
    // A table with an open cursor cannot be dropped.
    assert.throws(() => conn.openSession().drop('table:t'), (err: unknown) => isWtError(err, WtCode.EBUSY));
    assert.throws(() => s.openCursor('table:missing'), (err: unknown) => isWtError(err, WtCode.ENOENT));
    assert.throws(() => s.create('table:bad', 'key_format=nonsense'), (err: unknown) => {
      assert.ok(isWtError(err, WtCode.EINVAL));
      assert.match(err.wtDetail ?? '', /nonsense/); // WT's own explanation rides along
      return true;
    });
    assert.equal(isWtError(new Error('x')), false);
  });
});

test('closing a session or connection kills its dependents instead of crashing', () => {
  const { dir, cleanup } = tempDir('lifetime');
  try {
    const conn = openConnection(dir, CONFIG);
    const s1 = conn.openSession();
    s1.create('table:t', 'key_format=q,value_format=u');
    const c1 = s1.openCursor('table:t');
    s1.close();
    assert.equal(c1.isOpen, false);
    assert.throws(() => c1.next(), { code: 'ERR_WT_CLOSED', message: 'WT_CURSOR is closed' });
    assert.throws(() => c1.close(), { code: 'ERR_WT_CLOSED' });
    assert.throws(() => s1.openCursor('table:t'), { code: 'ERR_WT_CLOSED', message: 'WT_SESSION is closed' });

    const s2 = conn.openSession();
    const c2 = s2.openCursor('table:t');
    c2.insert(1, Buffer.from('x'));
    conn.close();
    assert.throws(() => c2.search(1), { code: 'ERR_WT_CLOSED' });
    assert.throws(() => s2.beginTransaction(), { code: 'ERR_WT_CLOSED' });
    assert.throws(() => conn.openSession(), { code: 'ERR_WT_CLOSED', message: 'WT_CONNECTION is closed' });
    assert.equal(conn.isOpen, false);
  } finally {
    cleanup();
  }
});

test('garbage-collected handles are closed once, whatever the order', () => {
  const { dir, cleanup } = tempDir('gc');
  try {
    // A child with --expose-gc: handles dropped open, closed explicitly, or orphaned
    // by a closed parent are all collected; a double close would crash the process.
    const child = runScript(`
      const { openConnection } = await import(${JSON.stringify(WIREDTIGER_URL)});
      const tick = () => new Promise((resolve) => setImmediate(resolve));
      const collect = async () => { for (let i = 0; i < 5; i++) { globalThis.gc(); await tick(); } };
      // Synchronous, so that no suspended frame keeps a round's handles reachable.
      function round(n) {
        const conn = openConnection(process.argv[1], 'create,cache_size=16M');
        const s = conn.openSession();
        s.create('table:t', 'key_format=q,value_format=u');
        for (let i = 0; i < 50; i++) {
          const c = s.openCursor('table:t');
          c.insert(i, Buffer.alloc(10));
          if (i % 2 === 0) c.close();
        }
        conn.openSession().openCursor('table:t');
        if (n % 3 === 0) s.close();
        if (n % 2 === 0) conn.close(); // otherwise the finalizers close everything
      }
      for (let n = 0; n < 20; n++) {
        round(n);
        await collect(); // a cursor, then its session, then the connection
      }
      console.log('survived');
    `, [dir], ['--expose-gc']);
    assert.equal(child.status, 0, child.stderr);
    assert.equal(child.stdout.trim(), 'survived');
  } finally {
    cleanup();
  }
});

test('duplicate() opens a cursor on a cursor, and refuses once its session is closed', () => {
  const { dir, cleanup } = tempDir('binding-dup');
  const conn = openConnection(dir, 'create,cache_size=16M,log=(enabled=true)');
  try {
    const s = conn.openSession();
    s.create('table:t', 'key_format=q,value_format=u');
    const backup = s.openCursor('backup:');
    const dup = backup.duplicate('target=("log:")');
    const logs: string[] = [];
    while (dup.next()) logs.push(dup.getKey() as string);
    assert.ok(logs.length >= 1 && logs.every((n) => n.startsWith('WiredTigerLog.')), logs.join(' '));
    dup.close();
    // A bad configuration is WiredTiger's error, thrown, not a crash.
    assert.throws(() => backup.duplicate('target=("no-such:")'), (err: unknown) => isWtError(err));
    backup.close();
    const again = s.openCursor('backup:');
    s.close();
    assert.throws(() => again.duplicate('target=("log:")'), { code: 'ERR_WT_CLOSED' });
  } finally {
    if (conn.isOpen) conn.close();
    cleanup();
  }
});
