// The leader's view of each replica: how far it matches, what to send next, and flow control.

import { assert } from './errors.js';
import { quorumSize, quorumValue } from './quorum.js';
import type { ConfState, NodeId } from './types.js';

export enum ProgressState {
  /** Unknown match: send one App at a time and wait for the answer (or a heartbeat). */
  Probe = 0,
  /** Match known: stream Apps optimistically, bounded by the inflight window. */
  Replicate = 1,
  /** Behind the log start: a snapshot is on its way. */
  Snapshot = 2,
}

/**
 * A bounded window of App messages in flight to one follower, by count and by bytes.
 * A ring of (last index, bytes) pairs, freed from the front as acknowledgements arrive.
 */
export class Inflights {
  private readonly indexes: Float64Array;
  private readonly sizes: Float64Array;
  private start = 0;
  count = 0;
  bytes = 0;

  constructor(
    readonly maxMessages: number,
    readonly maxBytes: number,
  ) {
    this.indexes = new Float64Array(maxMessages);
    this.sizes = new Float64Array(maxMessages);
  }

  full(): boolean {
    return this.count === this.maxMessages || (this.maxBytes !== 0 && this.bytes >= this.maxBytes);
  }

  add(lastIndex: number, bytes: number): void {
    assert(this.count < this.maxMessages, 'inflights: add to a full window');
    const slot = (this.start + this.count) % this.maxMessages;
    this.indexes[slot] = lastIndex;
    this.sizes[slot] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  /** Frees every message whose last index is <= index. */
  freeLE(index: number): void {
    while (this.count > 0 && this.indexes[this.start]! <= index) {
      this.bytes -= this.sizes[this.start]!;
      this.start = (this.start + 1) % this.maxMessages;
      this.count--;
    }
    if (this.count === 0) {
      this.start = 0;
      this.bytes = 0;
    }
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}

export class Progress {
  /** Highest index known to be durably stored on the replica. */
  match = 0;
  /** Next index to send. Invariant: match < next. */
  next: number;
  state = ProgressState.Probe;
  /** In Probe: an App was sent and no answer or heartbeat response came since. */
  probeSent = false;
  /** In Snapshot: the index of the snapshot sent, and the tick it was sent at. */
  pendingSnapshot = 0;
  pendingSnapshotTick = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** The highest commit index this follower was told of (App, Heartbeat or Commit). */
  sentCommit = 0;
  /** match when the previous heartbeat response arrived: no movement since means lost Apps. */
  matchAtLastHeartbeat = 0;
  /** The highest heartbeat round this replica answered (for ReadIndex and the lease). */
  ackedRound = 0;
  /** The replica restarted without its log and has not caught up: it does not count for commit. */
  recovering = false;
  isLearner: boolean;
  readonly inflights: Inflights;

  constructor(next: number, isLearner: boolean, maxInflightMessages: number, maxInflightBytes: number) {
    this.next = next;
    this.isLearner = isLearner;
    this.inflights = new Inflights(maxInflightMessages, maxInflightBytes);
  }

  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      // Resume after the snapshot, or after match if that is further.
      this.next = Math.max(this.match + 1, this.pendingSnapshot + 1);
    } else {
      this.next = this.match + 1;
    }
    this.state = ProgressState.Probe;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
  }

  becomeReplicate(): void {
    this.state = ProgressState.Replicate;
    this.next = this.match + 1;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
  }

  becomeSnapshot(snapshotIndex: number, tick: number): void {
    this.state = ProgressState.Snapshot;
    this.pendingSnapshot = snapshotIndex;
    this.pendingSnapshotTick = tick;
    this.probeSent = false;
    this.inflights.reset();
  }

  /** Records an acknowledgement up to index. Returns true if match advanced. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    if (this.next < index + 1) this.next = index + 1;
    return updated;
  }

  /** Records that entries up to lastIndex were just sent. */
  sentEntries(lastIndex: number, bytes: number): void {
    if (this.state === ProgressState.Replicate) {
      this.next = lastIndex + 1;
      this.inflights.add(lastIndex, bytes);
    } else if (this.state === ProgressState.Probe) {
      this.probeSent = true;
    }
  }

  /**
   * A rejection of an App whose preceding index was rejected. Moves next back to `nextHint`.
   * Returns false when the rejection is stale (for an App already superseded).
   */
  maybeDecreaseTo(rejected: number, nextHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false; // stale
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false; // stale: not the probe we sent
    this.next = Math.max(Math.min(rejected, nextHint), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Whether sending another App must wait. */
  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent;
      case ProgressState.Replicate:
        return this.inflights.full();
      default:
        return true;
    }
  }
}

/** Tracks every replica's progress and the membership. */
export class ProgressTracker {
  readonly progress = new Map<NodeId, Progress>();
  voters: NodeId[] = [];
  learners: NodeId[] = [];
  private readonly votes = new Map<NodeId, boolean>();
  private matchScratch: number[] = [];

  constructor(
    private readonly maxInflightMessages: number,
    private readonly maxInflightBytes: number,
  ) {}

  confState(): ConfState {
    return { voters: this.voters.slice(), learners: this.learners.slice() };
  }

  /** Rebuilds the membership; keeps the progress of replicas that stay. */
  applyConfState(conf: ConfState, nextIndex: number): void {
    this.voters = conf.voters.slice().sort((a, b) => a - b);
    this.learners = conf.learners.slice().sort((a, b) => a - b);
    const keep = new Set<NodeId>([...this.voters, ...this.learners]);
    for (const id of this.progress.keys()) if (!keep.has(id)) this.progress.delete(id);
    for (const id of keep) {
      const isLearner = !this.voters.includes(id);
      const existing = this.progress.get(id);
      if (existing) existing.isLearner = isLearner;
      else this.progress.set(id, this.newProgress(nextIndex, isLearner));
    }
    this.matchScratch = new Array<number>(this.voters.length).fill(0);
  }

  newProgress(nextIndex: number, isLearner: boolean): Progress {
    return new Progress(nextIndex, isLearner, this.maxInflightMessages, this.maxInflightBytes);
  }

  isVoter(id: NodeId): boolean {
    return this.voters.includes(id);
  }

  quorum(): number {
    return quorumSize(this.voters.length);
  }

  /** The highest index durably stored on a quorum of voters that count. */
  committedIndex(): number {
    const n = this.voters.length;
    if (n === 0) return 0;
    const matches = this.matchScratch;
    for (let i = 0; i < n; i++) {
      const pr = this.progress.get(this.voters[i]!)!;
      matches[i] = pr.recovering ? 0 : pr.match;
    }
    return quorumValue(matches, n);
  }

  /** The highest heartbeat round answered by a quorum (the leader counts as answering all). */
  quorumAckedRound(selfId: NodeId, currentRound: number): number {
    const n = this.voters.length;
    const rounds = this.matchScratch;
    for (let i = 0; i < n; i++) {
      const id = this.voters[i]!;
      rounds[i] = id === selfId ? currentRound : this.progress.get(id)!.ackedRound;
    }
    return quorumValue(rounds, n);
  }

  /** Whether a quorum of voters was heard from since the last reset (the leader counts). */
  quorumActive(selfId: NodeId): boolean {
    let active = 0;
    for (const id of this.voters) {
      if (id === selfId || this.progress.get(id)!.recentActive) active++;
    }
    return active >= this.quorum();
  }

  resetVotes(): void {
    this.votes.clear();
  }

  /** Whether `id` granted its vote in the current election. */
  hasGranted(id: NodeId): boolean {
    return this.votes.get(id) === true;
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  /** 'won', 'lost' or 'pending' for the current election. */
  tallyVotes(): 'won' | 'lost' | 'pending' {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const vote = this.votes.get(id);
      if (vote === true) granted++;
      else if (vote === false) rejected++;
    }
    const quorum = this.quorum();
    if (granted >= quorum) return 'won';
    if (rejected > this.voters.length - quorum) return 'lost';
    return 'pending';
  }
}
