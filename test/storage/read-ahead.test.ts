// The ranges entries() reads below the cache: a miss loads one, and a reader half way through a
// range has the next one loaded ahead, so a catch-up reads the log sequentially without stalls.

import { describe, expect, it } from 'vitest';
import { type Entry, EntryType } from '../../src/raft/index.js';
import { ReadAhead } from '../../src/storage/read-ahead.js';

const ENTRY_DATA_BYTES = 100;
/** entryBytes() of one test entry: its data and the per-entry overhead. */
const ENTRY_BYTES = ENTRY_DATA_BYTES + 24;

/** A log of entries 1..lastIndex on "disk"; each read waits until the test releases it. */
function fakeLog(options: { lastIndex: number; loadEntries: number; cacheFirst?: number }) {
  const reads: { lo: number; release: () => void }[] = [];
  let loaded = 0;
  const ahead = new ReadAhead({
    loadBytes: options.loadEntries * ENTRY_BYTES,
    read: (lo, hi, maxBytes) =>
      new Promise<Entry[]>((resolve) => {
        const count = Math.max(1, Math.floor(maxBytes / ENTRY_BYTES));
        const end = Math.min(hi, options.lastIndex + 1, lo + count);
        const entries: Entry[] = [];
        for (let index = lo; index < end; index++) {
          entries.push({ index, term: 1, type: EntryType.Normal, data: new Uint8Array(ENTRY_DATA_BYTES) });
        }
        reads.push({ lo, release: () => resolve(entries) });
      }),
    readAheadEnd: () => options.cacheFirst ?? options.lastIndex + 1,
    onLoaded: () => loaded++,
    onFailure: (error) => {
      throw error;
    },
  });
  /** Lets the oldest read finish and its result land. */
  const releaseRead = async () => {
    reads.shift()!.release();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { ahead, reads, releaseRead, loadedCount: () => loaded };
}

const indexes = (entries: Entry[] | null) => entries?.map((e) => e.index) ?? null;

describe('read ahead', () => {
  it('a miss loads a range; the reader is told when it is in', async () => {
    const log = fakeLog({ lastIndex: 100, loadEntries: 10 });
    expect(log.ahead.slice(1, 101, 3 * ENTRY_BYTES)).toBeNull();
    log.ahead.load(1, 101, 3 * ENTRY_BYTES);
    log.ahead.load(1, 101, 3 * ENTRY_BYTES); // one load at a time
    expect(log.reads.map((r) => r.lo)).toEqual([1]);
    await log.releaseRead();
    expect(log.loadedCount()).toBe(1);
    expect(indexes(log.ahead.slice(1, 101, 3 * ENTRY_BYTES))).toEqual([1, 2, 3]);
  });

  it('loads the next range once half of the one in hand is read, and serves from it', async () => {
    const log = fakeLog({ lastIndex: 100, loadEntries: 10 });
    log.ahead.load(1, 101, ENTRY_BYTES);
    await log.releaseRead();
    expect(indexes(log.ahead.slice(1, 101, 4 * ENTRY_BYTES))).toEqual([1, 2, 3, 4]);
    expect(log.reads).toHaveLength(0); // not half way yet
    expect(indexes(log.ahead.slice(5, 101, 4 * ENTRY_BYTES))).toEqual([5, 6, 7, 8]);
    expect(log.reads.map((r) => r.lo)).toEqual([11]);
    await log.releaseRead();
    expect(indexes(log.ahead.slice(9, 101, 4 * ENTRY_BYTES))).toEqual([9, 10]);
    // The next range was in hand before it was asked for: no miss, no wait.
    expect(indexes(log.ahead.slice(11, 101, 4 * ENTRY_BYTES))).toEqual([11, 12, 13, 14]);
  });

  it('a whole catch-up reads the log once, in order, each read starting where the last ended', async () => {
    const log = fakeLog({ lastIndex: 100, loadEntries: 10 });
    let next = 1;
    const reads: number[] = [];
    for (let step = 0; step < 1000 && next <= 100; step++) {
      const entries = log.ahead.slice(next, 101, 3 * ENTRY_BYTES);
      if (entries !== null) next += entries.length;
      else log.ahead.load(next, 101, 3 * ENTRY_BYTES);
      if (log.reads.length > 0) {
        reads.push(log.reads[0]!.lo);
        await log.releaseRead();
      }
    }
    expect(next).toBe(101);
    expect(reads).toEqual([1, 11, 21, 31, 41, 51, 61, 71, 81, 91]);
  });

  it('does not read ahead into what the cache holds', async () => {
    const log = fakeLog({ lastIndex: 100, loadEntries: 10, cacheFirst: 11 });
    log.ahead.load(1, 11, ENTRY_BYTES);
    await log.releaseRead();
    expect(indexes(log.ahead.slice(1, 11, 10 * ENTRY_BYTES))).toHaveLength(10);
    expect(log.reads).toHaveLength(0);
  });

  it('lets its ranges go once the reader reaches what the cache holds', async () => {
    const log = fakeLog({ lastIndex: 100, loadEntries: 10, cacheFirst: 21 });
    log.ahead.load(1, 21, ENTRY_BYTES);
    await log.releaseRead();
    expect(indexes(log.ahead.slice(1, 21, 6 * ENTRY_BYTES))).toEqual([1, 2, 3, 4, 5, 6]);
    await log.releaseRead(); // the read ahead of 11..20
    expect(indexes(log.ahead.slice(7, 21, 100 * ENTRY_BYTES))).toEqual([7, 8, 9, 10]);
    expect(indexes(log.ahead.slice(11, 21, 100 * ENTRY_BYTES))).toHaveLength(10);
    // 21 on is the cache's: nothing below it is held any more.
    expect(log.ahead.slice(11, 21, ENTRY_BYTES)).toBeNull();
    expect(log.ahead.slice(20, 21, ENTRY_BYTES)).toBeNull();
    expect(log.reads).toHaveLength(0);
  });

  it('a cut discards a load that raced it, and what the ranges held past the cut', async () => {
    const log = fakeLog({ lastIndex: 100, loadEntries: 10 });
    log.ahead.load(1, 101, ENTRY_BYTES);
    log.ahead.cutFrom(5);
    await log.releaseRead();
    expect(log.ahead.slice(1, 101, ENTRY_BYTES)).toBeNull();
    log.ahead.load(1, 101, ENTRY_BYTES);
    await log.releaseRead();
    log.ahead.cutFrom(5);
    expect(indexes(log.ahead.slice(1, 101, 100 * ENTRY_BYTES))).toEqual([1, 2, 3, 4]);
    log.ahead.dropBelow(3, false);
    expect(log.ahead.slice(1, 101, ENTRY_BYTES)).toBeNull();
    expect(indexes(log.ahead.slice(3, 101, 100 * ENTRY_BYTES))).toEqual([3, 4]);
  });
});
