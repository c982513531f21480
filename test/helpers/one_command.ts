/** One admin command on a client of its own, closed after: what a user typing one command sees. */
import { MongoClient, type Document } from 'mongodb';

export async function oneAdminCommand(uri: string, command: Document): Promise<Document> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 20_000 });
  try {
    return await client.db('admin').command(command);
  } finally {
    await client.close();
  }
}
