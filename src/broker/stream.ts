// Tailing one replica's committed log: chunks of records from an offset on, each read from the
// local log when the high watermark passes it. The caller pulls the next chunk only when it has
// room for it, so a slow reader holds at most one chunk here (backpressure, not a buffer).

import type { OffsetSpec, ReplicaTail } from './facade.js';
import { readCommitted, resolveOffset } from './fetch.js';
import type { PartitionMachine } from './partition-machine.js';
import type { LocalPartition } from './partitions.js';
import type { StoredRecord } from './record-batch.js';

export interface TailLimits {
  /** Records per chunk read from the log. */
  chunkRecordsMax: number;
  /** Bytes per chunk (one record is always returned, whatever its size). */
  chunkBytesMax: number;
}

export const DEFAULT_TAIL_LIMITS: Readonly<TailLimits> = Object.freeze({
  chunkRecordsMax: 1000,
  chunkBytesMax: 256 * 1024,
});

/**
 * A tail of this replica from `from`. Unlike fetch, an offset past the high watermark is not an
 * error: the tail waits for it (a replica may lag the one the client read before).
 */
export function openTail(
  local: LocalPartition,
  from: OffsetSpec,
  limits: TailLimits = DEFAULT_TAIL_LIMITS,
): ReplicaTail {
  const machine = local.machine;
  const startOffset =
    typeof from === 'number' && from > machine.highWatermark ? from : resolveOffset(machine, from);
  return { startOffset, chunks: (signal) => tailCommitted(local, startOffset, limits, signal) };
}

/**
 * Yields the committed records from `offset` on, in chunks, until the signal aborts, the group
 * closes (topic deleted, node stopping) or retention removes the next offset (a reader that fell
 * that far behind reconnects and gets OFFSET_OUT_OF_RANGE).
 */
export async function* tailCommitted(
  local: LocalPartition,
  offset: number,
  limits: TailLimits,
  signal: AbortSignal,
): AsyncGenerator<StoredRecord[], void, undefined> {
  const machine = local.machine;
  let next = offset;
  while (!signal.aborted && !machine.closed) {
    if (next < machine.logStartOffset) return;
    if (next >= machine.highWatermark) {
      await waitPast(machine, next, signal);
      continue;
    }
    const chunk = await readCommitted(local, next, limits.chunkRecordsMax, limits.chunkBytesMax);
    if (chunk.records.length === 0) return; // below the log start after a concurrent cut
    next = chunk.nextOffset;
    yield chunk.records;
  }
}

/** Resolves once the high watermark is past `offset`, the group closes, or the signal aborts. */
function waitPast(machine: PartitionMachine, offset: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const finish = () => {
      unsubscribe();
      signal.removeEventListener('abort', finish);
      resolve();
    };
    // The listener runs after each driver turn that applied entries: no timer, no polling.
    const unsubscribe = machine.onHighWatermark((highWatermark) => {
      if (highWatermark > offset || machine.closed) finish();
    });
    signal.addEventListener('abort', finish, { once: true });
    if (machine.highWatermark > offset || machine.closed || signal.aborted) finish();
  });
}
