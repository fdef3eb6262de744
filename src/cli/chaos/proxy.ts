// A TCP proxy for one directed node-to-node link of `raftlog dev --chaos`: node `from` dials `to`
// through it (its --peers URL for `to` points here). Cutting it drops every open connection and
// refuses new ones until it is healed; the dialer sees a broken link, as with a network partition.

import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface LinkProxyOptions {
  /** Port to listen on (127.0.0.1); 0 picks a free one. */
  listenPort: number;
  /** Where the target node serves (127.0.0.1). */
  targetPort: number;
  /** Open connection pairs at most; beyond, new ones are refused (node links use a handful). */
  connectionsMax?: number;
}

const CONNECTIONS_MAX_DEFAULT = 256;
const HOST = '127.0.0.1';

export class LinkProxy {
  private readonly server: Server;
  private readonly targetPort: number;
  private readonly connectionsMax: number;
  /** Both sockets of every open pair. */
  private readonly sockets = new Set<Socket>();
  private cutNow = false;
  private closed = false;

  private constructor(server: Server, options: LinkProxyOptions) {
    this.server = server;
    this.targetPort = options.targetPort;
    this.connectionsMax = options.connectionsMax ?? CONNECTIONS_MAX_DEFAULT;
    server.on('connection', (client) => this.accept(client));
  }

  static async listen(options: LinkProxyOptions): Promise<LinkProxy> {
    const server = createServer({ noDelay: true });
    const proxy = new LinkProxy(server, options);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.listenPort, HOST, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return proxy;
  }

  /** The port it listens on. */
  get port(): number {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy is not listening');
    return address.port;
  }

  get isCut(): boolean {
    return this.cutNow;
  }

  /** Open connection pairs. */
  get connections(): number {
    return this.sockets.size / 2;
  }

  /** Drops every open connection and refuses new ones. */
  cut(): void {
    this.cutNow = true;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  heal(): void {
    this.cutNow = false;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.cutNow || this.closed || this.sockets.size / 2 >= this.connectionsMax) {
      client.destroy();
      return;
    }
    const target = createConnection({ host: HOST, port: this.targetPort, noDelay: true });
    this.sockets.add(client);
    this.sockets.add(target);
    const drop = () => {
      client.destroy();
      target.destroy();
      this.sockets.delete(client);
      this.sockets.delete(target);
    };
    client.on('error', drop);
    target.on('error', drop);
    client.on('close', drop);
    target.on('close', drop);
    client.pipe(target);
    target.pipe(client);
  }
}
