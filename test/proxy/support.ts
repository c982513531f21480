/** What the proxy tests share: a tiny interceptor, a proxy factory, and a raw wire client. */
import net from 'node:net';
import { once } from 'node:events';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { pino, type Logger } from 'pino';
import { Writable } from 'node:stream';
import { ProxyServer, type ProxyOptions } from '../../src/proxy/proxy_server.js';
import type { ClientInfo, Interceptor } from '../../src/proxy/interceptor.js';
import type { CommandRequest, Document } from '../../src/wire/command_message.js';

export interface RecordingInterceptor extends Interceptor {
  readonly calls: Array<{ name: string; db: string; client: ClientInfo; at: number }>;
}

/**
 * Claims `proxyEcho` (answers `{ok: 1, echoed: <command>}`), `proxySlow` (the same after
 * `proxySlow` milliseconds, like a blocking backupStart) and `proxyThrow` (a buggy
 * interceptor). Everything else goes to mongod.
 */
export function testInterceptor(): RecordingInterceptor {
  const calls: RecordingInterceptor['calls'] = [];
  return {
    calls,
    intercepts: (name) => name === 'proxyEcho' || name === 'proxySlow' || name === 'proxyThrow',
    async run(request: CommandRequest, client: ClientInfo): Promise<Document> {
      calls.push({ name: request.name, db: request.db, client, at: Date.now() });
      if (request.name === 'proxyThrow') throw new Error('interceptor bug');
      if (request.name === 'proxySlow') await sleep(Number(request.command['proxySlow']));
      const echoed: Document = { ...request.command };
      delete echoed['lsid'];
      delete echoed['$clusterTime'];
      delete echoed['$readPreference'];
      return { ok: 1, echoed };
    },
  };
}

/** Log lines captured as objects, so tests can assert what was logged. */
export function captureLogger(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

/** `options` adds to (or overrides) the defaults, e.g. a short `partialMessageTimeoutMS`. */
export async function startProxy(upstreamPort: number, interceptor?: Interceptor, log?: Logger, options: Partial<ProxyOptions> = {}): Promise<ProxyServer> {
  return ProxyServer.start({
    upstream: { host: '127.0.0.1', port: upstreamPort },
    port: 0,
    bind: '127.0.0.1',
    ...(interceptor === undefined ? {} : { interceptor }),
    log: log ?? pino({ level: 'silent' }),
    ...options,
  });
}

export function uri(port: number, extra = ''): string {
  return `mongodb://127.0.0.1:${port}/?directConnection=true${extra}`;
}

/** A server whose one accepted socket the test holds: an upstream the test drives byte by byte. */
export async function scriptedUpstream(): Promise<{ port: number; accepted: Promise<net.Socket>; close(): void }> {
  const sockets: net.Socket[] = [];
  let onAccept!: (socket: net.Socket) => void;
  const accepted = new Promise<net.Socket>((resolve) => (onAccept = resolve));
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    sockets.push(socket);
    onAccept(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted,
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

/**
 * Writes `parts` one after the other, letting the event loop turn between them, so
 * that an in-process proxy most likely reads each in its own read (a loopback write is
 * in the peer's receive buffer when write() returns). Nothing is asserted on it: the
 * kernel may still merge reads, and the answers must be right either way. The framer's
 * own test (client_stream.test.ts) covers every cut deterministically.
 */
export async function sendApart(socket: net.Socket, parts: Buffer[]): Promise<void> {
  socket.setNoDelay(true);
  for (const part of parts) {
    await new Promise<void>((resolve, reject) => socket.write(part, (err) => (err ? reject(err) : resolve())));
    await nextTurn();
    await nextTurn();
  }
}

export { opMsg, decodeReply, RawClient, type DecodedReply } from '../helpers/raw_client.js';
