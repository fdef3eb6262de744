// Backpressure on produce. A partition leader's core takes no proposal that would take its
// uncommitted entries over maxUncommittedBytes (RawNode.hasRoomFor). A produce that does not fit
// waits here, before anything is encoded or counted, in a queue per partition: first come, first
// served, and a newcomer queues behind whoever waits. The head is woken when an apply makes room
// (or at least every ROOM_POLL_MS: no-op entries free room too); once it has proposed, or given
// up, it calls passed() and the next one looks. A waiter answers 429 THROTTLED if its timeoutMs
// passes first. What waits is bounded per node: a request that would take the waiting bytes over
// waitingBytesMax is refused at once with 503 BUSY, so a flood of large requests costs a bounded
// amount of memory. Nothing is appended for a refused request.

import { BrokerError } from './errors.js';
import type { PartitionMachine } from './partition-machine.js';

/** Waiting batches a node holds at most, by default: as much again as one group's budget. */
export const PRODUCE_WAITING_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;
/** The head of a queue looks again this often even when no apply wakes it. */
const ROOM_POLL_MS = 20;

export interface RoomWait {
  /** Whether the batch fits now (RawNode.hasRoomFor), or waiting is pointless (leadership lost). */
  hasRoom: () => boolean;
  batchBytes: number;
  deadlineMs: number;
  timeoutMs: number;
  /** topic/partition, for messages. */
  partition: () => string;
}

interface Waiter {
  wait: RoomWait;
  resolve: () => void;
  reject: (error: BrokerError) => void;
  timer: NodeJS.Timeout;
}

interface PartitionQueue {
  machine: PartitionMachine;
  waiters: Waiter[];
  unsubscribe: () => void;
  poll: NodeJS.Timeout;
}

export class ProduceBackpressure {
  /** Bytes of batches waiting for room now. Invariant: 0 <= waitingBytes <= waitingBytesMax. */
  waitingBytes = 0;
  /** Requests that waited, and those refused with THROTTLED or BUSY: for metrics. */
  waited = 0;
  throttled = 0;
  refusedBusy = 0;
  private readonly queues = new Map<number, PartitionQueue>();

  constructor(readonly waitingBytesMax = PRODUCE_WAITING_BYTES_MAX_DEFAULT) {}

  /** Whether a produce must queue: no room now, or others queue before it (first come first served). */
  mustWait(groupId: number, hasRoom: boolean): boolean {
    return !hasRoom || this.queues.has(groupId);
  }

  /**
   * Queues a produce of the partition `groupId` until it is at the head and its batch fits.
   * Throws BUSY at once past the node's waiting bound, THROTTLED at the deadline, NO_LEADER when
   * the partition closes. Once it resolves the caller must propose (or give up) and then call
   * passed(groupId) in the same synchronous run.
   */
  waitForRoom(machine: PartitionMachine, groupId: number, wait: RoomWait): Promise<void> {
    if (this.waitingBytes + wait.batchBytes > this.waitingBytesMax) {
      this.refusedBusy++;
      return Promise.reject(
        new BrokerError(
          'BUSY',
          `this node holds ${this.waitingBytes} bytes of produce requests waiting for room ` +
            `(at most ${this.waitingBytesMax}); nothing was appended; retry`,
        ),
      );
    }
    this.waited++;
    this.waitingBytes += wait.batchBytes;
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        wait,
        resolve,
        reject,
        timer: setTimeout(() => this.expire(groupId, waiter), Math.max(1, wait.deadlineMs - Date.now())),
      };
      this.queueOf(groupId, machine).waiters.push(waiter);
    });
  }

  /** The request woken last has proposed or given up: the next one may look. */
  passed(groupId: number): void {
    this.wake(groupId);
  }

  private queueOf(groupId: number, machine: PartitionMachine): PartitionQueue {
    let queue = this.queues.get(groupId);
    if (!queue) {
      const poll = setInterval(() => this.wake(groupId), ROOM_POLL_MS);
      poll.unref();
      // Applies publish before the core's advance() frees their budget: look in a later
      // microtask, after the driver's turn has finished.
      const unsubscribe = machine.onHighWatermark(() => queueMicrotask(() => this.wake(groupId)));
      queue = { machine, waiters: [], unsubscribe, poll };
      this.queues.set(groupId, queue);
    }
    return queue;
  }

  /** Wakes the head if its batch fits now; one at a time (the next looks after passed()). */
  private wake(groupId: number): void {
    const queue = this.queues.get(groupId);
    if (!queue) return;
    const head = queue.waiters[0];
    if (head === undefined) {
      this.close(groupId, queue);
      return;
    }
    if (queue.machine.closed) {
      this.leave(groupId, queue, head);
      head.reject(new BrokerError('NO_LEADER', `${head.wait.partition()} closed; retry`));
      this.wake(groupId);
      return;
    }
    if (!head.wait.hasRoom()) return;
    this.leave(groupId, queue, head);
    head.resolve();
  }

  private expire(groupId: number, waiter: Waiter): void {
    const queue = this.queues.get(groupId);
    if (!queue?.waiters.includes(waiter)) return;
    const wasHead = queue.waiters[0] === waiter;
    this.leave(groupId, queue, waiter);
    this.throttled++;
    waiter.reject(
      new BrokerError(
        'THROTTLED',
        `${waiter.wait.partition()}: the leader's uncommitted entries stayed at maxUncommittedBytes for ` +
          `${waiter.wait.timeoutMs} ms; nothing was appended; retry`,
      ),
    );
    if (wasHead) this.wake(groupId);
  }

  private leave(groupId: number, queue: PartitionQueue, waiter: Waiter): void {
    clearTimeout(waiter.timer);
    queue.waiters.splice(queue.waiters.indexOf(waiter), 1);
    this.waitingBytes -= waiter.wait.batchBytes;
    if (queue.waiters.length === 0) this.close(groupId, queue);
  }

  private close(groupId: number, queue: PartitionQueue): void {
    clearInterval(queue.poll);
    queue.unsubscribe();
    this.queues.delete(groupId);
  }
}
