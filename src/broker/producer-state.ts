// The idempotent-producer table of one partition: per producer id, its epoch and its last few
// batches' sequence ranges and offsets, as Kafka's broker keeps them. Pure and deterministic: it
// changes only through record(), in log order, and its only clock is the leader's append time
// stamped into each batch, so every replica that applies the same log holds the same table.
//
// Bounded: full entries for at most `producersMax` producers; past that the least recently
// written is evicted, and a 24-byte digest of it (evicted-producers.ts) is kept for the last
// `evictedProducersMax` evictions, so that its retry is refused with UNKNOWN_PRODUCER instead of
// being taken for a new producer's first batch and appended twice.

import { assert } from '../raft/errors.js';
import {
  EVICTED_DIGEST_BYTES,
  EVICTED_DIGEST_MEMORY_BYTES_MAX,
  type EvictedProducer,
  EvictedProducers,
  producerIdHash,
} from './evicted-producers.js';
import type { ProducerInfo } from './record-batch.js';

/** Batches remembered per producer: a retry of any of them is answered with its offsets. */
export const PRODUCER_BATCHES_KEPT = 5;
/** Kafka's transactional.id.expiration.ms default: 7 days. */
export const DEFAULT_PRODUCER_EXPIRY_MS = 7 * 24 * 60 * 60 * 1000;
/** Producers remembered per partition; past it the least recently written is evicted. */
export const DEFAULT_PRODUCERS_MAX = 10_000;
/** Evictions remembered per partition (as digests): ten times the table, 4 MB at most. */
export const DEFAULT_EVICTED_PRODUCERS_MAX = 100_000;
const SEQUENCE_MAX = 0xffff_ffff;
/**
 * Heap bytes of one table entry at most, as bench/producer-state.ts measures them on Node 20: an
 * id of 255 two-byte characters (the API's longest), 5 batches whose sequences and offsets pass
 * 2^31, and its Map slot take about 1,260. A 20-character id with one batch: about 300.
 */
export const PRODUCER_ENTRY_BYTES_MAX = 1_400;
/** Bytes of one entry in a snapshot's JSON at most: 255 characters escaped as \uXXXX, 5 batches. */
export const PRODUCER_SNAPSHOT_ENTRY_BYTES_MAX = 1_850;

export interface ProducerLimits {
  /** A producer with no batch for this long (in log time) is forgotten, its epoch too. */
  producerExpiryMs: number;
  /** Producers with a full entry (epoch, last 5 batches); past it the least recently written is evicted. */
  producersMax: number;
  /** Evicted producers remembered by a digest (epoch, last sequence); 0: none. */
  evictedProducersMax: number;
}

export const DEFAULT_PRODUCER_LIMITS: Readonly<ProducerLimits> = Object.freeze({
  producerExpiryMs: DEFAULT_PRODUCER_EXPIRY_MS,
  producersMax: DEFAULT_PRODUCERS_MAX,
  evictedProducersMax: DEFAULT_EVICTED_PRODUCERS_MAX,
});

/**
 * Bytes a partition's producer state may hold under `limits`: the table's entries and the digests
 * of evicted producers, and the same again serialized in the partition's latest snapshot (storage
 * keeps it in memory once retention has cut the log). 39.7 MB (37.9 MiB) with the defaults; about
 * 10 MB when ids are short and producers write one batch each.
 */
export function producerStateBytesMax(limits: ProducerLimits): number {
  const digestSnapshotBytes = Math.ceil(EVICTED_DIGEST_BYTES / 3) * 4; // base64
  return (
    limits.producersMax * (PRODUCER_ENTRY_BYTES_MAX + PRODUCER_SNAPSHOT_ENTRY_BYTES_MAX) +
    limits.evictedProducersMax * (EVICTED_DIGEST_MEMORY_BYTES_MAX + digestSnapshotBytes)
  );
}

export interface ProducerBatch {
  firstSequence: number;
  lastSequence: number;
  baseOffset: number;
}

export interface ProducerEntry {
  epoch: number;
  /** Oldest first. Invariant: 1..PRODUCER_BATCHES_KEPT batches with consecutive sequences. */
  batches: ProducerBatch[];
  /** The table's clock when this producer's last batch was recorded. */
  lastWriteMs: number;
}

type RefusalCode = 'OUT_OF_ORDER_SEQUENCE' | 'PRODUCER_FENCED' | 'UNKNOWN_PRODUCER' | 'INVALID_REQUEST';

export type SequenceCheck =
  | { kind: 'append' }
  | { kind: 'duplicate'; baseOffset: number }
  | { kind: 'refused'; code: RefusalCode; message: string };

/** What a snapshot holds: the clock and the live entries in the table's (update) order. */
export interface ProducerTableSnapshot {
  clockMs: number;
  /** [id, epoch, lastWriteMs, [[firstSequence, lastSequence, baseOffset], ...]] */
  producers: Array<[string, number, number, Array<[number, number, number]>]>;
  /** Digests of evicted producers, oldest first (EvictedProducers.encode). Absent: none. */
  evicted?: string;
  /** Producers evicted over the partition's history. Absent: 0. */
  evictionsTotal?: number;
  /** Evicted producers whose digest was dropped too (the digests were full). Absent: 0. */
  forgottenTotal?: number;
}

export function isExpired(entry: ProducerEntry, clockMs: number, expiryMs: number): boolean {
  return clockMs - entry.lastWriteMs >= expiryMs;
}

/**
 * The rule for a batch of `recordCount` records from `producer`, given the producer's live entry
 * (null: unknown, or expired) or, without one, the digest the table kept when it evicted the
 * producer. Kafka's rules: an older epoch is fenced; a new producer or a new epoch starts at
 * sequence 0; a batch equal to one of the last few is a duplicate; the next sequence is appended;
 * anything else is out of order. An evicted producer is held to the same rules against its digest
 * (so it may go on at its next sequence), except that a batch at or below its last sequence, whose
 * offsets are forgotten, is refused as UNKNOWN_PRODUCER: it was appended once already.
 */
export function checkSequence(
  entry: ProducerEntry | null,
  producer: ProducerInfo,
  recordCount: number,
  evicted: EvictedProducer | null = null,
): SequenceCheck {
  const first = producer.sequence;
  const last = first + recordCount - 1;
  const id = producer.id;
  if (last > SEQUENCE_MAX) {
    return refused(
      'INVALID_REQUEST',
      `producer/sequence: ${first}+${recordCount} records pass 2^32-1; use a higher epoch`,
    );
  }
  const known = entry ?? evicted;
  if (!known) {
    if (first === 0) return { kind: 'append' };
    return refused(
      'OUT_OF_ORDER_SEQUENCE',
      `producer '${id}' is unknown here (new, or forgotten after being idle): its first sequence must be 0, got ${first}`,
    );
  }
  if (producer.epoch < known.epoch) {
    return refused(
      'PRODUCER_FENCED',
      `producer '${id}' epoch ${producer.epoch} is fenced by epoch ${known.epoch}`,
    );
  }
  if (producer.epoch > known.epoch) {
    if (first === 0) return { kind: 'append' };
    return refused(
      'OUT_OF_ORDER_SEQUENCE',
      `producer '${id}' epoch ${producer.epoch} is new: its first sequence must be 0, got ${first}`,
    );
  }
  for (const batch of entry?.batches ?? []) {
    if (batch.firstSequence === first && batch.lastSequence === last) {
      return { kind: 'duplicate', baseOffset: batch.baseOffset };
    }
  }
  const lastSequence =
    'batches' in known ? known.batches[known.batches.length - 1]!.lastSequence : known.lastSequence;
  const expected = lastSequence + 1;
  if (first === expected) return { kind: 'append' };
  if (!entry && first < expected) {
    return refused(
      'UNKNOWN_PRODUCER',
      `producer '${id}' epoch ${producer.epoch} was evicted from this partition's full producer table: ` +
        `its sequences up to ${lastSequence} are in the log but their offsets are forgotten, so ` +
        `sequences ${first}..${last} were not appended again. Go on at sequence ${expected}, ` +
        'or start a new epoch (or a new producer id) at sequence 0',
    );
  }
  return refused(
    'OUT_OF_ORDER_SEQUENCE',
    `producer '${id}' epoch ${producer.epoch}: expected sequence ${expected}, got ${first}..${last}` +
      (first < expected ? ' (older than the batches remembered, or a different record count)' : ''),
  );
}

function refused(code: RefusalCode, message: string) {
  return { kind: 'refused', code, message } as const;
}

/** The entry after appending a batch (the check said append). Pure: `entry` is not changed. */
export function entryAfter(
  entry: ProducerEntry | null,
  producer: ProducerInfo,
  recordCount: number,
  baseOffset: number,
  clockMs: number,
): ProducerEntry {
  const batch: ProducerBatch = {
    firstSequence: producer.sequence,
    lastSequence: producer.sequence + recordCount - 1,
    baseOffset,
  };
  // concat and a one-element literal allocate exactly: a push would reserve 17 slots (136 bytes).
  const batches =
    entry && entry.epoch === producer.epoch
      ? entry.batches.slice(1 - PRODUCER_BATCHES_KEPT).concat(batch)
      : [batch];
  return { epoch: producer.epoch, batches, lastWriteMs: clockMs };
}

/** A producer's place in the table's last-write order: a doubly linked list, O(1) to move. */
interface Slot {
  id: string;
  entry: ProducerEntry;
  older: Slot | null;
  newer: Slot | null;
}

export class ProducerTable {
  /** Log time: the largest leader append time recorded. Invariant: never decreases. */
  clockMs = 0;
  /** Entries past their expiry may linger until swept; live() ignores them. */
  private readonly slots = new Map<string, Slot>();
  /**
   * The ends of the last-write order: expiry and the size limit drop from the oldest end. (Not the
   * Map's own order: V8 leaves a deleted Map entry as a hole until the next rehash, so finding the
   * first live entry again and again would cost thousands of steps per write in a full table.)
   */
  private oldest: Slot | null = null;
  private newest: Slot | null = null;
  /** Digests of the last evictedProducersMax evicted producers, in eviction order. */
  private readonly evicted: EvictedProducers;
  /** Producers evicted over the partition's history (in snapshots: the same on every replica). */
  evictionsTotal = 0;
  /** Evicted producers whose digest was dropped because the digests were full: forgotten. */
  forgottenTotal = 0;

  constructor(readonly limits: ProducerLimits = DEFAULT_PRODUCER_LIMITS) {
    assert(limits.producerExpiryMs > 0, 'producerExpiryMs must be > 0');
    assert(limits.producersMax > 0, 'producersMax must be > 0');
    this.evicted = new EvictedProducers(limits.evictedProducersMax);
  }

  /** Producers with an entry (expired ones not swept yet included). */
  get size(): number {
    return this.slots.size;
  }

  /** Evicted producers remembered by a digest (expired ones not swept yet included). */
  get evictedSize(): number {
    return this.evicted.size;
  }

  /** The producer's entry as stored, expired or not (the leader's pending view starts here). */
  stored(id: string): ProducerEntry | null {
    return this.slots.get(id)?.entry ?? null;
  }

  /** The producer's entry if it is live at `clockMs` (default: the table's clock). */
  live(id: string, clockMs = this.clockMs): ProducerEntry | null {
    const entry = this.slots.get(id)?.entry;
    return entry && !isExpired(entry, clockMs, this.limits.producerExpiryMs) ? entry : null;
  }

  /** What the table kept of the producer when it evicted it, if that is live at `clockMs`. */
  evictedEntry(id: string, clockMs = this.clockMs): EvictedProducer | null {
    if (this.evicted.size === 0) return null;
    const found = this.evicted.find(producerIdHash(id));
    return found && clockMs - found.lastWriteMs < this.limits.producerExpiryMs ? found : null;
  }

  /** Checks a batch as if it were applied next, stamped `appendTimeMs` by the leader. */
  check(producer: ProducerInfo, recordCount: number, appendTimeMs: number): SequenceCheck {
    const clockMs = Math.max(this.clockMs, appendTimeMs);
    const entry = this.live(producer.id, clockMs);
    return checkSequence(
      entry,
      producer,
      recordCount,
      entry ? null : this.evictedEntry(producer.id, clockMs),
    );
  }

  /** Advances the clock with a batch's append time (every batch, idempotent or not). */
  tick(appendTimeMs: number): void {
    if (appendTimeMs > this.clockMs) this.clockMs = appendTimeMs;
  }

  /** Records an appended idempotent batch (at the clock already advanced by tick()). */
  record(producer: ProducerInfo, recordCount: number, baseOffset: number): void {
    const next = entryAfter(this.live(producer.id), producer, recordCount, baseOffset, this.clockMs);
    const slot = this.slots.get(producer.id);
    if (slot) {
      slot.entry = next;
      this.unlink(slot);
      this.linkNewest(slot);
    } else {
      this.put(producer.id, next);
    }
    this.sweep();
  }

  private put(id: string, entry: ProducerEntry): void {
    const slot: Slot = { id, entry, older: null, newer: null };
    this.slots.set(id, slot);
    this.linkNewest(slot);
  }

  private linkNewest(slot: Slot): void {
    slot.older = this.newest;
    slot.newer = null;
    if (this.newest) this.newest.newer = slot;
    else this.oldest = slot;
    this.newest = slot;
  }

  private unlink(slot: Slot): void {
    if (slot.older) slot.older.newer = slot.newer;
    else this.oldest = slot.newer;
    if (slot.newer) slot.newer.older = slot.older;
    else this.newest = slot.older;
  }

  /**
   * Drops expired entries and digests and, past the size limit, evicts the least recently written
   * entries (each leaves a digest). Entries are in last-write order, so both are a prefix.
   */
  private sweep(): void {
    const expiryMs = this.limits.producerExpiryMs;
    this.evicted.dropExpired(this.clockMs, expiryMs);
    for (let slot = this.oldest; slot !== null; slot = this.oldest) {
      const expired = isExpired(slot.entry, this.clockMs, expiryMs);
      if (!expired && this.slots.size <= this.limits.producersMax) break;
      this.unlink(slot);
      this.slots.delete(slot.id);
      if (!expired) this.evict(slot.id, slot.entry);
    }
  }

  private evict(id: string, entry: ProducerEntry): void {
    this.evictionsTotal++;
    const lastSequence = entry.batches[entry.batches.length - 1]!.lastSequence;
    const digest = { epoch: entry.epoch, lastSequence, lastWriteMs: entry.lastWriteMs };
    if (this.evicted.push(producerIdHash(id), digest)) this.forgottenTotal++;
  }

  toSnapshot(): ProducerTableSnapshot {
    const producers: ProducerTableSnapshot['producers'] = [];
    for (let slot = this.oldest; slot !== null; slot = slot.newer) {
      const { id, entry } = slot;
      if (isExpired(entry, this.clockMs, this.limits.producerExpiryMs)) continue;
      const batches = entry.batches.map((b): [number, number, number] => [
        b.firstSequence,
        b.lastSequence,
        b.baseOffset,
      ]);
      producers.push([id, entry.epoch, entry.lastWriteMs, batches]);
    }
    const snapshot: ProducerTableSnapshot = { clockMs: this.clockMs, producers };
    if (this.evicted.size > 0) {
      snapshot.evicted = this.evicted.encode(this.clockMs, this.limits.producerExpiryMs);
    }
    if (this.evictionsTotal > 0) snapshot.evictionsTotal = this.evictionsTotal;
    if (this.forgottenTotal > 0) snapshot.forgottenTotal = this.forgottenTotal;
    return snapshot;
  }

  /** Replaces the table's content with a snapshot's (validated: a bad one is corruption). */
  restore(snapshot: ProducerTableSnapshot): void {
    assert(Number.isFinite(snapshot.clockMs), 'producer snapshot: bad clockMs');
    assert(Array.isArray(snapshot.producers), 'producer snapshot: producers is not a list');
    assert(
      snapshot.evicted === undefined || typeof snapshot.evicted === 'string',
      'producer snapshot: evicted is not a string',
    );
    this.slots.clear();
    this.oldest = null;
    this.newest = null;
    this.clockMs = snapshot.clockMs;
    this.evicted.restore(snapshot.evicted ?? '');
    this.evictionsTotal = snapshot.evictionsTotal ?? 0;
    this.forgottenTotal = snapshot.forgottenTotal ?? 0;
    for (const [id, epoch, lastWriteMs, batches] of snapshot.producers) {
      assert(typeof id === 'string' && Number.isInteger(epoch), `producer snapshot: bad entry for '${id}'`);
      assert(
        Array.isArray(batches) && batches.length > 0 && batches.length <= PRODUCER_BATCHES_KEPT,
        `producer snapshot: '${id}' has ${batches?.length} batches`,
      );
      assert(!this.slots.has(id), `producer snapshot: '${id}' twice`);
      this.put(id, {
        epoch,
        lastWriteMs,
        batches: batches.map(([firstSequence, lastSequence, baseOffset]) => ({
          firstSequence,
          lastSequence,
          baseOffset,
        })),
      });
    }
    this.sweep();
  }
}
