// The first committed record at or after a time, from this replica's copy (Kafka's ListOffsets
// by timestamp): the storage's time index says where to start, then records are read on from
// there until one is at or after the time, or the high watermark is reached.

import type { LocalPartition } from './partitions.js';
import { forEachRecord, isRecordBatch } from './record-batch.js';

export interface OffsetForTimeResult {
  /** The first committed record whose timestamp is >= the time asked, or the high watermark. */
  offset: number;
  /** That record's timestamp; null when no committed record is that late. */
  timestamp: number | null;
}

/**
 * Bytes per read while looking for the record. The index is exact to about one index interval
 * (4 KiB) of a segment, so one read usually finds it; more are read only past entries whose
 * timestamps the index does not know (frames written before it) or after a cut.
 */
const SCAN_READ_BYTES = 64 * 1024;

export async function offsetForTimeLocal(
  local: LocalPartition,
  timestampMs: number,
): Promise<OffsetForTimeResult> {
  const machine = local.machine;
  // Only committed records count: the answer is taken against the high watermark of now.
  const highWatermark = machine.highWatermark;
  const store = local.group.store;
  const notFound = { offset: highWatermark, timestamp: null };
  const indexed = store.offsetForTime ? store.offsetForTime(timestampMs) : machine.logStartOffset;
  if (indexed === null) return notFound;
  let offset = Math.max(indexed, machine.logStartOffset);
  // Each read moves `offset` past at least one record, so this ends by the high watermark.
  while (offset < highWatermark) {
    const entries = await store.readByOffset(offset, SCAN_READ_BYTES);
    let found: OffsetForTimeResult | null = null;
    let next = offset;
    for (const entry of entries) {
      if (found !== null || !isRecordBatch(entry.data)) continue;
      forEachRecord(entry.data, next, (record) => {
        if (record.offset >= highWatermark) return false;
        next = record.offset + 1;
        if (record.timestampMs >= timestampMs)
          found = { offset: record.offset, timestamp: record.timestampMs };
        return found === null;
      });
    }
    if (found !== null) return found;
    if (next === offset) break; // nothing stored from here on (retention cut it meanwhile)
    offset = next;
  }
  return notFound;
}
