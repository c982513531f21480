/**
 * Whether mongod enforces authentication, asked on a connection of the proxy's own that
 * carries no credentials: `{listDatabases: 1, nameOnly: true}` answered 13 ("Command
 * listDatabases requires authentication", src/mongo/db/commands.cpp) means it does.
 * Asked anew at each authorization that has no answer cached for its client (a mongod
 * restarted with --auth is seen at once), on this side pool, never on the client's own
 * connection, where it would wait behind whatever the client sent before (a write held
 * by an fsync lock). A failed ask counts as "enforced": authorization then fails closed.
 */
import { MongoClient } from 'mongodb';
import { ConnectionString } from 'mongodb-connection-string-url';
import type { AuthEnforcement } from '../commands/authorization.js';

/** The upstream URI without its credentials (TLS and other options kept). */
function anonymousUri(upstreamUri: string): string {
  const uri = new ConnectionString(upstreamUri);
  uri.username = '';
  uri.password = '';
  for (const option of ['authSource', 'authMechanism', 'authMechanismProperties']) uri.searchParams.delete(option);
  return uri.toString();
}

export class DriverAuthEnforcement implements AuthEnforcement {
  readonly #client: MongoClient;

  constructor(upstreamUri: string) {
    this.#client = new MongoClient(anonymousUri(upstreamUri), { directConnection: true, maxPoolSize: 1, serverSelectionTimeoutMS: 10_000 });
  }

  async enforced(): Promise<boolean> {
    try {
      await this.#client.db('admin').command({ listDatabases: 1, nameOnly: true });
      return false;
    } catch {
      // 13, or anything else (mongod unreachable): fail closed.
      return true;
    }
  }

  close(): Promise<void> {
    return this.#client.close();
  }
}
