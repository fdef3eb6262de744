// The link proxy of `raftlog dev --chaos`: it forwards bytes both ways, a cut drops open
// connections and refuses new ones, a heal lets new ones through again.

import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { LinkProxy } from '../../src/cli/chaos/proxy.js';
import { until } from './cli-io.js';

let echo: Server | undefined;
let proxy: LinkProxy | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const socket of sockets) socket.destroy();
  sockets.length = 0;
  await proxy?.close();
  await new Promise((resolve) => (echo ? echo.close(resolve) : resolve(undefined)));
});

async function startEcho(): Promise<number> {
  echo = createServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => echo!.listen(0, '127.0.0.1', resolve));
  return (echo.address() as { port: number }).port;
}

/** Connects through the proxy; `events` records what the client saw. */
function connect(port: number) {
  const events = { data: '', closed: false, error: false };
  const socket = createConnection({ host: '127.0.0.1', port });
  sockets.push(socket);
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (events.data += chunk));
  socket.on('close', () => (events.closed = true));
  socket.on('error', () => (events.error = true));
  return { socket, events };
}

describe('chaos link proxy', () => {
  it('forwards, cuts open and new connections, and heals', async () => {
    proxy = await LinkProxy.listen({ listenPort: 0, targetPort: await startEcho() });

    const first = connect(proxy.port);
    first.socket.write('ping');
    await until(() => first.events.data === 'ping', 'the echo through the proxy');
    expect(proxy.connections).toBe(1);

    proxy.cut();
    expect(proxy.isCut).toBe(true);
    await until(() => first.events.closed, 'the open connection to be dropped by the cut');

    const during = connect(proxy.port);
    during.socket.write('lost');
    await until(() => during.events.closed, 'a new connection to be refused while cut');
    expect(during.events.data).toBe('');

    proxy.heal();
    const after = connect(proxy.port);
    after.socket.write('pong');
    await until(() => after.events.data === 'pong', 'the echo after the heal');
  });
});
