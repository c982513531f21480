/**
 * The users of a dev server, kept where mongod keeps them: one document per user in
 * `admin.system.users`, `_id: "<db>.<user>"`, with mongod's credential shape
 * (src/mongo/db/auth/user_document_parser.cpp; `credentials: {SCRAM-SHA-1: {...},
 * SCRAM-SHA-256: {...}}`). Read from the collection on every lookup, so a user dropped
 * or changed loses its privileges on every connection at once, as mongod's user cache
 * invalidation gives.
 *
 * Writes go through the document-write helpers (handlers/write.ts), so on a replica set
 * each is logged in the oplog in its own transaction, as mongod's user management is
 * (its writes to admin.system.users pass the OpObserver like any other,
 * src/mongo/db/auth/authz_manager_external_state_d.cpp).
 */
import { UUID } from 'bson';
import type { Document } from '../bson.js';
import { decodeDocument } from '../bson.js';
import type { ServerState } from '../state.js';
import { deleteOne, insertOne, replaceOne } from '../handlers/write.js';
import { makeCredential, SCRAM_MECHANISMS, type ScramCredential, type ScramMechanism } from './scram.js';
import type { RoleName } from './privileges.js';

export const USERS_NS = 'admin.system.users';

export interface StoredUser {
  user: string;
  db: string;
  roles: RoleName[];
  credentials: Partial<Record<ScramMechanism, ScramCredential>>;
  customData?: Document;
}

const userId = (user: string, db: string): string => `${db}.${user}`;

function toStoredUser(doc: Document): StoredUser {
  const roles = Array.isArray(doc['roles']) ? (doc['roles'] as Document[]).map((r) => ({ role: String(r['role']), db: String(r['db']) })) : [];
  const credentials = (doc['credentials'] ?? {}) as StoredUser['credentials'];
  const user: StoredUser = { user: String(doc['user']), db: String(doc['db']), roles, credentials };
  if (doc['customData'] !== undefined) user.customData = doc['customData'] as Document;
  return user;
}

export class UserStore {
  constructor(private readonly state: ServerState) {}

  private get engine(): ServerState['engine'] {
    return this.state.engine;
  }

  /** True while no user exists: the localhost exception applies (auth/authorization_manager_impl.cpp). */
  isEmpty(): boolean {
    return this.engine.countRecords(USERS_NS) === 0;
  }

  find(user: string, db: string): StoredUser | undefined {
    const entry = this.engine.findRecordById(USERS_NS, userId(user, db));
    return entry === undefined ? undefined : toStoredUser(decodeDocument(entry.doc));
  }

  /** Every user of `db`, or of every database when `db` is undefined. */
  list(db: string | undefined): StoredUser[] {
    const out: StoredUser[] = [];
    for (const entry of this.engine.scanRecords(USERS_NS)) {
      const user = toStoredUser(decodeDocument(entry.doc));
      if (db === undefined || user.db === db) out.push(user);
    }
    return out;
  }

  /** Credentials for the mechanisms asked (both by default, as mongod's createUser). */
  static credentials(user: string, password: string, mechanisms: readonly ScramMechanism[] = SCRAM_MECHANISMS): StoredUser['credentials'] {
    const out: StoredUser['credentials'] = {};
    for (const mechanism of mechanisms) out[mechanism] = makeCredential(mechanism, user, password);
    return out;
  }

  /** Inserts a new user; DuplicateKey (from storage) when it exists. */
  insert(user: StoredUser): void {
    const doc: Document = {
      _id: userId(user.user, user.db),
      userId: new UUID(),
      user: user.user,
      db: user.db,
      credentials: user.credentials,
      roles: user.roles,
    };
    if (user.customData !== undefined) doc['customData'] = user.customData;
    const { engine } = this;
    if (engine.getCollection(USERS_NS) === undefined) engine.createCollection(USERS_NS);
    engine.writeTransaction(() => insertOne(this.state, USERS_NS, doc), { sync: true });
  }

  /** Applies `change` to a stored user; false when there is no such user. */
  update(user: string, db: string, change: (doc: Document) => void): boolean {
    const entry = this.engine.findRecordById(USERS_NS, userId(user, db));
    if (entry === undefined) return false;
    const before = decodeDocument(entry.doc);
    const doc = decodeDocument(entry.doc);
    change(doc);
    this.engine.writeTransaction(() => replaceOne(this.state, USERS_NS, { rid: entry.rid, doc: before }, doc, false), { sync: true });
    return true;
  }

  remove(user: string, db: string): boolean {
    const entry = this.engine.findRecordById(USERS_NS, userId(user, db));
    if (entry === undefined) return false;
    this.engine.writeTransaction(() => deleteOne(this.state, USERS_NS, { rid: entry.rid, doc: decodeDocument(entry.doc) }), { sync: true });
    return true;
  }
}
