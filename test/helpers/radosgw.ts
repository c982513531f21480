/**
 * A real S3 server for a test file: a one-node Ceph cluster (monitor, OSD on a sparse
 * bluestore file, radosgw) under one temp dir, on free ports. Start at most one per test
 * file (a `before` hook), and a fresh bucket per test. Boots in 2 to 3 s on a quiet
 * 2-core machine, longer on a busy one; costs about 150 MB of RSS.
 *
 * The bootstrap is Ceph's manual deployment:
 * https://docs.ceph.com/en/pacific/install/manual-deployment/ (monmaptool, ceph-mon
 * --mkfs, ceph osd new, ceph-osd --mkfs) and
 * https://docs.ceph.com/en/pacific/radosgw/admin/ (radosgw-admin user create).
 */
import { randomUUID, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CreateBucketCommand, ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { s3SettingsFromEnvironment } from '../../src/s3/s3_client.js';
import { quietSdkNodeWarning } from '../../src/s3/sdk_node_warning.js';
import { tempDir } from './paths.js';
import { cephConf, cephLayout, RGW_POOLS, type CephLayout } from './ceph_conf.js';
import { DaemonGroup, logTail, runCeph, untilReady, type CephDaemon } from './ceph_daemon.js';

const BINARIES = ['monmaptool', 'ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph'] as const;

export interface S3Keys {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface Radosgw extends S3Keys {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  readonly region: string;
  /** The temp dir holding the cluster (conf, data, logs), removed by stop(). */
  readonly dir: string;
  /** The PIDs of the cluster's daemons now running (monitor, OSD, gateway). */
  pids(): number[];
  /** AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, for a child process. */
  env(): Record<string, string>;
  /** An SDK client for the tests' own assertions (path-style, checksums only when required). */
  client(keys?: S3Keys): S3Client;
  /** Creates a bucket (a fresh random name by default) and returns its name. */
  createBucket(name?: string): Promise<string>;
  /** SIGKILLs the gateway only: the cluster and its data stay. */
  stopGateway(): Promise<void>;
  /** Starts the gateway again on the same port and waits until it answers. */
  startGateway(): Promise<void>;
  /** A second S3 user with its own keys. */
  addUser(): Promise<S3Keys>;
  /** The tail of each daemon's log, for a failing test's message. */
  logs(): string;
  /** Stops every daemon by PID (SIGTERM, SIGKILL after a grace) and removes the temp dir. */
  stop(): Promise<void>;
}

export interface RadosgwOptions {
  /** Bound on each boot phase (monitor quorum, OSD up, gateway answering); default 180 s. */
  bootTimeoutMs?: number;
  /** How long a daemon gets between SIGTERM and SIGKILL at stop(); default 3 s. */
  graceMs?: number;
  /** The OSD's sparse bluestore file; default 8 GiB (only what is written takes disk space). */
  osdBytes?: number;
}

/** Whether this machine can run radosgw; otherwise the reason to give t.skip(). */
export function radosgwAvailable(): { ok: true } | { ok: false; reason: string } {
  const missing = missingCommands(BINARIES);
  if (missing.length === 0) return { ok: true };
  return { ok: false, reason: `Ceph is not installed (missing ${missing.join(', ')}): scripts/install.sh installs ceph-mon, ceph-osd, radosgw and ceph-common` };
}

/** Those of `commands` that no directory of PATH holds as an executable file. */
export function missingCommands(commands: readonly string[]): string[] {
  const dirs = (process.env['PATH'] ?? '').split(path.delimiter).filter((d) => d !== '');
  return commands.filter((bin) => !dirs.some((d) => isExecutable(path.join(d, bin))));
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await new Promise((resolve, reject) => server.once('listening', resolve).once('error', reject));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const REGION = 'us-east-1';

export async function startRadosgw(options: RadosgwOptions = {}): Promise<Radosgw> {
  const available = radosgwAvailable();
  if (!available.ok) throw new Error(available.reason);
  const bootMs = options.bootTimeoutMs ?? 180_000;
  const graceMs = options.graceMs ?? 3_000;
  const { dir } = tempDir('radosgw');
  const layout = cephLayout(dir);
  const group = new DaemonGroup(dir);
  try {
    return await boot(layout, group, bootMs, graceMs, options.osdBytes ?? 8 * 1024 ** 3);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const logs = message.includes('--- ') ? '' : `\n${clusterLogs(layout)}`;
    await group.close(graceMs);
    throw new Error(`radosgw did not start: ${message}${logs}`, { cause: err });
  }
}

/** The tail of every daemon's log and output, for an error message. */
function clusterLogs(layout: CephLayout): string {
  let names: string[];
  try {
    names = fs.readdirSync(layout.logDir).filter((n) => /^(mon|osd|client\.rgw)\..*\.(log|out)$/.test(n)).sort();
  } catch {
    return '(no logs yet)';
  }
  return names.map((n) => logTail(path.join(layout.logDir, n), n.endsWith('.out') ? 10 : 25)).join('\n');
}

/**
 * One `ceph` process reading its commands from stdin (its interactive mode) instead of
 * fourteen: each start of the Python CLI costs about 0.2 s. That mode goes on after a
 * failed command, so the last one lists the pools and the list is checked.
 */
async function createPools(c: string[], timeoutMs: number): Promise<void> {
  const commands = RGW_POOLS.flatMap((pool) => [`osd pool create ${pool} 8 8`, `osd pool application enable ${pool} rgw`]);
  const out = await runCeph('ceph', [...c, '--connect-timeout', '30'], timeoutMs, [...commands, 'osd pool ls', ''].join('\n'));
  const missing = RGW_POOLS.filter((pool) => !out.split('\n').includes(pool));
  if (missing.length > 0) throw new Error(`ceph did not create the pools ${missing.join(', ')}: ${out}`);
}

async function boot(layout: CephLayout, group: DaemonGroup, bootMs: number, graceMs: number, osdBytes: number): Promise<Radosgw> {
  const { dir, conf } = layout;
  for (const sub of ['log', 'run', 'crash', 'rgw', 'mon', layout.osdData]) fs.mkdirSync(path.resolve(dir, sub), { recursive: true });
  const fsid = randomUUID();
  const [monPort, rgwPort] = [await freePort(), await freePort()];
  fs.writeFileSync(conf, cephConf(layout, { fsid, monPort, rgwPort, osdBytes }));
  const c = ['--conf', conf];
  const daemons: CephDaemon[] = [];
  const logs = (): string => clusterLogs(layout);
  const ceph = (args: string[]) => runCeph('ceph', [...c, '--connect-timeout', '30', ...args], bootMs);

  // The monitor.
  await runCeph('monmaptool', [...c, '--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, layout.monmap], bootMs);
  await runCeph('ceph-mon', [...c, '--mkfs', '-i', 'a', '--monmap', layout.monmap], bootMs);
  const mon = group.start('mon.a', 'ceph-mon', [...c, '-i', 'a', '-f'], path.join(layout.logDir, 'mon.a.out'));
  daemons.push(mon);
  const monSocket = path.join(dir, 'run', 'ceph-mon.a.asok');
  await untilReady('the monitor to form a quorum', bootMs, daemons, logs, async () => {
    if (!fs.existsSync(monSocket)) return false;
    const status = await runCeph('ceph', [...c, '--admin-daemon', monSocket, 'mon_status'], bootMs).catch(() => '{}');
    const parsed = JSON.parse(status) as { state?: string; quorum?: number[] };
    return parsed.state === 'leader' && (parsed.quorum ?? []).length > 0;
  });

  // The OSD, and meanwhile radosgw's pools (the monitor alone creates them).
  const startOsd = async (): Promise<void> => {
    const osdUuid = randomUUID();
    const osdId = (await ceph(['osd', 'new', osdUuid])).trim();
    if (osdId !== '0') throw new Error(`ceph osd new gave OSD id ${osdId}, expected 0`);
    await runCeph('ceph-osd', [...c, '-i', '0', '--mkfs', '--osd-uuid', osdUuid], bootMs);
    daemons.push(group.start('osd.0', 'ceph-osd', [...c, '-i', '0', '-f'], path.join(layout.logDir, 'osd.0.out')));
  };
  await Promise.all([startOsd(), createPools(c, bootMs)]);
  await untilReady('the OSD to be up', bootMs, daemons, logs, async () => {
    const dump = JSON.parse(await ceph(['osd', 'dump', '--format', 'json'])) as { osds?: Array<{ osd: number; up: number }> };
    return dump.osds?.some((o) => o.osd === 0 && o.up === 1) === true;
  });

  // The S3 user (radosgw-admin writes to the pools, so it waits for their placement groups).
  const createUser = async (): Promise<S3Keys> => {
    const uid = `u-${randomBytes(6).toString('hex')}`;
    const out = await runCeph('radosgw-admin', [...c, 'user', 'create', `--uid=${uid}`, `--display-name=${uid}`], bootMs);
    const key = (JSON.parse(out) as { keys?: Array<{ access_key: string; secret_key: string }> }).keys?.[0];
    if (key === undefined) throw new Error(`radosgw-admin user create gave no key for ${uid}`);
    return { accessKeyId: key.access_key, secretAccessKey: key.secret_key };
  };
  const keys = await createUser();

  // The gateway.
  const endpoint = `http://127.0.0.1:${rgwPort}`;
  const env = (): Record<string, string> => ({ AWS_ENDPOINT_URL_S3: endpoint, AWS_ACCESS_KEY_ID: keys.accessKeyId, AWS_SECRET_ACCESS_KEY: keys.secretAccessKey, AWS_REGION: REGION });
  // The product's settings for this environment (path-style, its timeouts and retries);
  // createS3Client takes its credentials from the SDK's chain (this process's
  // environment), so the tests' clients are built here with their keys and the same
  // settings (checksums when required, an idle-socket timeout).
  const settings = s3SettingsFromEnvironment(env());
  quietSdkNodeWarning();
  const makeClient = (k: S3Keys, maxAttempts = settings.maxAttempts): S3Client =>
    new S3Client({
      endpoint,
      region: settings.region,
      credentials: { accessKeyId: k.accessKeyId, secretAccessKey: k.secretAccessKey },
      forcePathStyle: settings.forcePathStyle,
      maxAttempts,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: settings.connectionTimeoutMs, socketTimeout: settings.requestTimeoutMs },
    });
  const probe = makeClient(keys, 1);
  let gateway: CephDaemon | undefined;
  const startGateway = async (): Promise<void> => {
    if (gateway?.running() === true) return;
    if (gateway !== undefined) daemons.splice(daemons.indexOf(gateway), 1);
    gateway = group.start('client.rgw.a', 'radosgw', [...c, '-n', 'client.rgw.a', '-f'], path.join(layout.logDir, 'client.rgw.a.out'));
    daemons.push(gateway);
    await untilReady('radosgw to answer an S3 request', bootMs, daemons, logs, async () => {
      try {
        await probe.send(new ListBucketsCommand({}), { abortSignal: AbortSignal.timeout(10_000) });
        return true;
      } catch {
        return false;
      }
    });
  };
  await startGateway();

  let client: S3Client | undefined;
  const ownClient = (): S3Client => (client ??= makeClient(keys));
  return {
    endpoint,
    region: REGION,
    dir,
    ...keys,
    pids: () => daemons.filter((d) => d.running()).map((d) => d.pid),
    env,
    client: (k?: S3Keys) => (k === undefined ? ownClient() : makeClient(k)),
    async createBucket(name?: string) {
      const bucket = name ?? `t-${randomBytes(8).toString('hex')}`;
      await ownClient().send(new CreateBucketCommand({ Bucket: bucket }));
      return bucket;
    },
    async stopGateway() {
      await gateway?.kill9();
    },
    startGateway,
    addUser: createUser,
    logs,
    async stop() {
      client?.destroy();
      probe.destroy();
      await group.close(graceMs);
    },
  };
}
