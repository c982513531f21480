/** findAndModify: the driver's findOneAndUpdate / findOneAndReplace / findOneAndDelete. */
import type { Document } from '../bson.js';
import type { Command, CommandContext } from './handler.js';
import { namespaceOf, optionalDocument, findMatching, ensureCollection } from './common.js';
import { withId, encodeForStorage, finishWrite } from './write.js';
import { compileUpdate, upsertSeed } from '../query/update.js';
import { compileSort } from '../query/sort.js';
import { compileProjection } from '../query/projection.js';
import { valuesEqual } from '../query/values.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';
import { checkUserWritable, logDelete, logInsert, logUpdate } from '../replication/oplog_writes.js';

function findAndModify(cmd: Document, ctx: CommandContext): Document {
  const { engine } = ctx.state;
  const ns = namespaceOf(ctx.db, cmd['findAndModify'] ?? cmd['findandmodify']);
  checkUserWritable(ctx.state, ns);
  const query = optionalDocument(cmd, 'query') ?? {};
  const sortSpec = optionalDocument(cmd, 'sort');
  const fields = optionalDocument(cmd, 'fields');
  const remove = cmd['remove'] === true;
  const updateSpec = cmd['update'] as Document | Document[] | undefined;
  if (remove && updateSpec !== undefined) {
    throw new DevServerError(DevServerCodes.FailedToParse, 'Cannot specify both an update and remove=true');
  }
  if (!remove && updateSpec === undefined) {
    throw new DevServerError(DevServerCodes.FailedToParse, 'Either an update or remove=true must be specified');
  }
  if (remove && cmd['upsert'] === true) {
    throw new DevServerError(DevServerCodes.FailedToParse, 'Cannot specify both upsert=true and remove=true');
  }
  const sorted = sortSpec !== undefined && Object.keys(sortSpec).length > 0;
  const matches = findMatching(engine, ns, query, sorted ? Infinity : 1);
  if (sorted) matches.sort((a, b) => compileSort(sortSpec)(a.doc, b.doc));
  const target = matches[0];

  let value: Document | null = null;
  const lastErrorObject: Document = { n: 0 };
  if (remove) {
    if (target !== undefined) {
      engine.writeTransaction(() => {
        engine.deleteRecord(ns, target.rid, target.doc['_id']);
        logDelete(ctx.state, ns, target.doc['_id']);
      });
      value = target.doc;
      lastErrorObject['n'] = 1;
    }
  } else {
    const update = compileUpdate(updateSpec as Document | Document[]);
    const returnNew = cmd['new'] === true;
    if (target !== undefined) {
      const result = update.apply(target.doc);
      if (!valuesEqual(result.doc['_id'], target.doc['_id'])) {
        throw new DevServerError(DevServerCodes.ImmutableField, "Performing an update on the path '_id' would modify the immutable field '_id'");
      }
      if (result.modified) {
        const bytes = encodeForStorage(result.doc);
        engine.writeTransaction(() => {
          engine.updateRecord(ns, target.rid, bytes);
          logUpdate(ctx.state, ns, target.doc, result.doc, update.isReplacement);
        });
      }
      value = returnNew ? result.doc : target.doc;
      Object.assign(lastErrorObject, { n: 1, updatedExisting: true });
    } else if (cmd['upsert'] === true) {
      const stored = withId(update.apply(upsertSeed(query, { idOnly: update.isReplacement }), { isInsert: true }).doc);
      const bytes = encodeForStorage(stored);
      ensureCollection(engine, ns);
      engine.writeTransaction(() => {
        engine.insertRecord(ns, bytes, stored['_id']);
        logInsert(ctx.state, ns, stored);
      });
      value = returnNew ? stored : null;
      Object.assign(lastErrorObject, { n: 1, updatedExisting: false, upserted: stored['_id'] });
    } else {
      lastErrorObject['updatedExisting'] = false;
    }
  }
  finishWrite(ctx.state, cmd);
  if (value !== null && fields !== undefined && Object.keys(fields).length > 0) value = compileProjection(fields)(value);
  return { lastErrorObject, value, ok: 1 };
}

export const findAndModifyCommands: Command[] = [{ names: ['findAndModify', 'findandmodify'], isWrite: true, run: findAndModify }];
