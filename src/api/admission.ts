// Admission of request bodies. A node holds at most `bodyBytesInFlightMax` bytes of request
// bodies that it is receiving or answering: one produce body becomes several copies on its way to
// disk and to the followers, so this is what bounds the memory a burst of large requests takes
// (docs/operations.md, "Memory"). A request that does not fit waits, unread, in arrival order
// (TCP holds its body back meanwhile), and is refused 503 BUSY if it still does not fit after
// `admissionWaitMsMax`. A body without a content-length (chunked) counts as the largest allowed.

import type { IncomingMessage } from 'node:http';
import { BrokerError } from '../broker/errors.js';
import { type buildApp, sendError } from './app.js';

type App = ReturnType<typeof buildApp>;

export interface AdmissionLimits {
  /** Bytes of request bodies admitted and not yet answered, node-wide. */
  bodyBytesInFlightMax: number;
  /** How long a request may wait to be admitted; below bodyIdleTimeoutMs, so it is never a 408. */
  admissionWaitMsMax: number;
  /** What a body without content-length counts as (maxRequestBytes). */
  chunkedBodyBytes: number;
}

export const ADMISSION_LIMITS_DEFAULT: Omit<AdmissionLimits, 'chunkedBodyBytes'> = Object.freeze({
  bodyBytesInFlightMax: 64 * 1024 * 1024,
  admissionWaitMsMax: 5000,
});

interface Waiter {
  bytes: number;
  admit: () => void;
}

export class BodyAdmission {
  /** Invariant: 0 <= inFlightBytes, and <= bodyBytesInFlightMax unless one body alone is larger. */
  inFlightBytes = 0;
  /** Requests that waited, and those refused after waiting: for metrics. */
  waited = 0;
  refused = 0;
  private readonly queue: Waiter[] = [];

  constructor(
    app: App,
    private readonly limits: AdmissionLimits,
    private readonly nodeId: number,
  ) {
    app.addHook('onRequest', async (request, reply) => {
      const bytes = this.bodyBytes(request.raw);
      if (bytes === 0) return;
      if (!(await this.admit(bytes))) {
        this.refused++;
        reply.header('connection', 'close');
        return sendError(
          reply,
          new BrokerError(
            'BUSY',
            `node ${this.nodeId} is receiving ${this.inFlightBytes} bytes of request bodies ` +
              `(at most ${this.limits.bodyBytesInFlightMax}); retry`,
          ),
        );
      }
      reply.raw.once('close', () => this.release(bytes));
    });
  }

  private bodyBytes(request: IncomingMessage): number {
    const length = request.headers['content-length'];
    if (length !== undefined) return Number(length) || 0;
    return request.headers['transfer-encoding'] !== undefined ? this.limits.chunkedBodyBytes : 0;
  }

  /** Admits at once when the body fits and nobody waits before it; else waits its turn. */
  private admit(bytes: number): Promise<boolean> | boolean {
    if (this.queue.length === 0 && this.fits(bytes)) {
      this.inFlightBytes += bytes;
      return true;
    }
    this.waited++;
    return new Promise((resolve) => {
      const waiter: Waiter = {
        bytes,
        admit: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        const at = this.queue.indexOf(waiter);
        if (at >= 0) this.queue.splice(at, 1);
        resolve(false);
        this.admitWaiting(); // the head may have left: the next ones may fit
      }, this.limits.admissionWaitMsMax);
      this.queue.push(waiter);
    });
  }

  private fits(bytes: number): boolean {
    // One body larger than the bound alone is still admitted when nothing else is in flight.
    return this.inFlightBytes === 0 || this.inFlightBytes + bytes <= this.limits.bodyBytesInFlightMax;
  }

  private release(bytes: number): void {
    this.inFlightBytes -= bytes;
    this.admitWaiting();
  }

  private admitWaiting(): void {
    while (this.queue.length > 0 && this.fits(this.queue[0]!.bytes)) {
      const waiter = this.queue.shift()!;
      this.inFlightBytes += waiter.bytes;
      waiter.admit();
    }
  }
}
