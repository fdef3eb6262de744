// The gate every request passes before its route: one onRequest hook for two node-wide concerns.
//
// Admission. The node holds at most bodyBytesInFlightMax bytes of request bodies it is receiving
// or answering: one produce body becomes several copies on its way to disk and to the followers,
// so this is what bounds the memory a burst of large requests takes (docs/operations.md, "Memory
// and backpressure"). A request that does not fit waits, unread (TCP holds its body back), in
// arrival order, in a queue of at most queueMax; it is refused 503 BUSY if it still does not fit
// after admissionWaitMsMax, or at once when the queue is full. A body without a content-length
// (chunked) counts as the largest allowed. A client that leaves while queued takes its place
// with it; one that leaves after admission releases its bytes when its answer is done.
//
// Draining (SIGTERM). From beginDrain() on the node takes no new connection, refuses any new
// request on a connection it has (503 BUSY), refuses what waits in the admission queue, answers
// every request it had admitted, and closes each keep-alive connection after its last answer
// (`connection: close`), so clients move to another node without a reset or a timeout. Streams
// are neither counted nor waited for: they end when the node stops.

import { Server as NetServer } from 'node:net';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { BrokerError } from '../broker/errors.js';
import { assert } from '../raft/errors.js';
import type { buildApp } from './app.js';
import { sendError } from './error-reply.js';

type App = ReturnType<typeof buildApp>;

export interface RequestGateLimits {
  /** Bytes of request bodies admitted and not yet answered, node-wide. */
  bodyBytesInFlightMax: number;
  /** How long a request may wait to be admitted; below bodyIdleTimeoutMs, so never a 408. */
  admissionWaitMsMax: number;
  /** Requests that may wait for admission at once; past it, 503 BUSY at once. */
  queueMax: number;
  /** What a body without content-length counts as (maxRequestBytes). */
  chunkedBodyBytes: number;
}

export const REQUEST_GATE_LIMITS_DEFAULT: Readonly<Omit<RequestGateLimits, 'chunkedBodyBytes'>> =
  Object.freeze({
    bodyBytesInFlightMax: 64 * 1024 * 1024,
    admissionWaitMsMax: 5000,
    queueMax: 1024,
  });

/** Routes whose answer lasts as long as the client wants it: not counted as in flight. */
const STREAM_ROUTE_SUFFIX = '/stream';

/** One request from the gate to its answer. */
interface Ticket {
  bytes: number;
  state: 'queued' | 'admitted' | 'gone';
  reply: FastifyReply | null;
  done: HookHandlerDoneFunction | null;
  timer: NodeJS.Timeout | null;
}

export class RequestGate {
  draining = false;
  /** Admitted requests not answered yet (streams excluded). Invariant: >= 0. */
  inFlight = 0;
  /** Bytes of admitted bodies not answered yet. Invariant: >= 0. */
  inFlightBytes = 0;
  /** For metrics: requests that waited for admission, and requests refused BUSY by the gate. */
  waited = 0;
  refusedBusy = 0;
  private readonly queue: Ticket[] = [];
  /** Index of the first live ticket in `queue` (the rest before it are gone). */
  private queueHead = 0;
  private queued = 0;
  private app: App | null = null;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly limits: RequestGateLimits,
    private readonly nodeId: number,
  ) {}

  /** Installs the gate's hooks on `app` (buildApp does, before any route). */
  install(app: App): void {
    this.app = app;
    app.addHook('onRequest', this.onRequest);
    app.addHook('onSend', (_request, reply, payload, done) => {
      if (this.draining) reply.header('connection', 'close');
      done(null, payload);
    });
  }

  private readonly onRequest = (
    request: FastifyRequest,
    reply: FastifyReply,
    done: HookHandlerDoneFunction,
  ): void => {
    if (this.draining) {
      this.refuse(reply, `node ${this.nodeId} is shutting down; retry on another node`);
      return;
    }
    if (request.routeOptions.url?.endsWith(STREAM_ROUTE_SUFFIX)) {
      done();
      return;
    }
    const ticket: Ticket = { bytes: this.bodyBytes(request), state: 'queued', reply, done, timer: null };
    reply.raw.once('close', () => this.closed(ticket));
    if (ticket.bytes === 0 || (this.queued === 0 && this.fits(ticket.bytes))) {
      this.admit(ticket);
      return;
    }
    if (this.queued >= this.limits.queueMax) {
      ticket.state = 'gone';
      this.refuse(reply, `${this.queued} requests wait for room already; retry`);
      return;
    }
    this.waited++;
    this.queued++;
    this.queue.push(ticket);
    ticket.timer = setTimeout(() => {
      this.leaveQueue(ticket);
      this.refuse(
        reply,
        `node ${this.nodeId} holds ${this.inFlightBytes} bytes of request bodies ` +
          `(at most ${this.limits.bodyBytesInFlightMax}); retry`,
      );
      this.admitWaiting(); // the head may have left: the next ones may fit
    }, this.limits.admissionWaitMsMax);
  };

  private bodyBytes(request: FastifyRequest): number {
    const length = request.headers['content-length'];
    if (length !== undefined) return Number(length) || 0;
    return request.headers['transfer-encoding'] !== undefined ? this.limits.chunkedBodyBytes : 0;
  }

  private fits(bytes: number): boolean {
    // One body larger than the bound alone is still admitted when nothing else is in flight.
    return this.inFlightBytes === 0 || this.inFlightBytes + bytes <= this.limits.bodyBytesInFlightMax;
  }

  private admit(ticket: Ticket): void {
    ticket.state = 'admitted';
    this.inFlight++;
    this.inFlightBytes += ticket.bytes;
    const done = ticket.done!;
    ticket.done = null;
    ticket.reply = null;
    done();
  }

  /** The answer is done, or the client left: whatever the ticket held goes back. */
  private closed(ticket: Ticket): void {
    if (ticket.state === 'queued') {
      this.leaveQueue(ticket);
      this.admitWaiting();
      return;
    }
    if (ticket.state !== 'admitted') return;
    ticket.state = 'gone';
    this.inFlight--;
    this.inFlightBytes -= ticket.bytes;
    assert(this.inFlight >= 0 && this.inFlightBytes >= 0, 'request gate: released more than it admitted');
    this.admitWaiting();
    if (this.inFlight === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const waiter of waiters) waiter();
    }
  }

  private leaveQueue(ticket: Ticket): void {
    if (ticket.state !== 'queued') return;
    ticket.state = 'gone';
    if (ticket.timer) clearTimeout(ticket.timer);
    this.queued--;
  }

  /** Admits queued requests, oldest first, while they fit. */
  private admitWaiting(): void {
    while (this.queueHead < this.queue.length) {
      const head = this.queue[this.queueHead]!;
      if (head.state === 'queued') {
        if (!this.fits(head.bytes)) break;
        this.leaveQueue(head);
        this.admit(head);
      }
      this.queueHead++;
    }
    // Drop what is behind the head once it is most of the array, so the queue stays compact.
    if (this.queueHead > 64 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
  }

  private refuse(reply: FastifyReply, message: string): void {
    this.refusedBusy++;
    reply.header('connection', 'close');
    sendError(reply, new BrokerError('BUSY', message));
  }

  /** Requests waiting for admission now. */
  get waiting(): number {
    return this.queued;
  }

  /**
   * Stops taking connections and requests, and refuses what waits for admission. Idle keep-alive
   * connections stay open for now: a client may be writing its next request on one this instant,
   * and that request should get a coded answer (BUSY, connection: close), not a reset. The
   * caller closes them at the end.
   */
  beginDrain(): void {
    if (this.draining) return;
    this.draining = true;
    // http.Server#close also closes idle keep-alive connections at once (Node 19+), which resets
    // a request written on one just now; net.Server#close only stops listening.
    if (this.app) NetServer.prototype.close.call(this.app.server);
    for (let i = this.queueHead; i < this.queue.length; i++) {
      const ticket = this.queue[i]!;
      if (ticket.state !== 'queued') continue;
      this.leaveQueue(ticket);
      this.refuse(ticket.reply!, `node ${this.nodeId} is shutting down; retry on another node`);
    }
    this.queue.length = 0;
    this.queueHead = 0;
  }

  /** Resolves true once every admitted request was answered, false if `timeoutMs` passed first. */
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
}
