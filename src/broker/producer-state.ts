// The idempotent-producer table of one partition: per producer id, its epoch and its last few
// batches' sequence ranges and offsets, as Kafka's broker keeps them. Pure and deterministic: it
// changes only through record(), in log order, and its only clock is the leader's append time
// stamped into each batch, so every replica that applies the same log holds the same table.

import { assert } from '../raft/errors.js';
import type { ProducerInfo } from './record-batch.js';

/** Batches remembered per producer: a retry of any of them is answered with its offsets. */
export const PRODUCER_BATCHES_KEPT = 5;
/** Kafka's transactional.id.expiration.ms default: 7 days. */
export const DEFAULT_PRODUCER_EXPIRY_MS = 7 * 24 * 60 * 60 * 1000;
/** Producers remembered per partition; past it the least recently written is forgotten. */
export const DEFAULT_PRODUCERS_MAX = 10_000;
const SEQUENCE_MAX = 0xffff_ffff;

export interface ProducerLimits {
  /** A producer with no batch for this long (in log time) is forgotten, its epoch too. */
  producerExpiryMs: number;
  producersMax: number;
}

export const DEFAULT_PRODUCER_LIMITS: Readonly<ProducerLimits> = Object.freeze({
  producerExpiryMs: DEFAULT_PRODUCER_EXPIRY_MS,
  producersMax: DEFAULT_PRODUCERS_MAX,
});

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

export type SequenceCheck =
  | { kind: 'append' }
  | { kind: 'duplicate'; baseOffset: number }
  | {
      kind: 'refused';
      code: 'OUT_OF_ORDER_SEQUENCE' | 'PRODUCER_FENCED' | 'INVALID_REQUEST';
      message: string;
    };

/** What a snapshot holds: the clock and the live entries in the table's (update) order. */
export interface ProducerTableSnapshot {
  clockMs: number;
  /** [id, epoch, lastWriteMs, [[firstSequence, lastSequence, baseOffset], ...]] */
  producers: Array<[string, number, number, Array<[number, number, number]>]>;
}

export function isExpired(entry: ProducerEntry, clockMs: number, expiryMs: number): boolean {
  return clockMs - entry.lastWriteMs >= expiryMs;
}

/**
 * The rule for a batch of `recordCount` records from `producer`, given the producer's live entry
 * (null: unknown, or expired). Kafka's rules: an older epoch is fenced; a new producer or a new
 * epoch starts at sequence 0; a batch equal to one of the last few is a duplicate; the next
 * sequence is appended; anything else is out of order.
 */
export function checkSequence(
  entry: ProducerEntry | null,
  producer: ProducerInfo,
  recordCount: number,
): SequenceCheck {
  const first = producer.sequence;
  const last = first + recordCount - 1;
  if (last > SEQUENCE_MAX) {
    return refused(
      'INVALID_REQUEST',
      `producer/sequence: ${first}+${recordCount} records pass 2^32-1; use a higher epoch`,
    );
  }
  if (!entry) {
    if (first === 0) return { kind: 'append' };
    return refused(
      'OUT_OF_ORDER_SEQUENCE',
      `producer '${producer.id}' is unknown here (new, or forgotten after being idle): its first sequence must be 0, got ${first}`,
    );
  }
  if (producer.epoch < entry.epoch) {
    return refused(
      'PRODUCER_FENCED',
      `producer '${producer.id}' epoch ${producer.epoch} is fenced by epoch ${entry.epoch}`,
    );
  }
  if (producer.epoch > entry.epoch) {
    if (first === 0) return { kind: 'append' };
    return refused(
      'OUT_OF_ORDER_SEQUENCE',
      `producer '${producer.id}' epoch ${producer.epoch} is new: its first sequence must be 0, got ${first}`,
    );
  }
  for (const batch of entry.batches) {
    if (batch.firstSequence === first && batch.lastSequence === last) {
      return { kind: 'duplicate', baseOffset: batch.baseOffset };
    }
  }
  const expected = entry.batches[entry.batches.length - 1]!.lastSequence + 1;
  if (first === expected) return { kind: 'append' };
  return refused(
    'OUT_OF_ORDER_SEQUENCE',
    `producer '${producer.id}' epoch ${producer.epoch}: expected sequence ${expected}, got ${first}..${last}` +
      (first < expected ? ' (older than the batches remembered, or a different record count)' : ''),
  );
}

function refused(code: 'OUT_OF_ORDER_SEQUENCE' | 'PRODUCER_FENCED' | 'INVALID_REQUEST', message: string) {
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
  const keep = entry && entry.epoch === producer.epoch ? entry.batches.slice(1 - PRODUCER_BATCHES_KEPT) : [];
  keep.push(batch);
  return { epoch: producer.epoch, batches: keep, lastWriteMs: clockMs };
}

export class ProducerTable {
  /** Log time: the largest leader append time recorded. Invariant: never decreases. */
  clockMs = 0;
  /**
   * Entries in the order they were last written, oldest first: expiry and the size limit drop
   * from the front. Entries past their expiry may linger until swept; live() ignores them.
   */
  private readonly entries = new Map<string, ProducerEntry>();

  constructor(readonly limits: ProducerLimits = DEFAULT_PRODUCER_LIMITS) {
    assert(limits.producerExpiryMs > 0, 'producerExpiryMs must be > 0');
    assert(limits.producersMax > 0, 'producersMax must be > 0');
  }

  get size(): number {
    return this.entries.size;
  }

  /** The producer's entry as stored, expired or not (the leader's pending view starts here). */
  stored(id: string): ProducerEntry | null {
    return this.entries.get(id) ?? null;
  }

  /** The producer's entry if it is live at `clockMs` (default: the table's clock). */
  live(id: string, clockMs = this.clockMs): ProducerEntry | null {
    const entry = this.entries.get(id);
    return entry && !isExpired(entry, clockMs, this.limits.producerExpiryMs) ? entry : null;
  }

  /** Checks a batch as if it were applied next, stamped `appendTimeMs` by the leader. */
  check(producer: ProducerInfo, recordCount: number, appendTimeMs: number): SequenceCheck {
    return checkSequence(this.live(producer.id, Math.max(this.clockMs, appendTimeMs)), producer, recordCount);
  }

  /** Advances the clock with a batch's append time (every batch, idempotent or not). */
  tick(appendTimeMs: number): void {
    if (appendTimeMs > this.clockMs) this.clockMs = appendTimeMs;
  }

  /** Records an appended idempotent batch (at the clock already advanced by tick()). */
  record(producer: ProducerInfo, recordCount: number, baseOffset: number): void {
    const next = entryAfter(this.live(producer.id), producer, recordCount, baseOffset, this.clockMs);
    this.entries.delete(producer.id); // re-insert at the back: the most recently written
    this.entries.set(producer.id, next);
    this.sweep();
  }

  /** Drops expired entries and, past the size limit, the least recently written ones. */
  private sweep(): void {
    for (const [id, entry] of this.entries) {
      const overSize = this.entries.size > this.limits.producersMax;
      if (!overSize && !isExpired(entry, this.clockMs, this.limits.producerExpiryMs)) break;
      this.entries.delete(id);
    }
  }

  toSnapshot(): ProducerTableSnapshot {
    const producers: ProducerTableSnapshot['producers'] = [];
    for (const [id, entry] of this.entries) {
      if (isExpired(entry, this.clockMs, this.limits.producerExpiryMs)) continue;
      const batches = entry.batches.map((b): [number, number, number] => [
        b.firstSequence,
        b.lastSequence,
        b.baseOffset,
      ]);
      producers.push([id, entry.epoch, entry.lastWriteMs, batches]);
    }
    return { clockMs: this.clockMs, producers };
  }

  /** Replaces the table's content with a snapshot's (validated: a bad one is corruption). */
  restore(snapshot: ProducerTableSnapshot): void {
    assert(Number.isFinite(snapshot.clockMs), 'producer snapshot: bad clockMs');
    assert(Array.isArray(snapshot.producers), 'producer snapshot: producers is not a list');
    this.entries.clear();
    this.clockMs = snapshot.clockMs;
    for (const [id, epoch, lastWriteMs, batches] of snapshot.producers) {
      assert(typeof id === 'string' && Number.isInteger(epoch), `producer snapshot: bad entry for '${id}'`);
      assert(
        Array.isArray(batches) && batches.length > 0 && batches.length <= PRODUCER_BATCHES_KEPT,
        `producer snapshot: '${id}' has ${batches?.length} batches`,
      );
      this.entries.set(id, {
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
