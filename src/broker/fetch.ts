// Fetch from this replica's committed copy: resolve the start offset, optionally confirm with the
// leader first (linearizable) or wait for a minimum high watermark (read-your-writes), long-poll,
// then read whole entries by offset and cut them to the committed records asked for: as records
// (the JSON answer), or as the stored batches themselves (the binary answer, no record decoded).

import type { Entry } from '../raft/types.js';
import { BrokerError } from './errors.js';
import type { PartitionMachine } from './partition-machine.js';
import type { LocalPartition } from './partitions.js';
import { forEachRecord, isRecordBatch, type StoredRecord } from './record-batch.js';
import { waitUntil } from './wait.js';

export interface FetchLocalParams {
  offset: number | 'earliest' | 'latest' | undefined;
  limit: number;
  maxBytes: number;
  waitMs: number;
  consistency: 'local' | 'linearizable';
  minOffset: number | undefined;
}

export interface FetchLocalResult {
  records: StoredRecord[];
  nextOffset: number;
  highWatermark: number;
  logStartOffset: number;
}

/** How long a linearizable read may wait for the leader's confirmation before failing. */
export const READ_INDEX_TIMEOUT_MS = 5000;
/** Per-record bytes counted toward maxBytes besides key, value and headers (JSON framing). */
const RECORD_OVERHEAD_BYTES = 64;

/** Reads what a fetch answers, once the wait is over: readCommitted or readCommittedBatches. */
export type CommittedReader<R> = (
  local: LocalPartition,
  offset: number,
  limit: number,
  maxBytes: number,
) => Promise<R>;

/** A fetch answered with records (the JSON answer). */
export function fetchLocal(
  local: LocalPartition,
  params: FetchLocalParams,
  markDirty: () => void,
  signal?: AbortSignal,
): Promise<FetchLocalResult> {
  return fetchLocalWith(local, params, markDirty, readCommitted, signal);
}

/** Waits as `params` asks (read index, minOffset, long-poll), then answers with `read`. */
export async function fetchLocalWith<R>(
  local: LocalPartition,
  params: FetchLocalParams,
  markDirty: () => void,
  read: CommittedReader<R>,
  signal?: AbortSignal,
): Promise<R> {
  const machine = local.machine;
  const deadlineMs = Date.now() + params.waitMs;
  if (params.consistency === 'linearizable') {
    const reading = local.group.readIndex(READ_INDEX_TIMEOUT_MS);
    markDirty();
    const readIndex = await reading;
    await waitFor(
      machine,
      () => machine.appliedIndex >= readIndex,
      Date.now() + READ_INDEX_TIMEOUT_MS,
      signal,
    );
    if (machine.appliedIndex < readIndex) {
      throw new BrokerError('NO_LEADER', 'this replica could not catch up with the leader in time; retry');
    }
  }
  if (params.minOffset !== undefined) {
    const minOffset = params.minOffset;
    await waitFor(machine, () => machine.highWatermark > minOffset, deadlineMs, signal);
  }
  const requested = params.offset;
  if (typeof requested === 'number' && requested > machine.highWatermark && params.waitMs > 0) {
    // A lagging replica may not have committed an offset the client saw elsewhere yet: a
    // long-poll waits for it rather than answering 416 at once.
    await waitFor(machine, () => machine.highWatermark >= requested, deadlineMs, signal);
  }
  const offset = resolveOffset(machine, params.offset);
  if (offset === machine.highWatermark && params.waitMs > 0) {
    await waitFor(machine, () => machine.highWatermark > offset, deadlineMs, signal);
  }
  return read(local, offset, params.limit, params.maxBytes);
}

export function resolveOffset(machine: PartitionMachine, requested: FetchLocalParams['offset']): number {
  if (requested === undefined || requested === 'earliest') return machine.logStartOffset;
  if (requested === 'latest') return machine.highWatermark;
  if (requested < machine.logStartOffset || requested > machine.highWatermark) {
    const where =
      requested < machine.logStartOffset ? 'below the log start offset' : 'past the high watermark';
    throw new BrokerError('OFFSET_OUT_OF_RANGE', `offset ${requested} is ${where}`, {
      logStartOffset: machine.logStartOffset,
      highWatermark: machine.highWatermark,
    });
  }
  return requested;
}

export async function readCommitted(
  local: LocalPartition,
  offset: number,
  limit: number,
  maxBytes: number,
): Promise<FetchLocalResult> {
  const { entries, highWatermark, logStartOffset } = await committedEntriesFrom(local, offset, maxBytes);
  const records: StoredRecord[] = [];
  let bytes = 0;
  for (const entry of entries) {
    if (records.length >= limit || !isRecordBatch(entry.data)) continue;
    forEachRecord(entry.data, offset, (record) => {
      if (record.offset >= highWatermark) return false;
      const size = recordBytes(record);
      if (records.length > 0 && bytes + size > maxBytes) return false;
      records.push(record);
      bytes += size;
      return records.length < limit && bytes < maxBytes;
    });
    if (bytes >= maxBytes) break;
  }
  const first = records[0];
  if (first) refuseSkippedStart(local.machine, offset, first.offset);
  const last = records[records.length - 1];
  return { records, nextOffset: last ? last.offset + 1 : offset, highWatermark, logStartOffset };
}

/**
 * The replica's committed bounds as a read starts, and its entries from the one holding `offset`
 * (up to maxBytes, at least one; none when `offset` is at the high watermark).
 */
export async function committedEntriesFrom(
  local: LocalPartition,
  offset: number,
  maxBytes: number,
): Promise<{ entries: Entry[]; highWatermark: number; logStartOffset: number }> {
  const { highWatermark, logStartOffset } = local.machine;
  const entries = offset < highWatermark ? await local.group.store.readByOffset(offset, maxBytes) : [];
  return { entries, highWatermark, logStartOffset };
}

/**
 * Retention cut the segments holding `offset` while a read was on its way (what it found starts
 * at `firstOffset`): answer as if the cut had come first, never with records that silently skip
 * the ones asked for.
 */
export function refuseSkippedStart(machine: PartitionMachine, offset: number, firstOffset: number): void {
  if (firstOffset === offset) return;
  throw new BrokerError('OFFSET_OUT_OF_RANGE', `offset ${offset} is below the log start offset`, {
    logStartOffset: Math.max(machine.logStartOffset, firstOffset),
    highWatermark: machine.highWatermark,
  });
}

function recordBytes(record: StoredRecord): number {
  let size = RECORD_OVERHEAD_BYTES + record.value.length + (record.key ? record.key.length : 0);
  if (record.headers)
    for (const [name, value] of record.headers) size += name.length + (value ? value.length : 0);
  return size;
}

/** Resolves when `done()` holds (checked after each apply), the group closes, at the deadline, or on abort. */
async function waitFor(
  machine: PartitionMachine,
  done: () => boolean,
  deadlineMs: number,
  signal?: AbortSignal,
): Promise<void> {
  await waitUntil({
    done: () => done() || machine.closed,
    subscribe: (listener) => machine.onHighWatermark(listener),
    deadlineMs,
    signal,
  });
}
