/** The replay's ReplayTarget over a driver MongoClient (oplog_replay.ts). */
import { MongoServerError, type Document, type MongoClient } from 'mongodb';
import type { ApplyOpsOutcome, ReplayTarget } from './oplog_replay.js';

export class DriverReplayTarget implements ReplayTarget {
  constructor(private readonly client: MongoClient) {}

  async applyOps(entries: Document[]): Promise<ApplyOpsOutcome> {
    try {
      // j: true, so that a replay that reports success is in the target's journal.
      // alwaysUpsert: false: an update whose document is gone fails, and the replay judges
      // it (oplog_replay.ts) instead of mongod 7.0's default inserting a partial document.
      await this.client.db('admin').command({ applyOps: entries, alwaysUpsert: false, writeConcern: { w: 1, j: true } });
      return { ok: true };
    } catch (err) {
      if (!(err instanceof MongoServerError)) throw err;
      const results = err.errorResponse['results'];
      return {
        ok: false,
        code: typeof err.code === 'number' ? err.code : 0,
        codeName: String(err.codeName ?? ''),
        errmsg: err.message,
        results: Array.isArray(results) ? results.map((r) => r === true) : undefined,
      };
    }
  }

  async createIndexes(db: string, collection: string, indexes: Document[]): Promise<void> {
    if (indexes.length === 0) return;
    await this.client.db(db).command({ createIndexes: collection, indexes, writeConcern: { w: 1, j: true } });
  }

  async collections(db: string): Promise<Map<string, string | undefined>> {
    const infos = await this.client.db(db).listCollections({}, { nameOnly: false }).toArray();
    const out = new Map<string, string | undefined>();
    for (const info of infos) {
      const uuid = (info as { info?: { uuid?: { buffer?: Uint8Array } } }).info?.uuid;
      out.set(info.name, uuid?.buffer === undefined ? undefined : Buffer.from(uuid.buffer).toString('hex'));
    }
    return out;
  }
}
