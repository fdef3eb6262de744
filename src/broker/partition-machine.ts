// The partition state machine: dense record offsets, the high watermark, the log start offset,
// the idempotent-producer table, and the leader's assignment of base offsets to new batches.
//
// Offsets are a function of the log: each record batch entry carries its base offset (stamped by
// the leader) and its record count, and a replica checks on apply that the base offset is the
// next dense offset. No-op and membership entries take no offset. The producer table is a
// function of the log too (producer-state.ts), so it survives failover and restarts.

import { assert } from '../raft/errors.js';
import type { Entry } from '../raft/index.js';
import type { RecordRange } from '../storage/index.js';
import type { EntryOffsets } from './group-store.js';
import {
  checkSequence,
  DEFAULT_PRODUCER_LIMITS,
  entryAfter,
  isExpired,
  type ProducerEntry,
  type ProducerLimits,
  ProducerTable,
  type ProducerTableSnapshot,
  type SequenceCheck,
} from './producer-state.js';
import { isRecordBatch, maxRecordTimestampMs, type ProducerInfo, readBatchHeader } from './record-batch.js';

/** Offsets of a log entry, or null for entries without records. */
export function entryOffsets(entry: Entry): EntryOffsets | null {
  if (entry.data.length === 0 || !isRecordBatch(entry.data)) return null;
  const header = readBatchHeader(entry.data);
  return { baseOffset: header.baseOffset, recordCount: header.recordCount };
}

/**
 * What storage is told of an entry (its describeEntry): its offsets and its largest record
 * timestamp, for the time index; null for entries without records.
 */
export function entryRecordRange(entry: Entry): RecordRange | null {
  if (entry.data.length === 0 || !isRecordBatch(entry.data)) return null;
  const header = readBatchHeader(entry.data);
  return {
    baseOffset: header.baseOffset,
    recordCount: header.recordCount,
    maxTimestampMs: maxRecordTimestampMs(entry.data, header),
  };
}

/** What the state machine needs of a batch: its offsets, producer and append time. */
export interface AppendedBatch extends EntryOffsets {
  producer: ProducerInfo | null;
  appendTimeMs: number | null;
}

/** The batch an entry carries, or null for entries without records. */
export function entryBatch(entry: Entry): AppendedBatch | null {
  if (entry.data.length === 0 || !isRecordBatch(entry.data)) return null;
  const header = readBatchHeader(entry.data);
  return {
    baseOffset: header.baseOffset,
    recordCount: header.recordCount,
    producer: header.producer,
    appendTimeMs: header.appendTimeMs,
  };
}

/** What a snapshot of a partition group holds: the log itself is kept by retention, not here. */
export interface PartitionSnapshot {
  /** Offset of the first record after the snapshot index. */
  nextOffset: number;
  /** The idempotent-producer table (absent: empty), as of `producersAtIndex`. */
  producers?: ProducerTableSnapshot;
  /**
   * The index the producer table reflects: at or after the snapshot index, because a prefix cut
   * below the applied index takes the table as it is at the applied index. Entries up to it are
   * not recorded in the table again. Absent: the snapshot index.
   */
  producersAtIndex?: number;
}

/**
 * The leader's answer for an idempotent batch, against applied state plus the batches in its log
 * not applied yet: `pending` is a duplicate of a batch at `index` that is not committed yet.
 */
export type ProduceCheck = SequenceCheck | { kind: 'pending'; index: number; baseOffset: number };

interface TailEntry extends AppendedBatch {
  index: number;
}

type HighWatermarkListener = (highWatermark: number) => void;

export class PartitionMachine {
  /** One past the last applied (committed) record: the high watermark. */
  highWatermark: number;
  /** The first record still retained. Invariant: logStartOffset <= highWatermark. */
  logStartOffset: number;
  appliedIndex: number;
  /** Bytes of the entries applied since this machine was built: paces producer checkpoints. */
  appliedBytes = 0;
  /**
   * Entries with records in the local log beyond the applied index: (index, end offset), in
   * index order. Bounded by the uncommitted tail.
   */
  private readonly tail: TailEntry[] = [];
  private readonly listeners = new Set<HighWatermarkListener>();
  /** The idempotent-producer table as of appliedIndex. */
  readonly producers: ProducerTable;
  /** Entries up to this index are already in the producer table (restored from a snapshot). */
  private producersAtIndex = 0;

  constructor(state: {
    highWatermark: number;
    logStartOffset: number;
    appliedIndex: number;
    producerLimits?: ProducerLimits;
  }) {
    this.highWatermark = state.highWatermark;
    this.logStartOffset = state.logStartOffset;
    this.appliedIndex = state.appliedIndex;
    this.producers = new ProducerTable(state.producerLimits ?? DEFAULT_PRODUCER_LIMITS);
  }

  /** One past the last record in the local log, committed or not. */
  logEndOffset(): number {
    const last = this.tail[this.tail.length - 1];
    return last ? last.baseOffset + last.recordCount : this.highWatermark;
  }

  /**
   * Entries reached the local log (from a Ready, or the leader's own proposal). Idempotent by
   * index: entries at or after the first index replace what the tail held there (truncation).
   */
  noteAppended(index: number, batch: AppendedBatch | null): void {
    while (this.tail.length > 0 && this.tail[this.tail.length - 1]!.index >= index) this.tail.pop();
    if (batch) this.tail.push({ index, ...batch });
  }

  noteAppendedEntries(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    // Cut once at the first index, then append: the same result as entry by entry, cheaper.
    this.noteAppended(entries[0]!.index, null);
    for (const entry of entries) {
      const batch = entryBatch(entry);
      if (batch) this.tail.push({ index: entry.index, ...batch });
    }
  }

  /**
   * Applies one committed entry. Returns its offsets, or null if it carries no records.
   *
   * An idempotent batch is recorded in the producer table, never refused here: the leader stamped
   * its offsets and storage indexed them, so a batch in the log holds its offsets whatever it is.
   * The leader admits a batch only if checkProduce() (the same rules, over this state plus the
   * batches in its log ahead of it) says append, so a duplicate never reaches the log.
   */
  apply(entry: Entry): EntryOffsets | null {
    assert(entry.index > this.appliedIndex, `apply(${entry.index}) at applied index ${this.appliedIndex}`);
    this.appliedIndex = entry.index;
    this.appliedBytes += entry.data.length;
    while (this.tail.length > 0 && this.tail[0]!.index <= entry.index) this.tail.shift();
    const batch = entryBatch(entry);
    if (!batch) return null;
    assert(
      batch.baseOffset === this.highWatermark,
      `entry ${entry.index} has base offset ${batch.baseOffset}, expected ${this.highWatermark}: the log is corrupt`,
    );
    this.highWatermark += batch.recordCount;
    if (entry.index > this.producersAtIndex) this.recordProducer(batch);
    return { baseOffset: batch.baseOffset, recordCount: batch.recordCount };
  }

  /**
   * Rebuilds the producer table from an entry at or below the applied index (a restart replays
   * the log from the snapshot, as offsets come from the log); offsets are already known.
   */
  replayApplied(entry: Entry): void {
    assert(entry.index <= this.appliedIndex, `replay of ${entry.index} past applied ${this.appliedIndex}`);
    const batch = entryBatch(entry);
    if (batch && entry.index > this.producersAtIndex) this.recordProducer(batch);
  }

  private recordProducer(batch: AppendedBatch): void {
    if (batch.appendTimeMs !== null) this.producers.tick(batch.appendTimeMs);
    if (batch.producer) this.producers.record(batch.producer, batch.recordCount, batch.baseOffset);
  }

  /**
   * The leader's check of an idempotent batch it would append next, stamped `appendTimeMs`: the
   * applied table, then the batches in the log ahead of it in order (the same steps apply() will
   * take), then the batch itself. Costs one pass over the uncommitted tail.
   */
  checkProduce(producer: ProducerInfo, recordCount: number, appendTimeMs: number): ProduceCheck {
    const expiryMs = this.producers.limits.producerExpiryMs;
    let clockMs = this.producers.clockMs;
    let entry: ProducerEntry | null = this.producers.stored(producer.id);
    const pendingIndexByOffset = new Map<number, number>();
    for (const pending of this.tail) {
      if (pending.appendTimeMs !== null && pending.appendTimeMs > clockMs) clockMs = pending.appendTimeMs;
      if (pending.producer?.id !== producer.id) continue;
      const live = entry && !isExpired(entry, clockMs, expiryMs) ? entry : null;
      entry = entryAfter(live, pending.producer, pending.recordCount, pending.baseOffset, clockMs);
      pendingIndexByOffset.set(pending.baseOffset, pending.index);
    }
    clockMs = Math.max(clockMs, appendTimeMs);
    const live = entry && !isExpired(entry, clockMs, expiryMs) ? entry : null;
    // Evicted and not back since: its digest, as of the applied index. Batches ahead of it in the
    // log may evict others or drop digests, but never change what is known of this producer.
    const evicted = live ? null : this.producers.evictedEntry(producer.id, clockMs);
    const check = checkSequence(live, producer, recordCount, evicted);
    if (check.kind !== 'duplicate') return check;
    const index = pendingIndexByOffset.get(check.baseOffset);
    return index === undefined ? check : { kind: 'pending', index, baseOffset: check.baseOffset };
  }

  /** Whether the entry at `index` is still in the local log, not applied yet. */
  isPending(index: number): boolean {
    return this.tail.some((t) => t.index === index);
  }

  /** The snapshot of this machine at its applied index. */
  snapshot(): PartitionSnapshot {
    return { nextOffset: this.highWatermark, ...this.producerSnapshot() };
  }

  /**
   * The producer part of a snapshot: a prefix cut at an index below the applied one (retention)
   * takes its nextOffset at the cut and this, the table at the applied index.
   */
  producerSnapshot(): Pick<PartitionSnapshot, 'producers' | 'producersAtIndex'> {
    return { producers: this.producers.toSnapshot(), producersAtIndex: this.appliedIndex };
  }

  restoreSnapshotProducers(index: number, snapshot: PartitionSnapshot): void {
    const atIndex = snapshot.producersAtIndex ?? index;
    assert(atIndex >= index, `producer table at ${atIndex} is older than its snapshot at ${index}`);
    this.producers.restore(snapshot.producers ?? { clockMs: 0, producers: [] });
    this.producersAtIndex = atIndex;
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
    this.restoreSnapshotProducers(index, snapshot);
  }

  /** Retention moved the log start: offsets below are gone on this replica. */
  setLogStart(offset: number): void {
    assert(offset <= this.highWatermark, `log start ${offset} past the high watermark ${this.highWatermark}`);
    if (offset > this.logStartOffset) this.logStartOffset = offset;
  }

  /** A cut that moved the log start first failed: its records are still there. */
  restoreLogStart(offset: number, movedTo: number): void {
    if (this.logStartOffset === movedTo && offset < movedTo) this.logStartOffset = offset;
  }
}

/** Bytes read per step when a restart replays the log into the producer table. */
const REPLAY_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * Rebuilds the producer table of a machine opened at `appliedIndex`: the snapshot's table, then
 * every batch in the log after the table's index up to the applied index, in order. Returns the
 * number of entries replayed. A producer-table checkpoint (producer-checkpoint.ts) passed in as
 * the snapshot's table bounds the replay.
 */
export async function rebuildProducerTable(
  machine: PartitionMachine,
  store: { firstIndex(): number; readEntries(lo: number, hi: number, maxBytes: number): Promise<Entry[]> },
  snapshot: { index: number; data: PartitionSnapshot },
): Promise<number> {
  machine.restoreSnapshotProducers(snapshot.index, snapshot.data);
  let replayed = 0;
  const producersAtIndex = snapshot.data.producersAtIndex ?? snapshot.index;
  let lo = Math.max(producersAtIndex + 1, store.firstIndex());
  const hi = machine.appliedIndex + 1;
  while (lo < hi) {
    const entries = await store.readEntries(lo, hi, REPLAY_CHUNK_BYTES);
    assert(entries.length > 0 && entries[0]!.index === lo, `replay read nothing at index ${lo}`);
    for (const entry of entries) machine.replayApplied(entry);
    replayed += entries.length;
    lo = entries[entries.length - 1]!.index + 1;
  }
  return replayed;
}

export function encodePartitionSnapshot(snapshot: PartitionSnapshot): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(snapshot));
}

export function decodePartitionSnapshot(data: Uint8Array): PartitionSnapshot {
  if (data.length === 0) return { nextOffset: 0 };
  const parsed = JSON.parse(new TextDecoder().decode(data)) as PartitionSnapshot;
  assert(Number.isInteger(parsed.nextOffset) && parsed.nextOffset >= 0, 'partition snapshot: bad nextOffset');
  assert(
    parsed.producers === undefined || Array.isArray(parsed.producers.producers),
    'partition snapshot: bad producers',
  );
  return parsed;
}
