/** aggregate: the backup stages, $currentOp, or a pipeline over one collection. */
import type { Document } from '../bson.js';
import type { Command, CommandContext } from './handler.js';
import { ArraySource } from '../cursors.js';
import { namespaceOf, optionalDocument, bsonSize, cursorBatchSize, isCollectionless } from './common.js';
import { firstBatchReply } from './read.js';
import { BACKUP_STAGES, runBackupStage } from './backup.js';
import { runCurrentOpStage } from './operations.js';
import { decodeDocument } from '../bson.js';
import { runPipeline } from '../query/aggregate.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';

function* collectionDocuments(ctx: CommandContext, ns: string): Generator<Document> {
  if (ctx.state.engine.getCollection(ns) === undefined) return;
  for (const entry of ctx.state.engine.scanRecords(ns)) yield decodeDocument(entry.doc);
}

function aggregate(cmd: Document, ctx: CommandContext): Document | Promise<Document> {
  ctx.state.opcounters.query += 1;
  const pipeline = cmd['pipeline'];
  if (!Array.isArray(pipeline)) {
    throw new DevServerError(DevServerCodes.TypeMismatch, "'pipeline' option must be specified as an array");
  }
  if (cmd['explain'] === true) {
    throw new DevServerError(DevServerCodes.NotImplemented, 'explain is not supported by the hotbackup dev server');
  }
  const cursorOptions = optionalDocument(cmd, 'cursor');
  if (cursorOptions === undefined) {
    throw new DevServerError(DevServerCodes.FailedToParse, "The 'cursor' option is required, except for aggregate with the explain argument");
  }
  const first = pipeline[0] as Document | undefined;
  if (first !== undefined && BACKUP_STAGES.some((stage) => stage in first)) {
    return runBackupStage(first, cmd, ctx);
  }
  if (first !== undefined && '$currentOp' in first) return runCurrentOpStage(first, cmd, ctx);
  if (isCollectionless(cmd)) {
    throw new DevServerError(DevServerCodes.NotImplemented, 'collectionless aggregations other than $backupCursor are not supported by the hotbackup dev server');
  }
  const ns = namespaceOf(ctx.db, cmd['aggregate']);
  // Materialize the input before running: a pipeline never writes, but keeping reads
  // off open WiredTiger cursors between commands keeps the storage contract simple.
  const input = [...collectionDocuments(ctx, ns)];
  const results = runPipeline(input, pipeline as Document[]);
  return firstBatchReply(ctx, { ns, source: new ArraySource(results, bsonSize), batchSize: cursorBatchSize(cmd) });
}

export const aggregateCommands: Command[] = [{ names: ['aggregate'], run: aggregate }];
