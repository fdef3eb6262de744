// The log as the core sees it: the durable part in LogStorage, then an unstable tail of entries
// not yet reported durable (some of them handed to the driver and being written).

import { assert, isRaftError, RaftError } from './errors.js';
import type { LogStorage } from './storage.js';
import { limitBytes } from './storage.js';
import { type Entry, entryBytes, type Snapshot } from './types.js';

/**
 * Entries and an optional snapshot that the driver has not reported durable.
 * Invariant: entries[i].index === offset + i; if snapshot, offset === snapshot index + 1.
 * Invariant: offset <= offsetInProgress <= offset + entries.length.
 */
export class Unstable {
  snapshot: Snapshot | null = null;
  entries: Entry[] = [];
  offset: number;
  /** Entries below this index have been handed to the driver in a Ready. */
  offsetInProgress: number;
  snapshotInProgress = false;

  constructor(offset: number) {
    this.offset = offset;
    this.offsetInProgress = offset;
  }

  lastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    if (this.snapshot) return this.snapshot.metadata.index;
    return undefined;
  }

  /** Term at index if this tail knows it. */
  term(index: number): number | undefined {
    if (index < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === index) return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.lastIndex();
    if (last === undefined || index > last) return undefined;
    return this.entries[index - this.offset]!.term;
  }

  /** Entries the driver has not been given yet. */
  nextEntries(): Entry[] {
    const start = this.offsetInProgress - this.offset;
    if (start >= this.entries.length) return [];
    return start === 0 ? this.entries.slice() : this.entries.slice(start);
  }

  /** Whether anything awaits handing to the driver. */
  hasNext(): boolean {
    return this.offsetInProgress < this.offset + this.entries.length || this.nextSnapshot() !== null;
  }

  nextSnapshot(): Snapshot | null {
    return this.snapshot && !this.snapshotInProgress ? this.snapshot : null;
  }

  acceptInProgress(): void {
    this.offsetInProgress = this.offset + this.entries.length;
    if (this.snapshot) this.snapshotInProgress = true;
  }

  /** Entries up to index (with that term) are durable: drop them from the tail. */
  stableTo(index: number, term: number): void {
    const known = this.term(index);
    // A mismatch means the entry was replaced after this write started: a later write covers it.
    if (known === undefined || known !== term || index < this.offset) return;
    const count = index + 1 - this.offset;
    this.entries = count >= this.entries.length ? [] : this.entries.slice(count);
    this.offset = index + 1;
    if (this.offsetInProgress < this.offset) this.offsetInProgress = this.offset;
  }

  stableSnapshotTo(index: number): void {
    if (this.snapshot && this.snapshot.metadata.index === index) {
      this.snapshot = null;
      this.snapshotInProgress = false;
    }
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshot.metadata.index + 1;
    this.offsetInProgress = this.offset;
    this.entries = [];
    this.snapshot = snapshot;
    this.snapshotInProgress = false;
  }

  /** Appends entries, replacing any suffix they conflict with. */
  truncateAndAppend(newEntries: readonly Entry[]): void {
    const from = newEntries[0]!.index;
    if (from === this.offset + this.entries.length) {
      for (let i = 0; i < newEntries.length; i++) this.entries.push(newEntries[i]!);
    } else if (from <= this.offset) {
      // Replaces the whole tail (and possibly stored entries: the driver cuts storage there).
      this.offset = from;
      this.offsetInProgress = from;
      this.entries = newEntries.slice();
    } else {
      this.entries.length = from - this.offset;
      for (let i = 0; i < newEntries.length; i++) this.entries.push(newEntries[i]!);
      if (this.offsetInProgress > from) this.offsetInProgress = from;
    }
  }

  /** Entries in [lo, hi); the caller guarantees the range is inside the tail. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    return limitBytes(this.entries, lo - this.offset, hi - this.offset, maxBytes);
  }
}

export class RaftLog {
  readonly storage: LogStorage;
  readonly unstable: Unstable;
  /** Highest index known committed. Invariant: applied <= committed <= lastIndex(). */
  committed: number;
  /** Highest index handed to the application in a Ready. */
  applying: number;
  /** Highest index the application has applied. */
  applied: number;

  constructor(storage: LogStorage, applied: number) {
    this.storage = storage;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = Math.max(first - 1, applied);
    this.applying = this.applied;
  }

  firstIndex(): number {
    const snapshot = this.unstable.snapshot;
    return snapshot ? snapshot.metadata.index + 1 : this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.lastIndex() ?? this.storage.lastIndex();
  }

  /** Last index known durable locally: everything below the unstable tail. */
  // While a snapshot is unstable nothing is applied (see hasNextCommittedEntries).
  stableIndex(): number {
    return this.unstable.offset - 1;
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** Term of entry index, or throws Compacted/Unavailable. */
  term(index: number): number {
    const fromUnstable = this.unstable.term(index);
    if (fromUnstable !== undefined) return fromUnstable;
    if (index < this.firstIndex() - 1) {
      throw new RaftError('Compacted', `term(${index}): compacted below ${this.firstIndex()}`);
    }
    if (index > this.lastIndex()) {
      throw new RaftError('Unavailable', `term(${index}): past last index ${this.lastIndex()}`);
    }
    return this.storage.term(index);
  }

  /** Term of entry index, or 0 when it is not available (compacted or past the end). */
  termOrZero(index: number): number {
    // The common misses are checked first rather than caught: a follower asks past its last index
    // on every append (findConflict), and building an Error with its stack showed in profiles.
    if (
      this.unstable.term(index) === undefined &&
      (index < this.firstIndex() - 1 || index > this.lastIndex())
    )
      return 0;
    try {
      return this.term(index);
    } catch (error) {
      if (isRaftError(error, 'Compacted') || isRaftError(error, 'Unavailable')) return 0;
      throw error;
    }
  }

  matchTerm(index: number, term: number): boolean {
    return this.termOrZero(index) === term && (term !== 0 || index === 0 || this.hasIndex(index));
  }

  private hasIndex(index: number): boolean {
    return index >= this.firstIndex() - 1 && index <= this.lastIndex();
  }

  /** True when a log ending at (lastIndex, lastTerm) is at least as up-to-date as this one. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myLastTerm = this.lastTerm();
    return lastTerm > myLastTerm || (lastTerm === myLastTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Appends entries after (prevIndex, prevTerm) if they match, and advances commit. Returns the
   * index of the last new entry, or -1 when (prevIndex, prevTerm) does not match.
   */
  maybeAppend(prevIndex: number, prevTerm: number, committed: number, entries: readonly Entry[]): number {
    if (!this.matchTerm(prevIndex, prevTerm)) return -1;
    const lastNew = prevIndex + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      assert(conflict > this.committed, `entry ${conflict} conflicts with committed entry ${this.committed}`);
      this.append(entries.slice(conflict - (prevIndex + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  /** Index of the first entry that is new or has another term than ours; 0 if none. */
  private findConflict(entries: readonly Entry[]): number {
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * Fast backtracking: the largest index <= index whose term is <= term. The leader uses it to
   * skip a whole term of conflicting entries in one round trip.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex());
    const first = this.firstIndex() - 1;
    while (i > first) {
      const t = this.termOrZero(i);
      if (t <= term) return { index: i, term: t };
      i--;
    }
    return { index: i, term: this.termOrZero(i) };
  }

  append(entries: readonly Entry[]): number {
    if (entries.length === 0) return this.lastIndex();
    const after = entries[0]!.index - 1;
    assert(after >= this.committed, `append after ${after} would cut committed entry ${this.committed}`);
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), `commit ${index} is past the last index ${this.lastIndex()}`);
    this.committed = index;
  }

  appliedTo(index: number): void {
    if (index === 0) return;
    assert(
      index <= this.committed && index >= this.applied,
      `applied(${index}) outside [applied ${this.applied}, committed ${this.committed}]`,
    );
    this.applied = index;
    if (this.applying < index) this.applying = index;
  }

  /** Highest index the application may apply now: committed and durable locally. */
  private maxApplicable(): number {
    return Math.min(this.committed, this.stableIndex());
  }

  hasNextCommittedEntries(): boolean {
    return this.applying < this.maxApplicable() && !this.unstable.snapshot;
  }

  nextCommittedEntries(maxBytes: number): Entry[] {
    if (!this.hasNextCommittedEntries()) return [];
    return this.slice(this.applying + 1, this.maxApplicable() + 1, maxBytes);
  }

  /** Entries in [lo, hi) from storage and the tail, up to maxBytes (at least one). */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo >= hi) return [];
    const first = this.firstIndex();
    if (lo < first) throw new RaftError('Compacted', `slice(${lo}, ${hi}): compacted below ${first}`);
    assert(hi <= this.lastIndex() + 1, `slice(${lo}, ${hi}) past last index ${this.lastIndex()}`);
    const offset = this.unstable.offset;
    if (lo >= offset) return this.unstable.slice(lo, hi, maxBytes);
    const storedHi = Math.min(hi, offset);
    const stored = this.storage.entries(lo, storedHi, maxBytes);
    if (stored.length < storedHi - lo || hi <= offset) return stored;
    let bytes = 0;
    for (let i = 0; i < stored.length; i++) bytes += entryBytes(stored[i]!);
    if (bytes >= maxBytes) return stored;
    const tail = this.unstable.slice(offset, hi, maxBytes - bytes);
    // The tail always yields one entry; drop it again if it breaks the byte limit.
    if (tail.length === 1 && bytes + entryBytes(tail[0]!) > maxBytes) return stored;
    return stored.concat(tail);
  }

  /** Installs a snapshot in place of the whole log. */
  restore(snapshot: Snapshot): void {
    this.committed = snapshot.metadata.index;
    this.unstable.restore(snapshot);
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }
}
