// The term of every entry of one log, kept in memory as runs (the index where each term starts),
// so LogStorage.term() never touches the disk. One run per term change: a few numbers per log.

import { assert } from '../raft/errors.js';

export class TermIndex {
  // Invariant: runStarts is strictly increasing; runTerms is non-decreasing (Raft terms only grow
  // along a log); run r covers [runStarts[r], runStarts[r + 1]).
  private readonly runStarts: number[] = [];
  private readonly runTerms: number[] = [];

  /** Records that entry `index` has `term`; indexes must come in order, one after another. */
  append(index: number, term: number): void {
    const runs = this.runTerms.length;
    if (runs > 0 && this.runTerms[runs - 1] === term) return;
    assert(runs === 0 || term > this.runTerms[runs - 1]!, `term index: term ${term} at ${index} goes back`);
    assert(runs === 0 || index > this.runStarts[runs - 1]!, `term index: ${index} out of order`);
    this.runStarts.push(index);
    this.runTerms.push(term);
  }

  /** Term of entry `index`; the caller checks that the index is inside the log. */
  term(index: number): number {
    let lo = 0;
    let hi = this.runStarts.length - 1;
    assert(hi >= 0 && index >= this.runStarts[0]!, `term index: no term for ${index}`);
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.runStarts[mid]! <= index) lo = mid;
      else hi = mid - 1;
    }
    return this.runTerms[lo]!;
  }

  /** Forgets entries from `index` on (a log suffix cut). */
  truncateFrom(index: number): void {
    while (this.runStarts.length > 0 && this.runStarts[this.runStarts.length - 1]! >= index) {
      this.runStarts.pop();
      this.runTerms.pop();
    }
  }

  /** Forgets runs that end before `index` (prefix truncation); the run holding `index` stays. */
  compactBelow(index: number): void {
    let drop = 0;
    while (drop + 1 < this.runStarts.length && this.runStarts[drop + 1]! <= index) drop++;
    if (drop === 0) return;
    this.runStarts.splice(0, drop);
    this.runTerms.splice(0, drop);
  }

  clear(): void {
    this.runStarts.length = 0;
    this.runTerms.length = 0;
  }

  get runCount(): number {
    return this.runStarts.length;
  }
}
