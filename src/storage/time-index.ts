// The time index of one log: where a lookup of "the first record at or after time T" starts
// reading. Per segment file a sparse index (segment.ts: the largest record timestamp per point),
// per memory-mode chunk its largest timestamp (memory-chunks.ts); entries not in the files yet are
// read from the first cached one with records (entry-cache.ts). Timestamps need not grow with
// offsets: a lookup takes the first entry whose running maximum reaches T, as Kafka's time index
// does, so every record before it is earlier.

import type { EntryCache } from './entry-cache.js';
import type { MemoryChunks } from './memory-chunks.js';
import type { Segment } from './segment.js';

/** What a disk-mode log's lookup reads. */
export interface DiskTimeIndex {
  segments: readonly Segment[];
  generation: number;
  firstIndex: number;
  /**
   * Highest index whose frames in the segment files are the log's own: written, and not about
   * to be cut (LogWriter.evictableUpTo). Every entry above it is in the cache.
   */
  trustedLastIndex: number;
  cache: EntryCache;
}

/**
 * An offset at or below the first stored record whose timestamp is at least `timestampMs`, with
 * every stored record below it earlier; null when no stored record reaches it. It may be below
 * the log start (the caller starts no lower than that) and is exact to a sparse point
 * (indexIntervalBytes) on disk, to a chunk in memory mode, and to the first entry not yet in the
 * files: the caller reads records on from it.
 */
export function diskOffsetForTime(index: DiskTimeIndex, timestampMs: number): number | null {
  for (const segment of index.segments) {
    // Files of an older generation await deletion after a snapshot replaced the log.
    if (segment.generation !== index.generation || segment.lastIndex < index.firstIndex) continue;
    if (segment.baseIndex > index.trustedLastIndex) break;
    const offset = segment.offsetForTime(timestampMs, index.trustedLastIndex);
    if (offset !== null) return offset;
  }
  return index.cache.firstOffsetFrom(index.trustedLastIndex + 1);
}

/** The same for a memory-mode log: the first chunk that reaches the time (the cache is the whole log). */
export function memoryOffsetForTime(
  chunks: MemoryChunks,
  cache: EntryCache,
  timestampMs: number,
): number | null {
  const fromIndex = chunks.firstIndexForTime(timestampMs);
  return fromIndex === null ? null : cache.firstOffsetFrom(fromIndex);
}
