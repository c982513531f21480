/**
 * The S3 side of a copy thread (copy_worker.ts loads it at its first upload job, so a
 * local copy never loads the SDK): the thread's own S3 client, built from the settings
 * (credentials resolve here, through the SDK's chain, from the env the thread
 * inherited), and its part buffers, reused for every file it uploads.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { FileOutcome } from '../backup/file_copy.js';
import type { SourceFile } from '../backup/copy_types.js';
import type { UploadWorkerSettings } from '../backup/copy_messages.js';
import { createS3Client } from './s3_client.js';
import { isS3Url } from './s3_location.js';
import { PartBuffers } from './part_buffers.js';
import { uploadOneFile, type ObjectTarget, type UploadHooks } from './object_upload.js';
import { copyOnServerOrUpload } from './server_copy.js';

export class UploadWorker {
  readonly #client: S3Client;
  readonly #buffers: PartBuffers;

  constructor(
    private readonly settings: UploadWorkerSettings,
    private readonly chunkSize: number,
  ) {
    // One socket per part in flight, and one for the request that begins or ends an upload.
    this.#client = createS3Client(settings.settings, { maxSockets: settings.partsInFlight + 1 });
    this.#buffers = new PartBuffers(settings.partsInFlight);
  }

  /** Uploads `file` as `target`, or copies it on the server from its base on S3. */
  async upload(file: SourceFile, target: ObjectTarget, hooks: UploadHooks, stop: AbortSignal): Promise<FileOutcome> {
    const ctx = { client: this.#client, buffers: this.#buffers, chunkSize: this.chunkSize, minPartSize: this.settings.minPartSize, stop };
    const reuse = file.reuse;
    if (reuse === undefined) return uploadOneFile(file, target, ctx, hooks);
    if (!isS3Url(reuse.from)) {
      const outcome = await uploadOneFile(file, target, ctx, hooks);
      const why = `the base's copy ${reuse.from} is not on S3: only a base on S3 can be copied from on the server`;
      return 'copied' in outcome ? { copied: { ...outcome.copied, notReused: why } } : outcome;
    }
    return copyOnServerOrUpload(file, target, ctx, hooks, this.settings);
  }

  /** Closes the client's idle sockets. */
  close(): void {
    this.#client.destroy();
  }
}
