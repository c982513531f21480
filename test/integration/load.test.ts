/**
 * Load: 500 concurrent client connections forward CRUD through the proxy while a backup
 * runs. Every client inserts its own documents and reads them back: nothing is dropped,
 * every answer is right, the backup still succeeds, and the proxy's open file
 * descriptors come back to what they were. Functional, not a benchmark: the machine may
 * have two busy cores. Needs about 1,100 descriptors in the proxy and the dev server each
 * (CI's `ulimit -n` is far above; the default soft limit of 1024 is not).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient, type Document } from 'mongodb';
import { startDevServer } from '../helpers/dev_server.js';
import { startProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { until, untilBackupEnds, untilCopying } from '../helpers/poll.js';
import { RawClient, opMsg } from '../helpers/raw_client.js';

const CLIENTS = 500;
const DOCS_EACH = 4;

/**
 * The proxy's TCP sockets, from /proc/<pid>/fd and /proc/net/tcp: those accepted on its
 * port (clients) and those connected to mongod's port (each client's upstream, and the
 * proxy's own driver connections). The whole fd count would also move with the copy
 * threads' open files, and with the driver's pool, neither of which is this test's.
 */
function proxySockets(pid: number, proxyPort: number, mongodPort: number): { clients: number; upstream: number } {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.add(match[1] as string);
    } catch {
      // Closed since it was listed.
    }
  }
  let clients = 0;
  let upstream = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || !inodes.has(fields[9] as string)) continue;
      const localPort = parseInt((fields[1] as string).split(':')[1] as string, 16);
      const remotePort = parseInt((fields[2] as string).split(':')[1] as string, 16);
      const listening = fields[3] === '0A';
      if (localPort === proxyPort && !listening) clients++;
      else if (remotePort === mongodPort) upstream++;
    }
  }
  return { clients, upstream };
}

function openFds(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** One client's CRUD on its own documents, each answer checked. */
async function crud(client: RawClient, id: number): Promise<void> {
  const documents = Array.from({ length: DOCS_EACH }, (_, n) => ({ client: id, n }));
  const inserted = await client.command(opMsg({ insert: 'load', documents, $db: 'app' }));
  assert.equal(inserted.doc['ok'], 1, JSON.stringify(inserted.doc));
  assert.equal(inserted.doc['n'], DOCS_EACH);
  const found = await client.command(opMsg({ find: 'load', filter: { client: id }, sort: { n: 1 }, $db: 'app' }));
  const batch = (found.doc['cursor'] as Document)['firstBatch'] as Document[];
  assert.deepEqual(
    batch.map((d) => [d['client'], d['n']]),
    documents.map((d) => [d.client, d.n]),
  );
  const updated = await client.command(opMsg({ update: 'load', updates: [{ q: { client: id, n: 0 }, u: { $set: { seen: true } } }], $db: 'app' }));
  assert.equal(updated.doc['nModified'], 1);
  const deleted = await client.command(opMsg({ delete: 'load', deletes: [{ q: { client: id, n: 1 }, limit: 1 }], $db: 'app' }));
  assert.equal(deleted.doc['n'], 1);
}

describe('500 concurrent clients during a backup', () => {
  it('are all served correctly, and the proxy gives back every descriptor', async () => {
    const server = await startDevServer();
    const proxy = await startProxy(server);
    const pid = proxy.child.pid as number;
    const scratch = tempDir('load');
    // One pooled connection and one monitoring connection, and no more: the driver's default
    // (streaming) monitor opens a second, RTT connection when it sees fit, which a fresh-clone
    // run on a busy machine once counted among the 500 (503 sockets for 502).
    const admin = new MongoClient(proxy.uri, { maxPoolSize: 1, serverMonitoringMode: 'poll' });
    try {
      const pad = 'x'.repeat(10_000);
      await admin.db('app').collection('seed').insertMany(Array.from({ length: 1000 }, (_, i) => ({ i, pad })));
      await admin.db('admin').command({ backupThrottle: '1MB' });
      const destination = path.join(scratch.dir, 'b');
      await admin.db('admin').command({ backupStart: destination, async: true });
      await untilCopying(admin.db('admin'));
      const baseline = proxySockets(pid, proxy.port, server.port);
      const fdsBefore = openFds(pid);

      // All connected at once, then all at work at once.
      const clients = await Promise.all(Array.from({ length: CLIENTS }, () => RawClient.connect(proxy.port)));
      const results = await Promise.allSettled(clients.map((client, id) => crud(client, id)));
      const open = proxySockets(pid, proxy.port, server.port);
      assert.equal(open.clients, baseline.clients + CLIENTS, 'every client is connected through the proxy at once');
      assert.equal(open.upstream, baseline.upstream + CLIENTS, 'each with its own connection to mongod');
      const fdsDuring = openFds(pid);
      for (const client of clients) client.close();
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.equal(failed.length, 0, `${failed.length} clients failed, e.g. ${String(failed[0]?.reason)}`);
      const during = await admin.db('admin').command({ backupStatus: 1 });
      assert.equal(during['inProgress'], true, 'the clients ran while the backup did');

      const load = admin.db('app').collection('load');
      assert.equal(await load.countDocuments(), CLIENTS * (DOCS_EACH - 1));
      assert.equal(await load.countDocuments({ seen: true }), CLIENTS);

      // Every client socket and its upstream socket are closed again, the backup still running.
      await until(() => {
        const now = proxySockets(pid, proxy.port, server.port);
        return now.clients <= baseline.clients && now.upstream <= baseline.upstream;
      });
      // Indicative: the descriptors the copy and everything else hold besides.
      console.log(`proxy fds: ${fdsBefore} before the clients, ${fdsDuring} after them, ${openFds(pid)} once their sockets are closed`);

      await admin.db('admin').command({ backupThrottle: 0 });
      const status = await untilBackupEnds(admin.db('admin'));
      assert.equal((status['last'] as Document)['ok'], true, JSON.stringify(status['last']));
      assert.ok(fs.existsSync(path.join(destination, 'hotbackup-manifest.json')));
    } finally {
      await admin.close();
      await proxy.stop();
      await server.stop();
      server.cleanup();
      scratch.remove();
    }
  });
});
