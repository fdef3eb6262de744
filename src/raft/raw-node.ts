// The driver's handle on one Raft group, in the shape of etcd-io/raft's RawNode: feed it ticks,
// messages and proposals; take a Ready; do what it says; advance; report durable writes.

import type { ConfChange } from './conf-change.js';
import { assert, isRaftError } from './errors.js';
import { ProgressState } from './progress.js';
import { Raft, type RaftOptions } from './raft.js';
import {
  type ConfState,
  ENTRY_OVERHEAD_BYTES,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  type NodeId,
  type Ready,
  type SoftState,
  StateRole,
} from './types.js';

/** See RaftOptions: the driver loads the hard state and membership and hands them over here. */
export type RawNodeOptions = RaftOptions;

export interface ProgressStatus {
  match: number;
  next: number;
  state: 'probe' | 'replicate' | 'snapshot';
  recentActive: boolean;
  recovering: boolean;
  isLearner: boolean;
}

export interface Status {
  id: NodeId;
  term: number;
  vote: NodeId;
  commit: number;
  applied: number;
  lead: NodeId;
  role: StateRole;
  firstIndex: number;
  lastIndex: number;
  leadTransferee: NodeId;
  leaseValid: boolean;
  recovering: boolean;
  confState: ConfState;
  /** Leader only: each replica's progress. */
  progress: Map<NodeId, ProgressStatus> | null;
}

const PROGRESS_STATE_NAMES = ['probe', 'replicate', 'snapshot'] as const;

export class RawNode {
  readonly id: NodeId;
  private readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  /** Committed entries could not be read (EntriesPending) until the storage says so. */
  private committedEntriesPending = false;

  constructor(options: RawNodeOptions) {
    this.id = options.id;
    this.raft = new Raft(options);
    this.prevSoftState = { lead: this.raft.lead, role: this.raft.role };
    this.prevHardState = this.raft.hardState();
  }

  // ---- inputs ------------------------------------------------------------------------------

  /**
   * One tick of the election, heartbeat and check-quorum timers, which count ticks (see Raft.now).
   * `nowTicks` is the driver's monotonic clock in ticks (milliseconds / tick length): the core's
   * clock, which leases are judged by, moves there, so a process that was stopped for two seconds
   * sees two seconds. Without it the clock moves one tick (tests on virtual ticks).
   */
  tick(nowTicks?: number): void {
    this.raft.tick(nowTicks ?? this.raft.now + 1);
  }

  /**
   * Moves the core's clock to `nowTicks` (it never goes back) without running timers. A driver
   * calls it before it steps messages or starts a read, with the clock read after they arrived:
   * leases and the vote guard are judged by it, and after a pause the last tick is long stale.
   */
  advanceClock(nowTicks: number): void {
    this.raft.advanceClock(nowTicks);
  }

  /** Feeds a message from a peer; advance the clock first. Messages for another node are a driver bug. */
  step(message: Message): void {
    assert(message.to === this.id, `node ${this.id} got a message for node ${message.to}`);
    if (message.from === this.id) return;
    this.raft.step(message);
  }

  /** Starts an election now (tests, and a driver that knows better than the timer). */
  campaign(): void {
    this.raft.campaign(this.raft.config.preVote ? 'pre-election' : 'election');
  }

  /**
   * Proposes one entry; returns its index. Throws RaftError NotLeader, ProposalDropped (a transfer
   * is running) or UncommittedBytesFull (room comes back as entries commit and are applied).
   */
  propose(data: Uint8Array): number {
    return this.raft.propose([{ term: 0, index: 0, type: EntryType.Normal, data }]);
  }

  /** Whether one entry of `dataBytes` would fit the uncommitted budget now (see propose). */
  hasRoomFor(dataBytes: number): boolean {
    return this.raft.hasUncommittedRoom(dataBytes + ENTRY_OVERHEAD_BYTES);
  }

  /** Proposes entries as one contiguous batch; returns the index of the first. */
  proposeBatch(datas: readonly Uint8Array[]): number {
    assert(datas.length > 0, 'proposeBatch: no entries');
    const entries: Entry[] = new Array(datas.length);
    for (let i = 0; i < datas.length; i++) {
      entries[i] = { term: 0, index: 0, type: EntryType.Normal, data: datas[i]! };
    }
    return this.raft.propose(entries);
  }

  /** Proposes a single-server membership change; returns its index. */
  proposeConfChange(change: ConfChange): number {
    return this.raft.proposeConfChange(change);
  }

  /**
   * Starts a linearizable read; advance the clock first. Its ReadState (with this requestId) comes
   * out of a later Ready; without a leader it is dropped and the caller retries after its own
   * timeout.
   */
  readIndex(requestId: number): void {
    this.raft.readIndex(requestId);
  }

  /** Hands leadership to `to` once it has caught up; abandoned after an election timeout. */
  transferLeader(to: NodeId): void {
    this.raft.transferLeader(to);
  }

  /** The transport could not reach `to`: stop streaming to it until it answers again. */
  reportUnreachable(to: NodeId): void {
    const pr = this.raft.tracker.progress.get(to);
    if (this.raft.role === StateRole.Leader && pr && pr.state === ProgressState.Replicate) pr.becomeProbe();
  }

  /** The storage has loaded entries it reported EntriesPending for. */
  notifyEntriesAvailable(): void {
    this.committedEntriesPending = false;
    this.raft.entriesLoaded();
  }

  // ---- outputs -----------------------------------------------------------------------------

  hasReady(): boolean {
    const raft = this.raft;
    if (raft.appendsPending || raft.msgs.length > 0 || raft.readStates.length > 0) return true;
    if (raft.commitNoticePending()) return true;
    if (raft.confStateChanged) return true;
    if (raft.hasHeldUnassigned()) return true;
    if (raft.log.unstable.hasNext()) return true;
    if (!this.committedEntriesPending && raft.log.hasNextCommittedEntries()) return true;
    if (raft.lead !== this.prevSoftState.lead || raft.role !== this.prevSoftState.role) return true;
    const hs = this.prevHardState;
    return raft.term !== hs.term || raft.vote !== hs.vote || raft.log.committed !== hs.commit;
  }

  ready(): Ready {
    const raft = this.raft;
    raft.flushAppends();
    const unstable = raft.log.unstable;
    const entries = unstable.nextEntries();
    const snapshot = unstable.nextSnapshot();
    const softChanged = raft.lead !== this.prevSoftState.lead || raft.role !== this.prevSoftState.role;
    const hardState = raft.hardState();
    const prev = this.prevHardState;
    const termOrVoteChanged = hardState.term !== prev.term || hardState.vote !== prev.vote;
    const hardChanged = termOrVoteChanged || hardState.commit !== prev.commit;
    const mustSync = termOrVoteChanged || entries.length > 0 || snapshot !== null;

    let persistId = 0;
    if (mustSync) {
      persistId = raft.nextPersistId();
      const last = entries.length > 0 ? entries[entries.length - 1]! : null;
      raft.assignHeld({
        persistId,
        lastIndex: last ? last.index : 0,
        lastTerm: last ? last.term : 0,
        snapshotIndex: snapshot ? snapshot.metadata.index : 0,
      });
      unstable.acceptInProgress();
    } else {
      raft.assignHeld(null);
    }

    let committedEntries: Entry[] = [];
    if (!this.committedEntriesPending) {
      try {
        committedEntries = raft.log.nextCommittedEntries(raft.config.maxCommittedBytesPerReady);
      } catch (error) {
        if (!isRaftError(error, 'EntriesPending')) throw error;
        this.committedEntriesPending = true;
      }
    }
    if (committedEntries.length > 0) raft.log.applying = committedEntries[committedEntries.length - 1]!.index;

    const ready: Ready = {
      softState: softChanged ? { lead: raft.lead, role: raft.role } : null,
      hardState: hardChanged ? hardState : null,
      mustSync,
      entries,
      snapshot,
      persistId,
      messages: raft.msgs,
      committedEntries,
      readStates: raft.readStates,
      confState: raft.confStateChanged ? raft.tracker.confState() : null,
    };
    raft.msgs = [];
    raft.readStates = [];
    raft.confStateChanged = false;
    if (ready.softState) this.prevSoftState = ready.softState;
    if (hardChanged) this.prevHardState = hardState;
    return ready;
  }

  /** The driver took `ready`: its committed entries are applied (conf changes take effect now). */
  advance(ready: Ready): void {
    const committed = ready.committedEntries;
    if (committed.length > 0) {
      this.raft.applyCommitted(committed);
      this.raft.reduceUncommitted(committed);
      this.raft.log.appliedTo(committed[committed.length - 1]!.index);
    }
    if (ready.snapshot) {
      const index = ready.snapshot.metadata.index;
      if (index > this.raft.log.applied) {
        this.raft.log.applied = index;
        this.raft.log.applying = Math.max(this.raft.log.applying, index);
      }
    }
  }

  /** The writes of every Ready with persistId <= this one are durable. */
  reportPersisted(persistId: number): void {
    this.raft.persisted(persistId);
  }

  // ---- inspection --------------------------------------------------------------------------

  get role(): StateRole {
    return this.raft.role;
  }

  get term(): number {
    return this.raft.term;
  }

  get leaderId(): NodeId {
    return this.raft.lead;
  }

  /** The core's clock, in ticks: the latest time handed to tick or advanceClock. */
  get nowTicks(): number {
    return this.raft.now;
  }

  get commitIndex(): number {
    return this.raft.log.committed;
  }

  get lastIndex(): number {
    return this.raft.log.lastIndex();
  }

  /** Restarted without its log and not caught up yet (see RawNodeOptions.recovering). */
  get recovering(): boolean {
    return this.raft.recovering;
  }

  status(): Status {
    const raft = this.raft;
    let progress: Map<NodeId, ProgressStatus> | null = null;
    if (raft.role === StateRole.Leader) {
      progress = new Map();
      for (const [id, pr] of raft.tracker.progress) {
        progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: PROGRESS_STATE_NAMES[pr.state],
          recentActive: pr.recentActive,
          recovering: pr.recovering,
          isLearner: pr.isLearner,
        });
      }
    }
    return {
      id: raft.id,
      term: raft.term,
      vote: raft.vote,
      commit: raft.log.committed,
      applied: raft.log.applied,
      lead: raft.lead,
      role: raft.role,
      firstIndex: raft.log.firstIndex(),
      lastIndex: raft.log.lastIndex(),
      leadTransferee: raft.leadTransferee,
      leaseValid: raft.leaseValid(),
      recovering: raft.recovering,
      confState: raft.tracker.confState(),
      progress,
    };
  }
}
