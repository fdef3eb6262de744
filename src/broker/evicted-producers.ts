// What a partition's producer table still knows of the producers it evicted when full: per
// eviction a 24-byte digest (a 64-bit hash of the producer id, its epoch, its last sequence and
// its last write time), oldest first, for the last `capacityMax` evictions. Producer ids are
// chosen by clients, so without this an evicted producer's retry of its first batch would look
// like a new producer's and be appended twice. Pure and deterministic like the table it serves.
//
// Layout: a ring of digests in typed arrays (eviction order), and an open-addressing index from
// hash to ring slot (linear probing, load at most 1/2, backward-shift deletion). Both grow by
// doubling up to `capacityMax`, so a partition that never evicts holds nothing here.

import { hash as cryptoHash } from 'node:crypto';
import { assert } from '../raft/errors.js';

/** Bytes of one digest in a snapshot: hash (2 x u32), epoch (u32), last sequence (u32), f64. */
export const EVICTED_DIGEST_BYTES = 24;
/** Bytes one remembered digest costs in memory at most: 16 + 8 in the ring, 2 to 4 index slots. */
export const EVICTED_DIGEST_MEMORY_BYTES_MAX = EVICTED_DIGEST_BYTES + 4 * 4;
const WORDS = 4; // per slot in `words`: hash high, hash low, epoch, last sequence
const SLOTS_INITIAL = 1024;

/** A 64-bit hash of a producer id, as two unsigned 32-bit halves. */
export interface ProducerIdHash {
  high: number;
  low: number;
}

/** SHA-256 of the id's UTF-8 bytes, first 64 bits: the same on every replica and every run. */
export function producerIdHash(id: string): ProducerIdHash {
  const digest = cryptoHash('sha256', id, 'buffer'); // one-shot: half the cost of createHash()
  return { high: digest.readUInt32LE(0), low: digest.readUInt32LE(4) };
}

export interface EvictedProducer {
  epoch: number;
  /** The last sequence the producer had appended at `epoch` when it was evicted. */
  lastSequence: number;
  /** The table's clock when the producer last wrote (log time, as ProducerEntry.lastWriteMs). */
  lastWriteMs: number;
}

export class EvictedProducers {
  /** WORDS u32 per slot. Invariant: slots head .. head+count-1 (mod allocated) hold digests. */
  private words = new Uint32Array(0);
  private writeTimesMs = new Float64Array(0);
  /** Open addressing: slot + 1 of the newest digest with that hash, 0 for empty. */
  private index = new Int32Array(0);
  private head = 0;
  private count = 0;

  constructor(readonly capacityMax: number) {
    assert(Number.isInteger(capacityMax) && capacityMax >= 0, 'evicted producers: bad capacity');
  }

  get size(): number {
    return this.count;
  }

  /** Slots allocated now (at most capacityMax). */
  private get allocated(): number {
    return this.writeTimesMs.length;
  }

  /**
   * Remembers an eviction as the newest digest. Returns true if the ring was full and its oldest
   * digest was dropped to make room (that producer is then forgotten entirely).
   */
  push(hash: ProducerIdHash, producer: EvictedProducer): boolean {
    if (this.capacityMax === 0) return true;
    let dropped = false;
    if (this.count === this.allocated) {
      if (this.allocated < this.capacityMax) this.grow();
      else {
        this.dropOldest();
        dropped = true;
      }
    }
    const slot = (this.head + this.count) % this.allocated;
    this.words[slot * WORDS] = hash.high;
    this.words[slot * WORDS + 1] = hash.low;
    this.words[slot * WORDS + 2] = producer.epoch;
    this.words[slot * WORDS + 3] = producer.lastSequence;
    this.writeTimesMs[slot] = producer.lastWriteMs;
    this.count++;
    this.indexSet(slot);
    return dropped;
  }

  /** The newest digest with this hash, or null. */
  find(hash: ProducerIdHash): EvictedProducer | null {
    if (this.count === 0) return null;
    const position = this.indexFind(hash);
    if (position < 0) return null;
    const slot = this.index[position]! - 1;
    return {
      epoch: this.words[slot * WORDS + 2]!,
      lastSequence: this.words[slot * WORDS + 3]!,
      lastWriteMs: this.writeTimesMs[slot]!,
    };
  }

  /**
   * Drops the oldest digests whose producer would have expired by now. Digests are in eviction
   * order, which is last-write order (the table evicts its least recently written first), so the
   * expired ones are always a prefix.
   */
  dropExpired(clockMs: number, expiryMs: number): void {
    while (this.count > 0 && clockMs - this.writeTimesMs[this.head]! >= expiryMs) this.dropOldest();
  }

  /** The live digests, oldest first, as base64 of EVICTED_DIGEST_BYTES records (the snapshot). */
  encode(clockMs: number, expiryMs: number): string {
    let first = 0;
    while (first < this.count && clockMs - this.writeTimesMs[this.slotAt(first)]! >= expiryMs) first++;
    const bytes = Buffer.alloc((this.count - first) * EVICTED_DIGEST_BYTES);
    for (let i = first, at = 0; i < this.count; i++, at += EVICTED_DIGEST_BYTES) {
      const slot = this.slotAt(i);
      for (let w = 0; w < WORDS; w++) bytes.writeUInt32LE(this.words[slot * WORDS + w]!, at + 4 * w);
      bytes.writeDoubleLE(this.writeTimesMs[slot]!, at + 16);
    }
    return bytes.toString('base64');
  }

  /** Replaces the content with encode()'s (the newest capacityMax if it holds more). */
  restore(encoded: string): void {
    const bytes = Buffer.from(encoded, 'base64');
    assert(
      bytes.length % EVICTED_DIGEST_BYTES === 0,
      `producer snapshot: evicted digests of ${bytes.length} bytes`,
    );
    const total = bytes.length / EVICTED_DIGEST_BYTES;
    const kept = Math.min(total, this.capacityMax);
    // Allocated at once (a retention pass restores a full set): growth would copy it 7 times.
    this.count = 0;
    this.resize(kept === 0 ? 0 : Math.min(this.capacityMax, Math.max(SLOTS_INITIAL, kept)));
    for (let i = total - kept; i < total; i++) {
      const at = i * EVICTED_DIGEST_BYTES;
      const lastWriteMs = bytes.readDoubleLE(at + 16);
      assert(Number.isFinite(lastWriteMs), 'producer snapshot: bad evicted digest time');
      this.push(
        { high: bytes.readUInt32LE(at), low: bytes.readUInt32LE(at + 4) },
        { epoch: bytes.readUInt32LE(at + 8), lastSequence: bytes.readUInt32LE(at + 12), lastWriteMs },
      );
    }
  }

  private slotAt(i: number): number {
    return (this.head + i) % this.allocated;
  }

  private dropOldest(): void {
    assert(this.count > 0, 'evicted producers: drop from an empty ring');
    const slot = this.head;
    const position = this.indexFind(this.hashAt(slot));
    // The index names the newest digest of a hash: an older one of the same id is not in it.
    if (position >= 0 && this.index[position] === slot + 1) this.indexDelete(position);
    this.head = (this.head + 1) % this.allocated;
    this.count--;
  }

  /** Doubles the ring (up to capacityMax). */
  private grow(): void {
    this.resize(Math.min(this.capacityMax, Math.max(SLOTS_INITIAL, this.allocated * 2)));
  }

  /** Reallocates the ring with `allocated` slots, laid out oldest first from slot 0; re-indexes. */
  private resize(allocated: number): void {
    assert(allocated >= this.count, 'evicted producers: resize below the count');
    const words = new Uint32Array(allocated * WORDS);
    const writeTimesMs = new Float64Array(allocated);
    for (let i = 0; i < this.count; i++) {
      const slot = this.slotAt(i);
      words.set(this.words.subarray(slot * WORDS, slot * WORDS + WORDS), i * WORDS);
      writeTimesMs[i] = this.writeTimesMs[slot]!;
    }
    this.words = words;
    this.writeTimesMs = writeTimesMs;
    this.head = 0;
    let indexSize = allocated === 0 ? 0 : 16;
    while (indexSize < 2 * allocated) indexSize *= 2;
    this.index = new Int32Array(indexSize);
    for (let slot = 0; slot < this.count; slot++) this.indexSet(slot);
  }

  private hashAt(slot: number): ProducerIdHash {
    return { high: this.words[slot * WORDS]!, low: this.words[slot * WORDS + 1]! };
  }

  private home(low: number): number {
    return low & (this.index.length - 1);
  }

  /** The index position holding this hash, or -1. */
  private indexFind(hash: ProducerIdHash): number {
    if (this.index.length === 0) return -1;
    const mask = this.index.length - 1;
    for (let position = this.home(hash.low); ; position = (position + 1) & mask) {
      const value = this.index[position]!;
      if (value === 0) return -1;
      const slot = value - 1;
      if (this.words[slot * WORDS] === hash.high && this.words[slot * WORDS + 1] === hash.low)
        return position;
    }
  }

  /** Points the slot's hash at this slot (a newer digest of the same id replaces the older). */
  private indexSet(slot: number): void {
    const hash = this.hashAt(slot);
    const found = this.indexFind(hash);
    if (found >= 0) {
      this.index[found] = slot + 1;
      return;
    }
    const mask = this.index.length - 1;
    let position = this.home(hash.low);
    while (this.index[position] !== 0) position = (position + 1) & mask;
    this.index[position] = slot + 1;
  }

  /** Linear-probing deletion without tombstones: later entries of the probe run shift back. */
  private indexDelete(position: number): void {
    const mask = this.index.length - 1;
    let hole = position;
    for (let next = (hole + 1) & mask; this.index[next] !== 0; next = (next + 1) & mask) {
      const home = this.home(this.words[(this.index[next]! - 1) * WORDS + 1]!);
      // An entry may move into the hole unless its home lies cyclically in (hole, next].
      const stays = hole <= next ? hole < home && home <= next : home > hole || home <= next;
      if (stays) continue;
      this.index[hole] = this.index[next]!;
      hole = next;
    }
    this.index[hole] = 0;
  }
}
