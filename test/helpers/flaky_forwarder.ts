/**
 * A TCP forwarder in front of an S3 server that resets the connection carrying the reply
 * to a GET whose request line contains `needle`, after `afterBytes` bytes of that reply,
 * the first `times` such GETs (Infinity: every one). What a flaky network or a load
 * balancer dropping a connection does to a download, on demand.
 */
import net from 'node:net';

export interface FlakyForwarder {
  /** Point AWS_ENDPOINT_URL_S3 here. */
  readonly endpoint: string;
  /** How many replies it has cut so far. */
  cuts(): number;
  close(): void;
}

export async function startFlakyForwarder(port: number, needle: string, afterBytes: number, times = 1): Promise<FlakyForwarder> {
  let cuts = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    let armed = false;
    let sent = 0;
    client.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      if (cuts < times && text.startsWith('GET ') && (text.split('\r\n')[0] ?? '').includes(needle)) {
        armed = true;
        sent = 0;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (armed) {
        const room = afterBytes - sent;
        if (chunk.length >= room) {
          client.write(chunk.subarray(0, room));
          cuts += 1;
          armed = false;
          client.resetAndDestroy();
          upstream.destroy();
          return;
        }
        sent += chunk.length;
      }
      client.write(chunk);
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const listening = (server.address() as net.AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${listening}`,
    cuts: () => cuts,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
