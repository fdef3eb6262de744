// The narrow storage interface the core reads its durable log through, and an in-memory
// implementation for tests and the simulator. Hard state is not here: the driver loads it and
// passes it to the core at start, and persists what each Ready says.

import { assert, RaftError } from './errors.js';
import { type ConfState, type Entry, entryBytes, type HardState, type Snapshot } from './types.js';

/**
 * The durable log of one group, as the driver has stored it. Ranges are half-open [lo, hi).
 * Invariant: firstIndex() - 1 <= lastIndex(); term(firstIndex() - 1) is the snapshot's term.
 */
export interface LogStorage {
  /** Index of the first entry still available; the snapshot covers everything before it. */
  firstIndex(): number;
  /** Index of the last stored entry (firstIndex() - 1 when the log is empty). */
  lastIndex(): number;
  /** Term of entry `index`, in [firstIndex() - 1, lastIndex()]. Throws Compacted / Unavailable. */
  term(index: number): number;
  /**
   * Entries in [lo, hi), stopping before `maxBytes` is exceeded but always returning at least one.
   * Throws Compacted (lo below the log start), Unavailable (hi past the end) or EntriesPending
   * (on disk, not in memory: the storage is loading it and the driver will tell the core).
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** The latest snapshot. Throws SnapshotTemporarilyUnavailable while one is being made. */
  snapshot(): Snapshot;
}

/** What a restarting node loads before it builds its core. */
export interface InitialState {
  hardState: HardState;
  confState: ConfState;
}

export function emptySnapshot(): Snapshot {
  return {
    metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } },
    data: new Uint8Array(0),
  };
}

/**
 * Keeps the whole log in memory. entries[0] is a dummy whose index and term are the snapshot's,
 * so term(firstIndex() - 1) needs no special case.
 */
export class MemoryStorage implements LogStorage {
  hardState: HardState = { term: 0, vote: 0, commit: 0 };
  private snap: Snapshot = emptySnapshot();
  // Invariant: entries[i].index === entries[0].index + i.
  private entriesArray: Entry[] = [{ term: 0, index: 0, type: 0, data: new Uint8Array(0) }];

  firstIndex(): number {
    return this.entriesArray[0]!.index + 1;
  }

  lastIndex(): number {
    return this.entriesArray[0]!.index + this.entriesArray.length - 1;
  }

  term(index: number): number {
    const offset = this.entriesArray[0]!.index;
    if (index < offset) throw new RaftError('Compacted', `term(${index}): compacted below ${offset + 1}`);
    if (index - offset >= this.entriesArray.length) {
      throw new RaftError('Unavailable', `term(${index}): past last index ${this.lastIndex()}`);
    }
    return this.entriesArray[index - offset]!.term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.entriesArray[0]!.index;
    if (lo <= offset)
      throw new RaftError('Compacted', `entries(${lo}, ${hi}): compacted below ${offset + 1}`);
    if (hi > this.lastIndex() + 1) {
      throw new RaftError('Unavailable', `entries(${lo}, ${hi}): past last index ${this.lastIndex()}`);
    }
    return limitBytes(this.entriesArray, lo - offset, hi - offset, maxBytes);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Appends entries, cutting any stored suffix from entries[0].index on. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0]!.index + entries.length - 1;
    if (last < first) return; // all below the snapshot
    let start = 0;
    if (entries[0]!.index < first) start = first - entries[0]!.index;
    const offset = this.entriesArray[0]!.index;
    const at = entries[start]!.index - offset;
    assert(
      at <= this.entriesArray.length,
      `append: gap between last index ${this.lastIndex()} and ${entries[start]!.index}`,
    );
    if (at < this.entriesArray.length) this.entriesArray.length = at;
    for (let i = start; i < entries.length; i++) this.entriesArray.push(entries[i]!);
  }

  /** Replaces the whole log with a snapshot (a follower installing one from its leader). */
  applySnapshot(snapshot: Snapshot): void {
    const index = snapshot.metadata.index;
    if (index <= this.snap.metadata.index) {
      throw new RaftError('SnapshotTemporarilyUnavailable', `snapshot ${index} is out of date`);
    }
    this.snap = snapshot;
    this.entriesArray = [{ term: snapshot.metadata.term, index, type: 0, data: new Uint8Array(0) }];
  }

  /** Records a snapshot of the state machine at `index` (applied by the caller). */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    assert(index <= this.lastIndex(), `createSnapshot(${index}) past last index ${this.lastIndex()}`);
    if (index <= this.snap.metadata.index) return this.snap;
    this.snap = { metadata: { index, term: this.term(index), confState }, data };
    return this.snap;
  }

  /** Drops entries up to and including `index` (prefix truncation). */
  compact(index: number): void {
    const offset = this.entriesArray[0]!.index;
    if (index <= offset) return;
    assert(index <= this.lastIndex(), `compact(${index}) past last index ${this.lastIndex()}`);
    const cut = index - offset;
    const dummy: Entry = { term: this.entriesArray[cut]!.term, index, type: 0, data: new Uint8Array(0) };
    this.entriesArray = [dummy, ...this.entriesArray.slice(cut + 1)];
  }
}

/** Returns array[lo, hi) cut to maxBytes, always at least one entry. */
export function limitBytes(array: readonly Entry[], lo: number, hi: number, maxBytes: number): Entry[] {
  let bytes = 0;
  let end = lo;
  while (end < hi) {
    bytes += entryBytes(array[end]!);
    if (bytes > maxBytes && end > lo) break;
    end++;
  }
  return array.slice(lo, end);
}
