// The partition state machine: dense record offsets, the high watermark, the log start offset,
// and the leader's assignment of base offsets to new batches.
//
// Offsets are a function of the log: each record batch entry carries its base offset (stamped by
// the leader) and its record count, and a replica checks on apply that the base offset is the
// next dense offset. No-op and membership entries take no offset.

import { assert } from '../raft/errors.js';
import type { Entry } from '../raft/index.js';
import type { EntryOffsets } from './group-store.js';
import { isRecordBatch, readBatchHeader } from './record-batch.js';

/** Offsets of a log entry, or null for entries without records. */
export function entryOffsets(entry: Entry): EntryOffsets | null {
  if (entry.data.length === 0 || !isRecordBatch(entry.data)) return null;
  const header = readBatchHeader(entry.data);
  return { baseOffset: header.baseOffset, recordCount: header.recordCount };
}

/** What a snapshot of a partition group holds: the log itself is kept by retention, not here. */
export interface PartitionSnapshot {
  /** Offset of the first record after the snapshot index. */
  nextOffset: number;
}

interface TailEntry {
  index: number;
  endOffset: number;
}

type HighWatermarkListener = (highWatermark: number) => void;

export class PartitionMachine {
  /** One past the last applied (committed) record: the high watermark. */
  highWatermark: number;
  /** The first record still retained. Invariant: logStartOffset <= highWatermark. */
  logStartOffset: number;
  appliedIndex: number;
  /**
   * Entries with records in the local log beyond the applied index: (index, end offset), in
   * index order. Bounded by the uncommitted tail.
   */
  private readonly tail: TailEntry[] = [];
  private readonly listeners = new Set<HighWatermarkListener>();

  constructor(state: { highWatermark: number; logStartOffset: number; appliedIndex: number }) {
    this.highWatermark = state.highWatermark;
    this.logStartOffset = state.logStartOffset;
    this.appliedIndex = state.appliedIndex;
  }

  /** One past the last record in the local log, committed or not. */
  logEndOffset(): number {
    const last = this.tail[this.tail.length - 1];
    return last ? last.endOffset : this.highWatermark;
  }

  /**
   * Entries reached the local log (from a Ready, or the leader's own proposal). Idempotent by
   * index: entries at or after the first index replace what the tail held there (truncation).
   */
  noteAppended(index: number, offsets: EntryOffsets | null): void {
    while (this.tail.length > 0 && this.tail[this.tail.length - 1]!.index >= index) this.tail.pop();
    if (offsets) this.tail.push({ index, endOffset: offsets.baseOffset + offsets.recordCount });
  }

  noteAppendedEntries(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    // Cut once at the first index, then append: the same result as entry by entry, cheaper.
    this.noteAppended(entries[0]!.index, null);
    for (const entry of entries) {
      const offsets = entryOffsets(entry);
      if (offsets)
        this.tail.push({ index: entry.index, endOffset: offsets.baseOffset + offsets.recordCount });
    }
  }

  /** Applies one committed entry. Returns its offsets, or null if it carries no records. */
  apply(entry: Entry): EntryOffsets | null {
    assert(entry.index > this.appliedIndex, `apply(${entry.index}) at applied index ${this.appliedIndex}`);
    this.appliedIndex = entry.index;
    while (this.tail.length > 0 && this.tail[0]!.index <= entry.index) this.tail.shift();
    const offsets = entryOffsets(entry);
    if (!offsets) return null;
    assert(
      offsets.baseOffset === this.highWatermark,
      `entry ${entry.index} has base offset ${offsets.baseOffset}, expected ${this.highWatermark}: the log is corrupt`,
    );
    this.highWatermark += offsets.recordCount;
    return offsets;
  }

  /** The group is gone (deleted, or the node stops): waiters give up. */
  closed = false;

  close(): void {
    this.closed = true;
    this.publish();
    this.listeners.clear();
  }

  /** Tells listeners the high watermark moved; call once per driver turn, after applying. */
  publish(): void {
    for (const listener of this.listeners) listener(this.highWatermark);
  }

  onHighWatermark(listener: HighWatermarkListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resets to a snapshot received from the leader (this replica was behind its log start). */
  restore(index: number, snapshot: PartitionSnapshot): void {
    this.appliedIndex = index;
    this.highWatermark = snapshot.nextOffset;
    this.logStartOffset = snapshot.nextOffset;
    this.tail.length = 0;
  }

  /** Retention moved the log start: offsets below are gone on this replica. */
  setLogStart(offset: number): void {
    assert(offset <= this.highWatermark, `log start ${offset} past the high watermark ${this.highWatermark}`);
    if (offset > this.logStartOffset) this.logStartOffset = offset;
  }
}

export function encodePartitionSnapshot(snapshot: PartitionSnapshot): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(snapshot));
}

export function decodePartitionSnapshot(data: Uint8Array): PartitionSnapshot {
  if (data.length === 0) return { nextOffset: 0 };
  const parsed = JSON.parse(new TextDecoder().decode(data)) as PartitionSnapshot;
  assert(Number.isInteger(parsed.nextOffset) && parsed.nextOffset >= 0, 'partition snapshot: bad nextOffset');
  return parsed;
}
