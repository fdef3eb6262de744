// A fetch answered with the stored record batches themselves (the binary fetch answer, see
// wire/fetch-binary.ts): whole entries, no record decoded, so a node serves a record for the cost
// of copying its bytes. The first batch may start before the offset asked for and the last may end
// past the answer's nextOffset; the client skips those records, as Kafka's consumers do.

import { committedEntriesFrom, refuseSkippedStart } from './fetch.js';
import type { LocalPartition } from './partitions.js';
import { isRecordBatch, readBatchHeader } from './record-batch.js';

export interface FetchBatchesResult {
  /** Record batches (partition log entries), in order; the records wanted are [offset, nextOffset). */
  batches: Uint8Array[];
  /** The first record answered (the offset asked for). */
  offset: number;
  nextOffset: number;
  highWatermark: number;
  logStartOffset: number;
}

/**
 * Whole committed batches from `offset`: while the records counted stay under `limit` and the
 * bytes under `maxBytes` (the first batch always, as Kafka returns a first batch larger than its
 * limit). nextOffset stops at `limit` records, inside the last batch if need be.
 */
export async function readCommittedBatches(
  local: LocalPartition,
  offset: number,
  limit: number,
  maxBytes: number,
): Promise<FetchBatchesResult> {
  const { entries, highWatermark, logStartOffset } = await committedEntriesFrom(local, offset, maxBytes);
  const endOffset = Math.min(highWatermark, offset + limit);
  const batches: Uint8Array[] = [];
  let nextOffset = offset;
  let bytes = 0;
  for (const entry of entries) {
    if (!isRecordBatch(entry.data)) continue;
    const header = readBatchHeader(entry.data);
    const batchEnd = header.baseOffset + header.recordCount;
    if (batchEnd <= nextOffset) continue;
    if (header.baseOffset >= endOffset) break;
    if (batches.length > 0 && bytes + entry.data.length > maxBytes) break;
    if (batches.length === 0) refuseSkippedStart(local.machine, offset, Math.max(offset, header.baseOffset));
    batches.push(entry.data);
    bytes += entry.data.length;
    nextOffset = Math.min(batchEnd, endOffset);
    if (nextOffset >= endOffset) break;
  }
  return { batches, offset, nextOffset, highWatermark, logStartOffset };
}
