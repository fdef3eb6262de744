// The entry cache keeps entries as slices of shared buffers and builds Entry objects on reads:
// what it returns must be exactly what was pushed, across eviction, truncation and compaction.

import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import { ENTRY_OVERHEAD_BYTES } from '../../src/raft/types.js';
import { EntryCache } from '../../src/storage/entry-cache.js';
import { entryProblem, makeEntries } from './helpers.js';

/** One record per entry, offset = index - 1; entries whose index is a multiple of 5 carry none. */
function rangeOf(entry: Entry): { baseOffset: number; recordCount: number } | null {
  return entry.index % 5 === 0 ? null : { baseOffset: entry.index - 1, recordCount: 1 };
}

function filled(first: number, count: number, bytes = 32): EntryCache {
  const cache = new EntryCache(first);
  for (const entry of makeEntries(first, count, 2, bytes)) cache.push(entry, rangeOf(entry));
  return cache;
}

function indexes(entries: readonly Entry[]): number[] {
  return entries.map((entry) => entry.index);
}

describe('EntryCache', () => {
  it('returns what was pushed, index, term and data, and counts its bytes', () => {
    const cache = filled(10, 20);
    expect([cache.first, cache.end, cache.count]).toEqual([10, 30, 20]);
    expect(cache.bytes).toBe(20 * (32 + ENTRY_OVERHEAD_BYTES));
    const read = cache.slice(12, 18, Number.MAX_SAFE_INTEGER);
    expect(indexes(read)).toEqual([12, 13, 14, 15, 16, 17]);
    for (const entry of read) expect(entryProblem(entry)).toBeNull();
    expect(read.every((entry) => entry.term === 2)).toBe(true);
  });

  it('stops a slice before maxBytes is passed, but returns at least one entry', () => {
    const cache = filled(1, 10);
    const perEntry = 32 + ENTRY_OVERHEAD_BYTES;
    expect(cache.slice(1, 11, 3 * perEntry).length).toBe(3);
    expect(cache.slice(1, 11, 3 * perEntry + 1).length).toBe(3);
    expect(cache.slice(4, 11, 1).length).toBe(1);
  });

  it('refuses an entry out of sequence, and a cut past its end', () => {
    const cache = filled(1, 3);
    expect(() => cache.push(makeEntries(5, 1, 2)[0]!, null)).toThrow(/pushed at 4/);
    expect(() => cache.truncateFrom(5)).toThrow(/past its end 4/);
  });

  it('truncates from an index, and starts afresh when cut below its first entry', () => {
    const cache = filled(1, 10);
    cache.truncateFrom(6);
    expect([cache.first, cache.end]).toEqual([1, 6]);
    expect(cache.bytes).toBe(5 * (32 + ENTRY_OVERHEAD_BYTES));
    const next = makeEntries(6, 1, 3)[0]!;
    cache.push(next, null);
    expect(cache.slice(6, 7, Number.MAX_SAFE_INTEGER)[0]!.term).toBe(3);
    cache.truncateFrom(0);
    expect([cache.first, cache.end, cache.bytes]).toEqual([0, 0, 0]);
  });

  it('evicts the oldest entries over budget, never above upTo, and always keeps one', () => {
    const perEntry = 32 + ENTRY_OVERHEAD_BYTES;
    const cache = filled(1, 3000);
    cache.evict({ budgetBytes: 100 * perEntry, indexMax: 2000 });
    expect([cache.first, cache.end]).toEqual([2001, 3001]);
    cache.evict({ budgetBytes: 100 * perEntry, indexMax: Number.MAX_SAFE_INTEGER });
    expect([cache.first, cache.count]).toEqual([2901, 100]);
    cache.evict({ budgetBytes: 0, indexMax: Number.MAX_SAFE_INTEGER });
    expect(cache.count).toBe(1);
    // After compaction of its arrays, reads still map indexes right.
    expect(entryProblem(cache.slice(3000, 3001, 0)[0]!)).toBeNull();
  });

  it('drops entries below a compaction point, and moves an empty cache up to it', () => {
    const cache = filled(1, 10);
    cache.dropBelow(4);
    expect([cache.first, cache.end]).toEqual([4, 11]);
    expect(indexes(cache.slice(4, 6, Number.MAX_SAFE_INTEGER))).toEqual([4, 5]);
    const empty = new EntryCache(3);
    empty.dropBelow(7);
    expect([empty.first, empty.end]).toEqual([7, 7]);
  });

  it('finds entries by record offset, skipping those without records, up to maxIndex', () => {
    const cache = filled(1, 20);
    // Offset 7 is in entry 8; entry 10 carries no records.
    expect(
      indexes(
        cache.recordsFrom({
          fromOffset: 7,
          maxBytes: Number.MAX_SAFE_INTEGER,
          maxIndex: 12,
          wholeLog: false,
        })!,
      ),
    ).toEqual([8, 9, 11, 12]);
    expect(
      cache.recordsFrom({ fromOffset: 0, maxBytes: Number.MAX_SAFE_INTEGER, maxIndex: 20, wholeLog: false })!
        .length,
    ).toBe(16);
    cache.evict({ budgetBytes: 0, indexMax: 5 });
    // Offset 2 was in entry 3, evicted: the caller must read the disk.
    expect(
      cache.recordsFrom({ fromOffset: 2, maxBytes: Number.MAX_SAFE_INTEGER, maxIndex: 20, wholeLog: false }),
    ).toBeNull();
    // Unless the cache is the whole log (memory mode): then it answers with what it holds.
    expect(
      indexes(
        cache.recordsFrom({ fromOffset: 2, maxBytes: Number.MAX_SAFE_INTEGER, maxIndex: 7, wholeLog: true })!,
      ),
    ).toEqual([6, 7]);
    expect(
      new EntryCache(1).recordsFrom({ fromOffset: 0, maxBytes: 100, maxIndex: 10, wholeLog: true }),
    ).toEqual([]);
    expect(
      new EntryCache(1).recordsFrom({ fromOffset: 0, maxBytes: 100, maxIndex: 10, wholeLog: false }),
    ).toBeNull();
  });
});
