// One Raft group on this node: its core, its store, its state machine, and the callers waiting on
// proposals and reads. The driver (driver.ts) moves it forward; this file says what a Ready means
// for the group.

import type { Logger } from 'pino';
import {
  type AppMessage,
  type Entry,
  type RawNode,
  type ReadState,
  type Ready,
  type Snapshot,
  StateRole,
} from '../raft/index.js';
import { BrokerError } from './errors.js';
import type { GroupStore } from './group-store.js';
import { METADATA_GROUP_ID, type PersistenceMode } from './metadata-state.js';

/** A group's state machine; `Result` is what applying one entry answers its proposer. */
export interface GroupMachine<Result = unknown> {
  /** Entries reached the local log (before they are durable or committed). */
  noteAppended(entries: readonly Entry[]): void;
  /** Applies one committed entry; the result goes to whoever proposed it. */
  apply(entry: Entry): Result;
  /** The leader sent a snapshot: this replica was behind the leader's log start. */
  restoreSnapshot(snapshot: Snapshot): void;
  /** Called once per turn after entries were applied. */
  afterApply(): void;
}

interface ProposalWaiter<Result> {
  term: number;
  /** performance.now() when the caller started waiting: commit latency for metrics. */
  startedMs: number;
  // Method syntax on purpose: a RaftGroup<R> is then usable where a RaftGroup<unknown> is
  // expected (the driver's), which a property of function type would forbid.
  resolve(result: Result): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

interface ReadWaiter {
  resolve: (index: number) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  /** The clock (ticks) when the core was last asked for this read. */
  askedAtTicks: number;
}

/**
 * A read with no answer this long after it was asked is asked again. The core drops a read while
 * no leader is known, and a ReadIndex to the leader (or its answer) may be lost, for example on a
 * link that is still reconnecting after a pause; a second answer finds no waiter.
 */
const READ_RETRY_TICKS = 3;

/** Leadership changes the node wants to hear about (routing table, metrics). */
export type LeadershipListener = (group: RaftGroup) => void;

export interface RaftGroupOptions<Result> {
  groupId: number;
  raw: RawNode;
  store: GroupStore;
  machine: GroupMachine<Result>;
  logger: Logger;
  onLeadership: LeadershipListener;
  /** The driver's clock (Driver.nowTicks), handed to the core before each read. */
  nowTicks: () => number;
  /** Whether this replica takes a leader's entries now (a disk under its floor does not). */
  admitsEntries?: (message: AppMessage) => boolean;
}

/** What metrics may know of a group: its labels, not the group. */
export interface ObservedGroup {
  readonly kind: 'metadata' | 'partition';
  readonly persistence: PersistenceMode;
}

/**
 * What a group reports for metrics. Called per proposal (one per request batch) or per role
 * change, never per record; implementations must be cheap and must not throw.
 */
export interface GroupObserver {
  /** A proposal of this node committed and was applied, `durationMs` after it was proposed. */
  proposalApplied(group: ObservedGroup, durationMs: number): void;
  /**
   * The core's role or known leader changed. `campaigning`: it became a candidate, starting an
   * election in a new term (a pre-vote round alone does not count: it changes no term).
   */
  roleChanged(group: ObservedGroup, change: { campaigning: boolean; leaderChanged: boolean }): void;
}

export class RaftGroup<Result = unknown> {
  /**
   * True once the Ready that made this node leader was processed: every entry already in the
   * log is known to the state machine, so the next offset to assign is right. Proposals wait
   * for it.
   */
  leaderReady = false;
  leaderId = 0;
  term = 0;
  private readonly proposals = new Map<number, ProposalWaiter<Result>>();
  private readonly reads = new Map<number, ReadWaiter>();
  private nextReadId = 1;
  closed = false;
  /** Metrics; the node sets it (null: nobody is listening). */
  observer: GroupObserver | null = null;
  private wasRecovering: boolean;

  readonly groupId: number;
  readonly raw: RawNode;
  readonly store: GroupStore;
  readonly machine: GroupMachine<Result>;
  readonly logger: Logger;
  /** This group's metrics labels. */
  readonly observed: ObservedGroup;
  private readonly onLeadership: LeadershipListener;
  private readonly nowTicks: () => number;
  /** See RaftGroupOptions.admitsEntries; the driver asks before it steps a message. */
  readonly admitsEntries: (message: AppMessage) => boolean;

  constructor(options: RaftGroupOptions<Result>) {
    this.groupId = options.groupId;
    this.raw = options.raw;
    this.store = options.store;
    this.machine = options.machine;
    this.logger = options.logger;
    this.onLeadership = options.onLeadership;
    this.nowTicks = options.nowTicks;
    this.admitsEntries = options.admitsEntries ?? admitAll;
    this.term = this.raw.term;
    this.wasRecovering = this.raw.recovering;
    this.observed = {
      kind: options.groupId === METADATA_GROUP_ID ? 'metadata' : 'partition',
      persistence: options.store.mode,
    };
  }

  get isLeader(): boolean {
    return this.leaderReady && this.raw.role === StateRole.Leader;
  }

  /**
   * Registers a caller waiting for the entry proposed at `index` in `term`. It learns the
   * outcome when that index is applied: the same term means it is our entry and committed;
   * another term means it was overwritten and definitely failed.
   */
  waitForProposal(index: number, term: number, timeoutMs: number): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.proposals.delete(index);
        reject(
          new BrokerError(
            'TIMEOUT',
            `not committed within ${timeoutMs} ms: the outcome is unknown; a retry with the same producer sequence is safe`,
          ),
        );
      }, timeoutMs);
      this.proposals.set(index, { term, startedMs: performance.now(), resolve, reject, timer });
    });
  }

  /** Asks for a linearizable read index (ReadIndex through the leader, or its lease). */
  readIndex(timeoutMs: number): Promise<number> {
    const requestId = this.nextReadId++;
    // The lease is judged at the time the read arrived, not at the last tick (a pause between the
    // two is exactly when a stale lease would answer).
    const nowTicks = this.nowTicks();
    const promise = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.reads.delete(requestId);
        reject(
          new BrokerError(
            'NO_LEADER',
            `group ${this.groupId}: could not confirm with a leader within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.reads.set(requestId, { resolve, reject, timer, askedAtTicks: nowTicks });
    });
    this.raw.advanceClock(nowTicks);
    this.raw.readIndex(requestId);
    return promise;
  }

  /** The driver's tick: the core's timers, then reads that went unanswered too long. */
  tick(nowTicks: number): void {
    this.raw.tick(nowTicks);
    if (this.reads.size === 0) return;
    for (const [requestId, waiter] of this.reads) {
      if (nowTicks - waiter.askedAtTicks < READ_RETRY_TICKS) continue;
      waiter.askedAtTicks = nowTicks;
      this.raw.readIndex(requestId);
    }
  }

  /** Runs before the Ready's writes start: the log and the leader view change here. */
  beforePersist(ready: Ready): void {
    if (this.wasRecovering && !this.raw.recovering) {
      this.wasRecovering = false;
      this.store.markCaughtUp();
      this.logger.info({ group: this.groupId }, 'caught up after a restart that lost the log');
    }
    if (ready.snapshot) this.machine.restoreSnapshot(ready.snapshot);
    if (ready.entries.length > 0) this.machine.noteAppended(ready.entries);
    if (ready.softState || ready.hardState) this.noteLeadership(ready);
  }

  private noteLeadership(ready: Ready): void {
    const term = this.raw.term;
    const leader = this.raw.leaderId;
    const isLeader = this.raw.role === StateRole.Leader;
    const changed = leader !== this.leaderId || term !== this.term || isLeader !== this.leaderReady;
    if (ready.softState && this.observer) {
      const campaigning = ready.softState.role === StateRole.Candidate;
      this.observer.roleChanged(this.observed, { campaigning, leaderChanged: leader !== this.leaderId });
    }
    this.term = term;
    this.leaderId = leader;
    this.leaderReady = isLeader;
    if (changed && ready.softState) {
      this.logger.info({ group: this.groupId, term, leader }, isLeader ? 'became leader' : 'leader changed');
    }
    if (changed && leader !== 0 && this.reads.size > 0) {
      // The core drops a read asked while no leader is known, and one sent to a leader that is
      // gone gets no answer: ask the new leader. Any answer is a valid read index for the caller,
      // since this request is sent after the caller's; a later duplicate answer finds no waiter.
      for (const requestId of this.reads.keys()) this.raw.readIndex(requestId);
    }
    if (changed) this.onLeadership(this);
  }

  /** Applies committed entries and answers the proposers waiting on them. */
  applyCommitted(entries: readonly Entry[]): void {
    for (const entry of entries) {
      const result = this.machine.apply(entry);
      const waiter = this.proposals.get(entry.index);
      if (!waiter) continue;
      this.proposals.delete(entry.index);
      clearTimeout(waiter.timer);
      if (waiter.term === entry.term) {
        this.observer?.proposalApplied(this.observed, performance.now() - waiter.startedMs);
        waiter.resolve(result);
      } else
        waiter.reject(new BrokerError('NO_LEADER', 'leadership changed before the write committed; retry'));
    }
    if (entries.length > 0) this.machine.afterApply();
  }

  answerReads(readStates: readonly ReadState[]): void {
    for (const state of readStates) {
      const waiter = this.reads.get(state.requestId);
      if (!waiter) continue;
      this.reads.delete(state.requestId);
      clearTimeout(waiter.timer);
      waiter.resolve(state.index);
    }
  }

  /** The group is going away (topic deleted, node stopping): fail everyone still waiting. */
  close(error: BrokerError): void {
    this.closed = true;
    for (const waiter of this.proposals.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    for (const waiter of this.reads.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.proposals.clear();
    this.reads.clear();
  }
}

function admitAll(): boolean {
  return true;
}
