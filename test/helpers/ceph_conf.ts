/**
 * The ceph.conf of a one-node test cluster: one monitor, one OSD, one radosgw, every
 * path under one temp dir and every address on 127.0.0.1, so that several clusters can
 * run at once without sharing a file, a socket or a port. Option names and meanings:
 * https://docs.ceph.com/en/pacific/rados/configuration/ and
 * https://docs.ceph.com/en/pacific/radosgw/config-ref/.
 */
import path from 'node:path';

export interface CephLayout {
  readonly dir: string;
  readonly conf: string;
  readonly monmap: string;
  readonly logDir: string;
  readonly monData: string;
  readonly osdData: string;
}

export function cephLayout(dir: string): CephLayout {
  return {
    dir,
    conf: path.join(dir, 'ceph.conf'),
    monmap: path.join(dir, 'monmap'),
    logDir: path.join(dir, 'log'),
    monData: path.join(dir, 'mon', 'ceph-a'),
    osdData: path.join(dir, 'osd', 'ceph-0'),
  };
}

/** radosgw asks for these pools one by one, about 2 s each, unless they exist already. */
export const RGW_POOLS = [
  '.rgw.root',
  'default.rgw.control',
  'default.rgw.meta',
  'default.rgw.log',
  'default.rgw.buckets.index',
  'default.rgw.buckets.data',
  'default.rgw.buckets.non-ec',
] as const;

export interface CephConfOptions {
  fsid: string;
  monPort: number;
  rgwPort: number;
  /** The OSD's sparse bluestore file, in bytes. */
  osdBytes: number;
}

export function cephConf(layout: CephLayout, o: CephConfOptions): string {
  const d = layout.dir;
  return `[global]
fsid = ${o.fsid}
mon host = [v2:127.0.0.1:${o.monPort}]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
# No cephx: a throwaway cluster reachable from 127.0.0.1 only.
auth cluster required = none
auth service required = none
auth client required = none
# Without it, radosgw hangs at boot: "get_initial_auth_request returned -13".
ms mon client mode = crc
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd crush chooseleaf type = 0
osd pool default pg autoscale mode = off
osd pool default pg num = 8
osd pool default pgp num = 8
# Commit map changes every 50 ms instead of every second: faster pool and OSD boot.
paxos propose interval = 0.05
mon data avail warn = 1
mon data avail crit = 1
run dir = ${d}/run
crash dir = ${d}/crash
log file = ${d}/log/$name.log
mon cluster log file = ${d}/log/cluster.log
keyring = ${d}/keyring
mon data = ${d}/mon/$cluster-$id
osd data = ${d}/osd/$cluster-$id
osd objectstore = bluestore
bluestore block path = ${d}/osd/$cluster-$id/block.file
bluestore block create = true
# mkfs checks the new store by default: a second of nothing to find on a fresh file.
bluestore fsck on mkfs = false
# Each close of the block file waits for the AIO thread's poll (250 ms by default), about
# ten times while the OSD is made and boots.
bdev aio poll ms = 20
bluestore block size = ${o.osdBytes}
# A gateway killed by a test (stopGateway) leaves its watches on the control objects, and
# the restarted gateway's first bucket creation notifies them and waits for each to
# expire: 30 s by default, seen as a 26 s CreateBucket after every restart. Live
# watchers ping well within 5 s.
osd client watch timeout = 5

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:${o.rgwPort}
rgw data = ${d}/rgw
`;
}
