// The Raft state one log keeps in lmdb beside its entries: hard state, membership, applied index
// and the sticky lost-tail flag. Term and vote are written at once (the caller waits for lmdb's
// flush before reporting the write durable: a vote must never be forgotten); a commit-only change
// and the applied index are written lazily by flush() (docs/storage.md, "lazy state").

import type { ConfState, HardState } from '../raft/types.js';
import type { StateStore } from './state-store.js';

export class RaftState {
  private hard: HardState;
  private storedTerm: number;
  private storedVote: number;
  private hardStateDirty = false;
  private conf: ConfState;
  private appliedIndex: number;
  private appliedDirty = false;
  private lostTail: boolean;

  constructor(
    private readonly store: StateStore,
    private readonly logId: number,
    recovered: { hardState: HardState; confState: ConfState; applied: number; mayHaveLostTail: boolean },
  ) {
    this.hard = recovered.hardState;
    this.storedTerm = recovered.hardState.term;
    this.storedVote = recovered.hardState.vote;
    this.conf = recovered.confState;
    this.appliedIndex = recovered.applied;
    this.lostTail = recovered.mayHaveLostTail;
  }

  get mayHaveLostTail(): boolean {
    return this.lostTail;
  }

  markCaughtUp(): void {
    if (!this.lostTail) return;
    this.lostTail = false;
    this.store.putLostTail(this.logId, false);
  }

  /**
   * The stored commit index is clamped to `lastIndex` unless the tail may be lost: commit is
   * written lazily (it can always be learned again), so it may run ahead of entries a crash cut.
   */
  initialState(lastIndex: number): { hardState: HardState; confState: ConfState } {
    const commit = this.lostTail ? this.hard.commit : Math.min(this.hard.commit, lastIndex);
    return {
      hardState: { term: this.hard.term, vote: this.hard.vote, commit },
      confState: { voters: [...this.conf.voters], learners: [...this.conf.learners] },
    };
  }

  /** Returns true when term or vote changed: written now, durable once lmdb flushes. */
  setHardState(hardState: HardState): boolean {
    this.hard = { term: hardState.term, vote: hardState.vote, commit: hardState.commit };
    if (hardState.term === this.storedTerm && hardState.vote === this.storedVote) {
      this.hardStateDirty = true; // commit only: written lazily by flush()
      return false;
    }
    this.storedTerm = hardState.term;
    this.storedVote = hardState.vote;
    this.store.putHardState(this.logId, this.hard);
    this.hardStateDirty = false;
    return true;
  }

  setConfState(confState: ConfState): void {
    this.conf = { voters: [...confState.voters], learners: [...confState.learners] };
    this.store.putConfState(this.logId, this.conf);
  }

  get applied(): number {
    return this.appliedIndex;
  }

  setApplied(index: number): void {
    this.appliedIndex = index;
    this.appliedDirty = true;
  }

  /** Writes the lazily kept state (commit index, applied index). */
  flush(): void {
    if (this.hardStateDirty) {
      this.store.putHardState(this.logId, this.hard);
      this.hardStateDirty = false;
    }
    if (this.appliedDirty) {
      this.store.putApplied(this.logId, this.appliedIndex);
      this.appliedDirty = false;
    }
  }
}
