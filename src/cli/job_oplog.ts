/**
 * `serve --schedule … --stream-oplog`: the scheduled job's service wrapped so that the
 * upstream's oplog streams into `<backup root>/oplog/` while the job is Active
 * (src/oplog/job_oplog_stream.ts). The stream reads the very mongod the proxy fronts
 * (directConnection), with the proxy's own upstream credentials.
 */
import path from 'node:path';
import type { Logger } from '../log.js';
import type { BackupJobService } from '../commands/backup_job_command.js';
import { DriverOplogSource, driverErrorJudge } from '../oplog/driver_oplog_source.js';
import { JobOplogStream, OplogStreamingJob } from '../oplog/job_oplog_stream.js';
import { ROOT_OPLOG_DIR } from '../backup/backup_catalog.js';

/** The files' rotation size, as `hotbackup oplog`'s default. */
const ROTATE_BYTES = 64 * 1024 * 1024;

export function streamingJob(job: BackupJobService, upstreamUri: string, backupRoot: string, log: Logger): OplogStreamingJob {
  const stream = new JobOplogStream({
    dir: path.join(backupRoot, ROOT_OPLOG_DIR),
    connect: () => DriverOplogSource.connect(upstreamUri, { maxAwaitTimeMS: 1000, serverSelectionTimeoutMS: 10_000, directConnection: true }),
    judge: driverErrorJudge,
    rotateBytes: ROTATE_BYTES,
    log: log.child({ component: 'job-oplog' }),
  });
  return new OplogStreamingJob(job, stream);
}
