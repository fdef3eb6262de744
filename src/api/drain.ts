// Draining a node (SIGTERM). From the moment it starts the node takes no new connection, refuses
// any new request on a connection it already has (503 BUSY in the contract's shape), answers
// every request it had accepted, and closes each keep-alive connection after its last answer
// (`connection: close`), so clients move to another node without a reset or a timeout. Streams
// are not waited for: they end when the node stops.

import { Server as NetServer } from 'node:net';
import { BrokerError } from '../broker/errors.js';
import { type buildApp, sendError } from './app.js';

type App = ReturnType<typeof buildApp>;

/** Routes whose answer lasts as long as the client wants it: not counted as in flight. */
const STREAM_ROUTE_SUFFIX = '/stream';

export class HttpDrain {
  /** Set once the drain began; never cleared. */
  draining = false;
  /** Accepted requests not answered yet (streams excluded). Invariant: >= 0. */
  inFlight = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly app: App,
    private readonly nodeId: number,
  ) {
    app.addHook('onRequest', async (request, reply) => {
      if (this.draining) {
        reply.header('connection', 'close');
        return sendError(
          reply,
          new BrokerError('BUSY', `node ${this.nodeId} is shutting down; retry on another node`),
        );
      }
      if (request.routeOptions.url?.endsWith(STREAM_ROUTE_SUFFIX)) return;
      this.inFlight++;
      reply.raw.once('close', this.finished);
    });
    app.addHook('onSend', async (_request, reply, payload) => {
      if (this.draining) reply.header('connection', 'close');
      return payload;
    });
  }

  /**
   * Stops taking connections and requests. Idle keep-alive connections stay open for now: a
   * client may be writing its next request on one this instant, and that request should get a
   * coded answer (BUSY, connection: close), not a reset. The caller closes them at the end.
   */
  begin(): void {
    if (this.draining) return;
    this.draining = true;
    // http.Server#close also closes idle keep-alive connections at once (Node 19+), which resets
    // a request written on one just now; net.Server#close only stops listening.
    NetServer.prototype.close.call(this.app.server);
  }

  /** Resolves true once every accepted request was answered, false if `timeoutMs` passed first. */
  idle(timeoutMs: number): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      this.idleWaiters.push(waiter);
    });
  }

  private readonly finished = (): void => {
    this.inFlight--;
    if (this.inFlight > 0 || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const waiter of waiters) waiter();
  };
}
