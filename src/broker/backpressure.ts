// Backpressure on produce. A partition leader's core refuses a proposal that would take its
// uncommitted entries over maxUncommittedBytes; the request then waits here, holding its batch,
// until applies make room (or its timeoutMs passes: 429 THROTTLED). What waits is bounded per
// node: a request that would take the waiting bytes over waitingBytesMax is refused at once with
// 503 BUSY, so a flood of large requests costs a bounded amount of memory, not a crash.

import { BrokerError } from './errors.js';
import type { PartitionMachine } from './partition-machine.js';

/** Waiting batches a node holds at most, by default: as much again as one group's budget. */
export const PRODUCE_WAITING_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;
/** A waiter looks again this often even when no apply wakes it (no-ops free budget too). */
const ROOM_POLL_MS = 20;
/** Bound on the looks of one wait; its deadline ends it long before. */
const ROOM_LOOKS_MAX = 1_000_000;

export interface RoomWait {
  /** Whether the batch fits now (RawNode.hasRoomFor). */
  hasRoom: () => boolean;
  batchBytes: number;
  deadlineMs: number;
  timeoutMs: number;
  /** topic/partition, for messages. */
  partition: string;
}

export class ProduceBackpressure {
  /** Bytes of batches waiting for room now. Invariant: 0 <= waitingBytes <= waitingBytesMax. */
  waitingBytes = 0;
  /** Requests that waited, and those refused with THROTTLED or BUSY: for metrics. */
  waited = 0;
  throttled = 0;
  refusedBusy = 0;

  constructor(readonly waitingBytesMax = PRODUCE_WAITING_BYTES_MAX_DEFAULT) {}

  /**
   * Resolves once the batch fits, looking again after each apply of `machine` (applies free
   * budget) and at least every ROOM_POLL_MS. Throws BUSY at once when the batch would take the
   * node's waiting bytes over the bound, and THROTTLED at the deadline.
   */
  async waitForRoom(machine: PartitionMachine, wait: RoomWait): Promise<void> {
    if (this.waitingBytes + wait.batchBytes > this.waitingBytesMax) {
      this.refusedBusy++;
      throw new BrokerError(
        'BUSY',
        `this node holds ${this.waitingBytes} bytes of produce requests waiting for room ` +
          `(at most ${this.waitingBytesMax}); nothing was appended; retry`,
      );
    }
    this.waited++;
    this.waitingBytes += wait.batchBytes;
    try {
      for (let looks = 0; looks < ROOM_LOOKS_MAX && !wait.hasRoom(); looks++) {
        if (Date.now() >= wait.deadlineMs || machine.closed) {
          this.throttled++;
          throw new BrokerError(
            'THROTTLED',
            `${wait.partition}: the leader's uncommitted entries stayed at maxUncommittedBytes for ` +
              `${wait.timeoutMs} ms; nothing was appended; retry`,
          );
        }
        await nextApplyOrPoll(machine, wait.deadlineMs);
      }
    } finally {
      this.waitingBytes -= wait.batchBytes;
    }
  }
}

/**
 * Applies publish before the core's advance() frees their budget; this resolves in a later
 * microtask, after the driver's turn has finished, so the next look sees the room.
 */
function nextApplyOrPoll(machine: PartitionMachine, deadlineMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      unsubscribe();
      resolve();
    };
    const timer = setTimeout(finish, Math.max(1, Math.min(ROOM_POLL_MS, deadlineMs - Date.now())));
    const unsubscribe = machine.onHighWatermark(finish);
  });
}
