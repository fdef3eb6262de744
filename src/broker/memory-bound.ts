// The node's bound on memory held by memory-topic data (`raftlog start --memory-topics-max-bytes`).
// A partition leader refuses produce to a memory topic with 507 MEMORY_FULL, nothing appended,
// when the batch would take its node past the bound. Followers never refuse what their leader
// sends: a replica that refused entries would stall its partition's commits for every client
// (docs/operations.md, "Memory topics").

import os from 'node:os';
import type { Logger } from 'pino';
import type { MemoryAppendPlan } from '../storage/index.js';
import { BrokerError } from './errors.js';
import type { LocalPartition } from './partitions.js';
import type { RecordInput } from './record-batch.js';

/** The default bound takes this share of the memory the process may use. */
export const MEMORY_TOPICS_SHARE_DEFAULT = 0.25;
/** Per record, what a batch adds besides key, value and headers (timestamp, lengths). */
const RECORD_OVERHEAD_BYTES = 24;
/** Per batch: its header and producer fields. */
const BATCH_OVERHEAD_BYTES = 64;
/** A node over its bound (as a follower) says so in its log at most this often. */
const OVER_BOUND_WARNING_INTERVAL_MS = 60_000;
const MIB = 1024 * 1024;

/**
 * A quarter of the memory available to the process, in whole MiB: the cgroup limit when one is
 * set, else physical memory. The other three quarters are for the rest of the node: its idle
 * footprint, produce requests in flight (up to about 10 x 64 MiB under a burst of large ones,
 * docs/operations.md), the page cache of disk topics, and other processes.
 */
export function defaultMemoryTopicsBytesMax(): number {
  const total = os.totalmem();
  const constrained = process.constrainedMemory?.() ?? 0;
  // Without a limit Node reports 0 or a huge number (cgroup v2 "max").
  const available = constrained > 0 && constrained < total ? constrained : total;
  return Math.max(MIB, Math.floor((available * MEMORY_TOPICS_SHARE_DEFAULT) / MIB) * MIB);
}

/**
 * The bytes of the batch these records make (record-batch.ts), or a little more: header names are
 * counted at 3 bytes per UTF-16 unit, the most UTF-8 takes. Only a producer id over 30 characters
 * makes it count short.
 */
export function batchBytesEstimate(
  records: readonly Pick<RecordInput, 'key' | 'value' | 'headers'>[],
): number {
  let bytes = BATCH_OVERHEAD_BYTES;
  for (const record of records) {
    bytes += RECORD_OVERHEAD_BYTES + record.value.length + (record.key?.length ?? 0);
    if (record.headers === null) continue;
    for (const [name, value] of record.headers) bytes += 6 + 3 * name.length + (value?.length ?? 0);
  }
  return bytes;
}

export interface MemoryTopicsSources {
  /** Bytes this node's memory-mode logs hold now (storage keeps the count). */
  heldBytes: () => number;
  /** The driver's turn counter: a batch proposed in turn T is in its log once T + 1 has run. */
  turn: () => number;
}

export class MemoryTopicsBound {
  /** Produce requests refused with MEMORY_FULL, for metrics. */
  refused = 0;
  private lastWarningMs = Number.NEGATIVE_INFINITY;
  /**
   * Per partition, what its batches accepted in turn reservedTurn (not in its log yet) will add
   * to its memory, as storage plans their appends.
   */
  private readonly reservations = new Map<LocalPartition, MemoryAppendPlan>();
  private reservedBytes = 0;
  private reservedTurn = -1;

  constructor(
    readonly bytesMax: number,
    private readonly sources: MemoryTopicsSources,
  ) {
    if (!Number.isSafeInteger(bytesMax) || bytesMax <= 0) {
      throw new RangeError(`memoryTopicsBytesMax must be a positive integer, not ${bytesMax}`);
    }
  }

  /** Bytes of memory-topic data this node holds now, leader and follower replicas alike. */
  heldBytes(): number {
    return this.sources.heldBytes();
  }

  /**
   * Throws MEMORY_FULL when appending these records to a memory topic led here would take the
   * node past its bound: what its logs hold, the batches accepted this turn that are not in their
   * logs yet, and this one, with the chunks they would open. Checked before anything is appended.
   */
  checkRoom(local: LocalPartition, records: readonly Pick<RecordInput, 'key' | 'value' | 'headers'>[]): void {
    const turn = this.sources.turn();
    if (turn !== this.reservedTurn) {
      // A turn ran since: the batches accepted before it are in their logs, counted by storage.
      this.reservedTurn = turn;
      this.reservations.clear();
      this.reservedBytes = 0;
    }
    const held = this.sources.heldBytes();
    const batchBytes = batchBytesEstimate(records);
    const before = this.reservations.get(local) ?? null;
    const plan = local.group.store.planMemoryAppend?.(batchBytes, before) ?? null;
    const addedBytes = plan === null ? batchBytes : plan.addedBytes - (before?.addedBytes ?? 0);
    if (held + this.reservedBytes + addedBytes <= this.bytesMax) {
      if (plan !== null) this.reservations.set(local, plan);
      this.reservedBytes += addedBytes;
      return;
    }
    this.refused++;
    throw new BrokerError(
      'MEMORY_FULL',
      `${local.topic}/${local.partition}: this node holds ${held} bytes of memory-topic data and a ` +
        `${batchBytes}-byte batch would take it past its bound of ${this.bytesMax} ` +
        '(--memory-topics-max-bytes); nothing was appended; retry once retention or a deleted ' +
        'memory topic has freed room',
    );
  }

  /**
   * Logs a warning (at most once a minute) while the node holds more than its bound: it can, as a
   * follower of leaders on other nodes, which judge by their own node's memory.
   */
  warnIfOver(logger: Logger, nowMs: number): void {
    const held = this.sources.heldBytes();
    if (held <= this.bytesMax || nowMs - this.lastWarningMs < OVER_BOUND_WARNING_INTERVAL_MS) return;
    this.lastWarningMs = nowMs;
    logger.warn(
      { memoryTopicsBytes: held, memoryTopicsBytesMax: this.bytesMax },
      'memory topics hold more than the bound: replicas followed here keep appending; leaders here refuse produce',
    );
  }
}
