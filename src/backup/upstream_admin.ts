/** The engine's UpstreamAdmin over a driver MongoClient: the proxy's one client to mongod. */
import type { MongoClient } from 'mongodb';
import type { UpstreamAdmin } from './backup_engine.js';

export class DriverUpstreamAdmin implements UpstreamAdmin {
  constructor(private readonly client: MongoClient) {}

  /** The hosts of the client's URI, e.g. '127.0.0.1:27018'. */
  get host(): string {
    return this.client.options.hosts.map((h) => h.toString()).join(',');
  }

  async serverVersion(): Promise<string> {
    const info = await this.client.db('admin').command({ buildInfo: 1 });
    return String(info['version'] ?? 'unknown');
  }
}
