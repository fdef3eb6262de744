// The discrete-event queue: events ordered by (virtual time, insertion sequence), so that two
// events at the same instant always run in the order they were scheduled.

import type { Message, NodeId } from '../../src/raft/index.js';

export enum EventKind {
  /** A node's clock ticks. */
  Tick = 0,
  /** A message arrives at `message.to`. */
  Deliver = 1,
  /** The head of a node's disk queue becomes durable. */
  DiskDone = 2,
  /** A harness callback (fault injection, clients). */
  Call = 3,
}

/** One shape for every kind, so the queue stays monomorphic. */
export interface SimEvent {
  timeMs: number;
  seq: number;
  kind: EventKind;
  node: NodeId;
  /** The incarnation of `node` (the sender, for Deliver) when scheduled: stale ones are dropped. */
  incarnation: number;
  /** Deliver: the receiver's incarnation at send time. */
  targetIncarnation: number;
  message: Message | null;
  call: (() => void) | null;
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.timeMs < b.timeMs || (a.timeMs === b.timeMs && a.seq < b.seq);
}

/** A binary min-heap of events. */
export class EventQueue {
  private readonly heap: SimEvent[] = [];
  private nextSeq = 0;

  get size(): number {
    return this.heap.length;
  }

  push(event: Omit<SimEvent, 'seq'>): void {
    const e = event as SimEvent;
    e.seq = this.nextSeq++;
    const heap = this.heap;
    let i = heap.length;
    heap.push(e);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(e, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = e;
  }

  peek(): SimEvent | undefined {
    return this.heap[0];
  }

  pop(): SimEvent | undefined {
    const heap = this.heap;
    const top = heap[0];
    if (top === undefined) return undefined;
    const last = heap.pop()!;
    if (heap.length === 0) return top;
    let i = 0;
    const n = heap.length;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && before(heap[right]!, heap[left]!) ? right : left;
      if (!before(heap[child]!, last)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}
