// The in-memory cache of one log's recent entries (in memory mode, the whole log, its data in the
// log's chunks: memory-chunks.ts). It keeps no object per entry: an entry's data is a slice of a
// shared buffer, held as (buffer, offset, length) in parallel arrays with its term and type, and an
// Entry is built when one is read. Cached entries live for seconds, through many young GCs: an
// Entry and its data view per cached entry were copied and then promoted by them, about 150 bytes
// per produced record on every replica.

import { AssertionError, assert } from '../raft/errors.js';
import { ENTRY_OVERHEAD_BYTES, type Entry, type EntryType } from '../raft/types.js';
import { entryDataSlab, isSlabBuffer } from './byte-slab.js';
import { type RecordRange, TIMESTAMP_NONE, TIMESTAMP_UNKNOWN } from './frame.js';
import type { MemoryChunks } from './memory-chunks.js';

/** Arrays are compacted once this many dropped positions lead them (and they are half dropped). */
const DROPPED_POSITIONS_COMPACT_MIN = 1024;

/**
 * Entries [first, end) by position: position p (head <= p < terms.length) holds the entry with
 * index first + (p - head).
 * Invariant: bytes is the sum of dataBytes + ENTRY_OVERHEAD_BYTES over the held positions.
 */
export class EntryCache {
  private buffers: (ArrayBufferLike | undefined)[] = [];
  private dataOffsets: number[] = [];
  private dataLengths: number[] = [];
  private terms: number[] = [];
  private types: EntryType[] = [];
  /** First record offset of each entry (-1: none)... */
  private baseOffsets: number[] = [];
  /** ...and the running next record offset after it (non-decreasing). */
  private offsetEnds: number[] = [];
  private head = 0;
  private firstIndex: number;
  private bytesValue = 0;
  /** Memory mode: every entry's data is copied into these, which go as the entries go. */
  private readonly chunks: MemoryChunks | null;

  constructor(first: number, chunks: MemoryChunks | null = null) {
    this.firstIndex = first;
    this.chunks = chunks;
  }

  /** Index of the first cached entry (also when none is cached: where the next would go). */
  get first(): number {
    return this.firstIndex;
  }

  /** One past the last cached index. */
  get end(): number {
    return this.firstIndex + this.terms.length - this.head;
  }

  /** Data plus per-entry overhead, as entryBytes() counts it. */
  get bytes(): number {
    return this.bytesValue;
  }

  get count(): number {
    return this.terms.length - this.head;
  }

  /**
   * Appends the next entry. Data that is a view into a larger buffer (a socket's read chunk: the
   * transport decodes without copies) is copied into a slab first, so that caching an entry does
   * not keep its chunk alive. With chunks (memory mode), all data is copied into them.
   */
  push(entry: Entry, range: RecordRange | null): void {
    // Per entry: the message is built only on failure.
    if (entry.index !== this.end)
      throw new AssertionError(`cache: entry ${entry.index} pushed at ${this.end}`);
    let data = entry.data;
    if (this.chunks !== null) {
      const maxTimestampMs = range ? (range.maxTimestampMs ?? TIMESTAMP_UNKNOWN) : TIMESTAMP_NONE;
      data = this.chunks.copy(entry.index, data, maxTimestampMs);
    } else if (data.byteLength !== data.buffer.byteLength && !isSlabBuffer(data.buffer)) {
      const copy = entryDataSlab.take(data.byteLength);
      copy.set(data);
      data = copy;
    }
    const previousEnd = this.count > 0 ? this.offsetEnds[this.offsetEnds.length - 1]! : -1;
    this.buffers.push(data.buffer);
    this.dataOffsets.push(data.byteOffset);
    this.dataLengths.push(data.byteLength);
    this.terms.push(entry.term);
    this.types.push(entry.type);
    this.baseOffsets.push(range ? range.baseOffset : -1);
    this.offsetEnds.push(range ? range.baseOffset + range.recordCount : previousEnd);
    this.bytesValue += data.byteLength + ENTRY_OVERHEAD_BYTES;
  }

  /** Entries [lo, hi) (within [first, end)), stopping before maxBytes is passed but at least one. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo < this.firstIndex || hi > this.end || lo >= hi) {
      throw new AssertionError(`cache: slice(${lo}, ${hi}) outside [${this.firstIndex}, ${this.end})`);
    }
    return this.collect({ from: this.positionOf(lo), to: this.positionOf(hi), maxBytes, recordsOnly: false });
  }

  /**
   * Entries holding records from `fromOffset` on, up to maxBytes (at least one), none past
   * maxIndex. Null when the cache does not reach back to fromOffset (unless `wholeLog`: the cache
   * is the whole log, in memory mode, and then what it holds is the answer).
   */
  recordsFrom(options: {
    fromOffset: number;
    maxBytes: number;
    maxIndex: number;
    wholeLog: boolean;
  }): Entry[] | null {
    const { fromOffset, maxBytes, maxIndex, wholeLog: whole } = options;
    const length = this.terms.length;
    let firstWithRecords = this.head;
    while (firstWithRecords < length && this.baseOffsets[firstWithRecords]! < 0) firstWithRecords++;
    if (firstWithRecords >= length) return whole ? [] : null;
    if (this.baseOffsets[firstWithRecords]! > fromOffset && !whole) return null;
    // First entry whose records end after fromOffset (offsetEnds is non-decreasing).
    let lo = this.head;
    let hi = length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.offsetEnds[mid]! > fromOffset) hi = mid;
      else lo = mid + 1;
    }
    const to = Math.min(length, this.positionOf(maxIndex + 1));
    return this.collect({ from: lo, to, maxBytes, recordsOnly: true });
  }

  /**
   * Where a time lookup reads the cached entries from: the base offset of the first cached entry
   * at or after `fromIndex` that holds records; null if none does. The cache keeps no timestamps:
   * another array per entry costs every append more than it would save the rare lookup, which
   * reads on from here.
   */
  firstOffsetFrom(fromIndex: number): number | null {
    for (let p = Math.max(this.head, this.positionOf(fromIndex)); p < this.terms.length; p++) {
      if (this.baseOffsets[p]! >= 0) return this.baseOffsets[p]!;
    }
    return null;
  }

  /**
   * Entries at positions [from, to), stopping before maxBytes is passed but at least one; with
   * recordsOnly, entries without records are skipped.
   */
  private collect(range: { from: number; to: number; maxBytes: number; recordsOnly: boolean }): Entry[] {
    const out: Entry[] = [];
    let total = 0;
    for (let p = range.from; p < range.to; p++) {
      if (range.recordsOnly && this.baseOffsets[p]! < 0) continue;
      total += this.bytesAt(p);
      if (total > range.maxBytes && out.length > 0) break;
      out.push(this.entryAt(p));
    }
    return out;
  }

  /** Drops every entry at or after `index`; below first, empties the cache to start there. */
  truncateFrom(index: number): void {
    assert(index <= this.end, `cache: truncateFrom(${index}) past its end ${this.end}`);
    if (index <= this.firstIndex) {
      this.clear(index);
      return;
    }
    const keep = this.positionOf(index);
    if (keep < this.terms.length) this.chunks?.truncateFrom(index, this.dataOffsets[keep]!);
    for (let p = keep; p < this.terms.length; p++) this.bytesValue -= this.bytesAt(p);
    this.buffers.length = keep;
    this.dataOffsets.length = keep;
    this.dataLengths.length = keep;
    this.terms.length = keep;
    this.types.length = keep;
    this.baseOffsets.length = keep;
    this.offsetEnds.length = keep;
  }

  /** Empties the cache; the next entry pushed must be `first`. */
  clear(first: number): void {
    this.buffers = [];
    this.dataOffsets = [];
    this.dataLengths = [];
    this.terms = [];
    this.types = [];
    this.baseOffsets = [];
    this.offsetEnds = [];
    this.head = 0;
    this.bytesValue = 0;
    this.firstIndex = first;
    this.chunks?.clear();
  }

  /** Drops the oldest entries while over budgetBytes, none above indexMax, always keeping one. */
  evict(options: { budgetBytes: number; indexMax: number }): void {
    const { budgetBytes, indexMax } = options;
    while (this.bytesValue > budgetBytes && this.firstIndex <= indexMax && this.count > 1) this.dropOldest();
    this.chunks?.dropBelow(this.firstIndex);
    this.maybeCompact();
  }

  /**
   * Drops every entry below `index` (a compaction); an empty cache then starts at index. With
   * chunks, those wholly below it go too.
   */
  dropBelow(index: number): void {
    while (this.firstIndex < index && this.count > 0) this.dropOldest();
    if (this.firstIndex < index) this.firstIndex = index;
    this.chunks?.dropBelow(index);
    this.maybeCompact();
  }

  private dropOldest(): void {
    this.bytesValue -= this.bytesAt(this.head);
    this.buffers[this.head] = undefined; // let the data go
    this.head++;
    this.firstIndex++;
  }

  private maybeCompact(): void {
    if (this.head < DROPPED_POSITIONS_COMPACT_MIN || this.head * 2 <= this.terms.length) return;
    const head = this.head;
    this.buffers = this.buffers.slice(head);
    this.dataOffsets = this.dataOffsets.slice(head);
    this.dataLengths = this.dataLengths.slice(head);
    this.terms = this.terms.slice(head);
    this.types = this.types.slice(head);
    this.baseOffsets = this.baseOffsets.slice(head);
    this.offsetEnds = this.offsetEnds.slice(head);
    this.head = 0;
  }

  /** What entryBytes() counts for the entry at a position. */
  private bytesAt(position: number): number {
    return this.dataLengths[position]! + ENTRY_OVERHEAD_BYTES;
  }

  private positionOf(index: number): number {
    return this.head + index - this.firstIndex;
  }

  private entryAt(position: number): Entry {
    return {
      term: this.terms[position]!,
      index: this.firstIndex + position - this.head,
      type: this.types[position]!,
      data: new Uint8Array(this.buffers[position]!, this.dataOffsets[position]!, this.dataLengths[position]!),
    };
  }
}
