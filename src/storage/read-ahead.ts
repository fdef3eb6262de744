// The entries the core reads from a log's segment files when it asks below the entry cache (a
// follower catching up): the range in hand, and the range after it, loaded ahead once the core is
// half way through. Reads of a catch-up are then large, sequential and always one in flight, and
// the sends do not stop at the end of each range to wait for the next read.

import { limitBytes } from '../raft/storage.js';
import type { Entry } from '../raft/types.js';

export interface ReadAheadSource {
  /** Bytes of one load (at least: a miss for more loads more). */
  loadBytes: number;
  /** Entries from `lo` up to maxBytes (at least one), not reaching `hi`. */
  read(lo: number, hi: number, maxBytes: number): Promise<Entry[]>;
  /** Entries at or above this index are in memory: a read ahead stops there. */
  readAheadEnd(): number;
  /** A load finished: a core that found entries pending may retry. */
  onLoaded(): void;
  onFailure(error: unknown): void;
}

/** Consecutive entries from index `first`. */
interface Range {
  first: number;
  entries: Entry[];
}

const EMPTY: Range = { first: 0, entries: [] };

export class ReadAhead {
  // Invariant: when both hold entries, next.first === end(current).
  private current: Range = EMPTY;
  private next: Range = EMPTY;
  private loadInFlight = false;
  /** Bumped by every cut, reset and compaction, so a load that raced one is discarded. */
  private layoutVersion = 0;

  constructor(private readonly source: ReadAheadSource) {}

  /** Entries [lo, hi) up to maxBytes from the loaded ranges, or null when they do not hold lo. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] | null {
    if (!holds(this.current, lo) && holds(this.next, lo)) {
      this.current = this.next;
      this.next = EMPTY;
    }
    const range = this.current;
    if (!holds(range, lo)) return null;
    const end = range.first + range.entries.length;
    const entries = limitBytes(range.entries, lo - range.first, Math.min(hi, end) - range.first, maxBytes);
    const sliceEnd = lo + entries.length;
    if (sliceEnd >= end && end >= this.source.readAheadEnd()) {
      // The reader has reached what the entry cache holds: let the ranges go, or they would pin
      // their read buffers (a load is 4 MiB) for as long as the log lives.
      this.current = EMPTY;
      this.next = EMPTY;
    } else if (sliceEnd >= end - range.entries.length / 2) {
      this.readAhead(end);
    }
    return entries;
  }

  /** A miss: loads [lo, hi) (one load at a time); source.onLoaded after. */
  load(lo: number, hi: number, maxBytes: number): void {
    if (this.loadInFlight) return;
    this.start(lo, hi, Math.max(maxBytes, this.source.loadBytes), (entries) => {
      this.current = { first: lo, entries };
      this.next = EMPTY;
    });
  }

  /** The log was cut from `index` on. */
  cutFrom(index: number): void {
    this.layoutVersion++;
    this.current = cut(this.current, index);
    this.next = cut(this.next, index);
  }

  /** Entries below `index` are gone (compaction); `reset`: all of them (a snapshot install). */
  dropBelow(index: number, reset: boolean): void {
    this.layoutVersion++;
    if (reset) {
      this.current = EMPTY;
      this.next = EMPTY;
      return;
    }
    this.current = dropBelow(this.current, index);
    this.next = dropBelow(this.next, index);
  }

  private readAhead(from: number): void {
    if (this.loadInFlight || this.next.entries.length > 0 || from >= this.source.readAheadEnd()) return;
    this.start(from, this.source.readAheadEnd(), this.source.loadBytes, (entries) => {
      // Kept only if it still follows the range in hand (the core may have moved elsewhere).
      if (this.current.first + this.current.entries.length === from) this.next = { first: from, entries };
    });
  }

  private start(lo: number, hi: number, maxBytes: number, keep: (entries: Entry[]) => void): void {
    this.loadInFlight = true;
    const version = this.layoutVersion;
    this.source.read(lo, hi, maxBytes).then(
      (entries) => {
        this.loadInFlight = false;
        if (version === this.layoutVersion && entries.length > 0) keep(entries);
        this.source.onLoaded();
      },
      (error: unknown) => {
        this.loadInFlight = false;
        this.source.onFailure(error);
      },
    );
  }
}

function holds(range: Range, index: number): boolean {
  return index >= range.first && index < range.first + range.entries.length;
}

function cut(range: Range, index: number): Range {
  if (range.first + range.entries.length <= index) return range;
  if (index <= range.first) return EMPTY;
  return { first: range.first, entries: range.entries.slice(0, index - range.first) };
}

function dropBelow(range: Range, index: number): Range {
  if (range.first >= index) return range;
  if (range.first + range.entries.length <= index) return EMPTY;
  return { first: index, entries: range.entries.slice(index - range.first) };
}
