// The Raft consensus algorithm for one group, as a pure, synchronous state machine. It never does
// I/O: inputs are ticks, messages and proposals; outputs are collected by RawNode into a Ready.

import { applyConfChange, type ConfChange, decodeConfChange, encodeConfChange } from './conf-change.js';
import { type RaftConfig, resolveConfig } from './config.js';
import { assert, isRaftError, RaftError } from './errors.js';
import { type Progress, ProgressState, ProgressTracker } from './progress.js';
import { quorumSize } from './quorum.js';
import { RaftLog } from './raft-log.js';
import type { RandomSource } from './random.js';
import type { InitialState, LogStorage } from './storage.js';
import {
  type AppMessage,
  type AppRespMessage,
  type CommitMessage,
  type ConfState,
  EMPTY_ENTRIES,
  type Entry,
  EntryType,
  entryBytes,
  type HardState,
  type HeartbeatMessage,
  type HeartbeatRespMessage,
  type Message,
  MessageType,
  makeMessage,
  NONE,
  type NodeId,
  type ReadState,
  type Snapshot,
  type SnapshotMessage,
  StateRole,
  type TransferLeaderMessage,
  type VoteMessage,
} from './types.js';

export interface RaftOptions {
  id: NodeId;
  storage: LogStorage;
  random: RandomSource;
  /** Hard state and membership from the driver's state store. A new group passes its voters here. */
  initialState: InitialState;
  /** The last index the application applied before a restart. */
  applied?: number;
  config?: Partial<RaftConfig>;
  /**
   * This replica restarted without part of its acknowledged log (memory mode, or async mode after
   * a power loss). Until its log catches up with a leader's commit it grants no vote and does not
   * count toward commit, so its lost acknowledgements cannot elect a stale leader.
   */
  recovering?: boolean;
  /** The driver's monotonic clock at start, in ticks (see Raft.now); 0 on virtual time. */
  nowTicks?: number;
}

/** Heartbeat rounds remembered for the lease; older rounds count as expired. */
const ROUND_RING_SIZE = 1024;

interface PendingRead {
  requestId: number;
  from: NodeId;
  index: number;
  round: number;
}

/** A message that may leave only once what was pending persistence when it was made is durable. */
interface HeldMessage {
  /** The persist it waits for; 0 until assigned (see assignHeld). */
  persistId: number;
  message: Message;
  /** An accepting AppResp: the term of the acknowledged entry, which must still be ours when sent. */
  matchTerm: number;
}

interface InflightPersist {
  persistId: number;
  lastIndex: number;
  lastTerm: number;
  snapshotIndex: number;
}

type StepFunction = (message: Message) => void;

export class Raft {
  readonly id: NodeId;
  readonly config: RaftConfig;
  readonly log: RaftLog;
  readonly tracker: ProgressTracker;
  private readonly random: RandomSource;

  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role = StateRole.Follower;
  /** Leader: the voter leadership is being handed to, or NONE. */
  leadTransferee: NodeId = NONE;
  /** Leader: index of the last conf change proposed; another waits until it is applied. */
  private pendingConfIndex = 0;
  private uncommittedBytes = 0;
  recovering: boolean;
  /** Recovering: the index to store before voting again (see learnRecoveryTarget). */
  private recoveryTarget = -1;
  private recoveryTargetTerm = 0;
  /** Recovering: voters seen campaigning while recovering too (all of them: the data is gone). */
  private readonly recoveringPeers = new Set<NodeId>();

  /**
   * Time, in two kinds. Safety is judged by a clock: `now`, in ticks (fractional), which a driver
   * sets from a monotonic clock before every input (tick(now), advanceClock(now)). The lease and
   * the vote guard that protects it compare against it, so a process that was stopped (SIGSTOP, a
   * long GC pause, a VM stall) sees at once how long it was gone. Invariant: never decreases.
   *
   * Liveness is counted in ticks, one per tick() call: the election and heartbeat timers, the
   * check-quorum window, the transfer and snapshot timeouts. No safety property rests on them
   * (elections are safe at any time; leaseValid does not trust check-quorum; a transfer ends the
   * lease for its term), and counting callbacks means a stall of a whole machine, which stops
   * every node's timers alike, does not make followers campaign against a leader that is fine.
   */
  now = 0;
  tickCount = 0;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTicks = 0;
  /** `now` at the last message from a leader (start counts: see the lease guard in inLease). */
  private lastLeaderContactAt = 0;
  /**
   * Leader: a TimeoutNow went out in this term. It lets its target campaign through every voter's
   * lease guard whenever it arrives, even after the transfer was abandoned here (a target that was
   * paused with the message in its socket campaigns on resume), so this leader's lease proves
   * nothing any more: until the next term, reads take a heartbeat round.
   */
  private leaseForfeited = false;

  /** Leader: heartbeat round number, and `now` when each recent round was sent. */
  private round = 0;
  private readonly roundSentAt = new Float64Array(ROUND_RING_SIZE);
  private pendingReads: PendingRead[] = [];
  /** Leader: reads waiting for the first commit of this term. */
  private readsBeforeCommit: PendingRead[] = [];

  /** Messages to send now. */
  msgs: Message[] = [];
  /**
   * Leader: Apps to send at the next Ready, because entries were proposed since the last one, or
   * the storage loaded entries that a send found pending (EntriesPending).
   */
  appendsPending = false;
  /**
   * Leader: index of this term's no-op. Everything committed before this term lies below it
   * (leader completeness), so a recovering replica that holds it holds every such entry.
   */
  private termStartIndex = 0;
  /** Leader: the commit index followers were last notified of. */
  private lastCommitNoticed = 0;
  /** A follower acknowledged entries that were already committed: it needs a Commit notice. */
  private lateAckNoticeDue = false;
  /** Messages that must wait until what is pending persistence now is durable. */
  private heldUnassigned: HeldMessage[] = [];
  private held: HeldMessage[] = [];
  private inflightPersists: InflightPersist[] = [];
  private lastPersistId = 0;
  readStates: ReadState[] = [];
  /** Set when membership changed since the last Ready. */
  confStateChanged = false;

  private stepRole: StepFunction = this.stepFollower;
  private tickRole: () => void = this.tickElection;

  constructor(options: RaftOptions) {
    assert(options.id !== NONE, 'raft: id must not be 0');
    this.id = options.id;
    this.config = resolveConfig(options.config);
    this.random = options.random;
    this.now = options.nowTicks ?? 0;
    assert(Number.isFinite(this.now), `raft: start clock ${this.now} is not a number`);
    this.log = new RaftLog(options.storage, options.applied ?? 0);
    this.tracker = new ProgressTracker(this.config.maxInflightMessages, this.config.maxInflightBytes);
    const { hardState, confState } = options.initialState;
    this.tracker.applyConfState(confState, this.log.lastIndex() + 1);
    this.term = hardState.term;
    this.vote = hardState.vote;
    // Whatever the application applied was committed, even if the stored commit lags behind it.
    const commit = Math.max(hardState.commit, this.log.applied);
    if (commit > 0) {
      assert(
        commit <= this.log.lastIndex() || options.recovering === true,
        `hard state commit ${commit} is past the last stored index ${this.log.lastIndex()}: log lost`,
      );
      this.log.commitTo(Math.min(commit, this.log.lastIndex()));
    }
    this.recovering = options.recovering ?? false;
    this.becomeFollower(this.term, NONE);
    // A restarted node may have acked a leader's heartbeat just before it stopped, and that leader
    // may still rely on the lease: treat the start as leader contact. At term 0 no leader existed.
    this.lastLeaderContactAt = this.term > 0 ? this.now : this.now - this.config.electionTicks;
  }

  // ---- hard state -------------------------------------------------------------------------

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  isPromotable(): boolean {
    return this.tracker.isVoter(this.id);
  }

  // ---- role transitions --------------------------------------------------------------------

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTicks = this.config.electionTicks + this.random.int(this.config.electionTicks);
    this.leadTransferee = NONE;
    this.leaseForfeited = false;
    this.tracker.resetVotes();
    this.pendingReads = [];
    this.readsBeforeCommit = [];
    const next = this.log.lastIndex() + 1;
    for (const [id, pr] of this.tracker.progress) {
      const fresh = this.tracker.newProgress(next, pr.isLearner);
      if (id === this.id) fresh.match = this.log.stableIndex();
      this.tracker.progress.set(id, fresh);
    }
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.role = StateRole.Follower;
    this.stepRole = this.stepFollower;
    this.tickRole = this.tickElection;
  }

  private becomePreCandidate(): void {
    assert(this.role !== StateRole.Leader, 'raft: leader cannot become pre-candidate');
    // Pre-vote changes neither term nor vote: a node cut off from the others cannot inflate terms.
    this.tracker.resetVotes();
    this.lead = NONE;
    this.role = StateRole.PreCandidate;
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
  }

  private becomeCandidate(): void {
    assert(this.role !== StateRole.Leader, 'raft: leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = StateRole.Candidate;
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
  }

  private becomeLeader(): void {
    assert(this.role === StateRole.Candidate, 'raft: only a candidate can become leader');
    this.reset(this.term);
    this.lead = this.id;
    this.role = StateRole.Leader;
    this.recovering = false;
    this.stepRole = this.stepLeader;
    this.tickRole = this.tickHeartbeat;
    // reset() left every follower in probe at next = lastIndex + 1: optimistic, so a follower
    // that is up to date gets no entry twice.
    // An uncommitted conf change may hide in the log: allow no other until everything applies.
    this.pendingConfIndex = this.log.lastIndex();
    this.uncommittedBytes = 0;
    this.lastCommitNoticed = this.log.committed;
    this.lateAckNoticeDue = false;
    // The no-op: entries of earlier terms commit only under an entry of this term.
    this.termStartIndex = this.appendEntries([
      { term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) },
    ]);
    this.bcastAppend();
  }

  // ---- ticks -------------------------------------------------------------------------------

  /** One tick of the timers, at clock reading `nowTicks` (see `now`). */
  tick(nowTicks: number): void {
    this.advanceClock(nowTicks);
    this.tickCount++;
    this.tickRole();
  }

  advanceClock(nowTicks: number): void {
    assert(Number.isFinite(nowTicks), `raft: clock reading ${nowTicks} is not a number`);
    if (nowTicks > this.now) this.now = nowTicks;
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.isPromotable() && this.electionElapsed >= this.randomizedElectionTicks) {
      this.electionElapsed = 0;
      this.campaign(this.config.preVote ? 'pre-election' : 'election');
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.config.electionTicks) {
      this.electionElapsed = 0;
      if (this.config.checkQuorum) {
        if (!this.tracker.quorumActive(this.id)) {
          this.becomeFollower(this.term, NONE);
          return;
        }
        for (const pr of this.tracker.progress.values()) pr.recentActive = false;
      }
      // A transfer that has not finished within an election timeout is abandoned.
      this.leadTransferee = NONE;
    }
    if (this.heartbeatElapsed >= this.config.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  // ---- campaign ----------------------------------------------------------------------------

  campaign(kind: 'pre-election' | 'election' | 'transfer'): void {
    if (!this.isPromotable() || this.role === StateRole.Leader) return;
    let voteType: MessageType.PreVote | MessageType.Vote;
    let voteTerm: number;
    if (kind === 'pre-election') {
      this.becomePreCandidate();
      voteType = MessageType.PreVote;
      voteTerm = this.term + 1;
    } else {
      this.becomeCandidate();
      voteType = MessageType.Vote;
      voteTerm = this.term;
    }
    if (kind === 'pre-election') {
      this.tracker.recordVote(this.id, true);
    } else {
      // The self-vote counts only once the vote is durable: held until persisted.
      this.hold(makeMessage(MessageType.VoteResp, this.id, this.id, this.term));
    }
    if (this.tallyAndAct()) return;
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.tracker.voters) {
      if (id === this.id) continue;
      const m = makeMessage(voteType, this.id, id, voteTerm);
      m.lastIndex = lastIndex;
      m.lastTerm = lastTerm;
      m.transfer = kind === 'transfer';
      m.recovering = this.recovering;
      this.msgs.push(m);
    }
  }

  /** Counts votes; acts on a decided election. Returns true if the election was decided. */
  private tallyAndAct(): boolean {
    const result = this.tracker.tallyVotes();
    if (result === 'pending') return false;
    if (result === 'lost') {
      this.becomeFollower(this.term, NONE);
      return true;
    }
    if (this.role === StateRole.PreCandidate) {
      this.campaign('election');
    } else if (this.tracker.hasGranted(this.id)) {
      this.becomeLeader();
    } else {
      // A quorum granted, but our own term and vote are not durable yet: a crash now would let us
      // restart in the old term and lead this term a second time. Lead once they are.
      return false;
    }
    return true;
  }

  // ---- step --------------------------------------------------------------------------------

  step(m: Message): void {
    if (m.term > this.term) {
      if (!this.acceptHigherTerm(m)) return;
    } else if (m.term < this.term) {
      this.answerLowerTerm(m);
      return;
    }
    if (m.type === MessageType.PreVote || m.type === MessageType.Vote) {
      this.stepVote(m);
      return;
    }
    this.stepRole(m);
  }

  /** A message from a higher term. Returns false if it is to be ignored. */
  private acceptHigherTerm(m: Message): boolean {
    if ((m.type === MessageType.PreVote || m.type === MessageType.Vote) && !m.transfer && this.inLease()) {
      return false;
    }
    if (m.type === MessageType.PreVote) return true; // pre-vote never changes our term
    if (m.type === MessageType.PreVoteResp && !m.reject) return true; // our own future term
    const fromLeader =
      m.type === MessageType.App ||
      m.type === MessageType.Heartbeat ||
      m.type === MessageType.Snapshot ||
      m.type === MessageType.Commit;
    this.becomeFollower(m.term, fromLeader ? m.from : NONE);
    return true;
  }

  /**
   * With check-quorum, a node that heard from a leader within an election timeout (or started
   * less than one ago) ignores vote requests: this is what makes the leader lease safe. Measured
   * by the clock, which the driver advanced before the message was stepped: a contact dated by a
   * stale clock would end the guard early.
   */
  private inLease(): boolean {
    if (!this.config.checkQuorum) return false;
    if (this.role === StateRole.Leader) return true;
    return this.now - this.lastLeaderContactAt < this.config.electionTicks;
  }

  private answerLowerTerm(m: Message): void {
    if (
      (this.config.checkQuorum || this.config.preVote) &&
      (m.type === MessageType.App || m.type === MessageType.Heartbeat)
    ) {
      // A stale leader learns of the new term from this and steps down.
      this.msgs.push(makeMessage(MessageType.AppResp, this.id, m.from, this.term));
    } else if (m.type === MessageType.PreVote) {
      const resp = makeMessage(MessageType.PreVoteResp, this.id, m.from, this.term);
      resp.reject = true;
      this.msgs.push(resp);
    }
  }

  private stepVote(m: VoteMessage): void {
    const isPre = m.type === MessageType.PreVote;
    const canVote =
      this.vote === m.from || (this.vote === NONE && this.lead === NONE) || (isPre && m.term > this.term);
    const grant = canVote && this.log.isUpToDate(m.lastIndex, m.lastTerm) && this.recoveryAllowsVote(m);
    const respType = isPre ? MessageType.PreVoteResp : MessageType.VoteResp;
    const resp = makeMessage(respType, this.id, m.from, grant ? m.term : this.term);
    resp.reject = !grant;
    if (!grant || isPre) {
      this.msgs.push(resp);
      return;
    }
    this.electionElapsed = 0;
    this.vote = m.from;
    // The grant may leave only once the vote is durable.
    this.hold(resp);
  }

  /**
   * A replica with its data never votes for one that lost it. A replica that lost data votes for a
   * recovering candidate only when every voter lost data too (then nothing better exists), and for
   * a candidate that kept its data only once it has seen a majority of voters recovering: then
   * what they acknowledged may be gone anyway, and without their votes no leader could ever be
   * elected again. While only a minority lost data, their votes are never needed.
   */
  private recoveryAllowsVote(m: VoteMessage): boolean {
    if (m.recovering) this.recoveringPeers.add(m.from);
    if (!m.recovering && !this.recovering) return true;
    if (!this.recovering) return false;
    if (!m.recovering) return this.seenMajorityRecovering();
    for (const id of this.tracker.voters) {
      if (id !== this.id && id !== m.from && !this.recoveringPeers.has(id)) return false;
    }
    return true;
  }

  private seenMajorityRecovering(): boolean {
    let recovering = 0;
    for (const id of this.tracker.voters) {
      if (id === this.id || this.recoveringPeers.has(id)) recovering++;
    }
    return recovering >= quorumSize(this.tracker.voters.length);
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.heardFromLeader(m.from);
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.heardFromLeader(m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snapshot:
        this.heardFromLeader(m.from);
        this.handleSnapshot(m);
        return;
      case MessageType.Commit:
        this.heardFromLeader(m.from);
        this.handleCommit(m);
        return;
      case MessageType.TimeoutNow:
        this.campaign('transfer');
        return;
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.readIndex, requestId: m.requestId });
        return;
      case MessageType.TransferLeader:
        if (this.lead !== NONE) this.forwardToLeader(m);
        return;
      default:
        return; // stale responses and misdirected requests
    }
  }

  private heardFromLeader(from: NodeId): void {
    this.electionElapsed = 0;
    this.lead = from;
    this.lastLeaderContactAt = this.now;
    this.recoveringPeers.clear();
  }

  private forwardToLeader(m: TransferLeaderMessage): void {
    const forwarded = makeMessage(MessageType.TransferLeader, this.id, this.lead, this.term);
    forwarded.transferee = m.transferee;
    this.msgs.push(forwarded);
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case MessageType.App:
      case MessageType.Heartbeat:
      case MessageType.Snapshot:
      case MessageType.Commit:
        // A leader of our term exists: follow it.
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      case MessageType.PreVoteResp:
        // A grant carries the term we asked for; a rejection carries the voter's (our) term.
        if (this.role !== StateRole.PreCandidate || m.term !== this.term + (m.reject ? 0 : 1)) return;
        this.tracker.recordVote(m.from, !m.reject);
        this.tallyAndAct();
        return;
      case MessageType.VoteResp:
        if (this.role !== StateRole.Candidate) return;
        this.tracker.recordVote(m.from, !m.reject);
        this.tallyAndAct();
        return;
      default:
        return;
    }
  }

  private stepLeader(m: Message): void {
    const pr = this.tracker.progress.get(m.from);
    switch (m.type) {
      case MessageType.AppResp:
        if (pr) this.handleAppendResponse(m, pr);
        return;
      case MessageType.HeartbeatResp:
        if (pr) this.handleHeartbeatResponse(m, pr);
        return;
      case MessageType.ReadIndex:
        this.readIndex(m.requestId, m.from);
        return;
      case MessageType.TransferLeader:
        this.transferLeader(m.transferee);
        return;
      default:
        return;
    }
  }

  // ---- follower side of replication --------------------------------------------------------

  private handleAppend(m: AppMessage): void {
    if (m.prevIndex < this.log.committed) {
      // Everything up to our commit matches the leader already.
      this.respondAppend(m.from, this.log.committed);
      return;
    }
    const lastNew = this.log.maybeAppend(m.prevIndex, m.prevTerm, m.commit, m.entries);
    if (lastNew >= 0) {
      this.learnRecoveryTarget(m, m.commit);
      this.respondAppend(m.from, lastNew);
      return;
    }
    // Reject with a hint: the last index at or below prevIndex whose term is <= prevTerm.
    const hint = this.log.findConflictByTerm(Math.min(m.prevIndex, this.log.lastIndex()), m.prevTerm);
    const resp = makeMessage(MessageType.AppResp, this.id, m.from, this.term);
    resp.reject = true;
    resp.rejectedIndex = m.prevIndex;
    resp.hintIndex = hint.index;
    resp.hintTerm = hint.term;
    resp.recovering = this.recovering;
    this.msgs.push(resp);
  }

  /** An acknowledgement of entries up to index: sent only once they are durable here. */
  private respondAppend(to: NodeId, index: number): void {
    const resp = makeMessage(MessageType.AppResp, this.id, to, this.term);
    resp.matchIndex = index;
    // Remember the acked entry's term: if the entry is replaced before it is durable, drop the ack.
    this.hold(resp, this.log.termOrZero(index));
  }

  private handleCommit(m: CommitMessage): void {
    if (!this.recovering && this.log.matchTerm(m.matchIndex, m.matchTerm)) {
      this.log.commitTo(Math.min(m.commit, m.matchIndex));
    }
  }

  private handleHeartbeat(m: HeartbeatMessage): void {
    if (!this.recovering) {
      assert(
        m.commit <= this.log.lastIndex(),
        `heartbeat commit ${m.commit} is past our last index ${this.log.lastIndex()}: log lost or corrupted`,
      );
      this.log.commitTo(m.commit);
    }
    // A recovering node learns no recovery target here: the leader caps a heartbeat's commit at
    // what it knows we store (0 after our restart), not its real commit.
    const resp = makeMessage(MessageType.HeartbeatResp, this.id, m.from, this.term);
    resp.round = m.round;
    resp.recovering = this.recovering;
    this.msgs.push(resp);
  }

  private handleSnapshot(m: SnapshotMessage): void {
    const snapshot = m.snapshot;
    const { index, term } = snapshot.metadata;
    if (index <= this.log.committed) {
      this.respondAppend(m.from, this.log.committed);
      return;
    }
    if (this.log.matchTerm(index, term)) {
      // We have the entry already: just move commit.
      this.log.commitTo(index);
      this.respondAppend(m.from, this.log.lastIndex());
      return;
    }
    this.log.restore(snapshot);
    this.tracker.applyConfState(snapshot.metadata.confState, this.log.lastIndex() + 1);
    this.confStateChanged = true;
    this.learnRecoveryTarget(m, Math.max(index, m.commit));
    this.respondAppend(m.from, index);
  }

  /**
   * A recovering replica must hold everything that may have been committed with its lost acks.
   * Such entries lie at or below the leader's commit, or, if the leader was elected after the
   * restart and its commit still lags, below the leader's no-op (termStartIndex): leader
   * completeness puts every earlier committed entry there. Learned once per leader term.
   */
  private learnRecoveryTarget(m: AppMessage | SnapshotMessage, commit: number): void {
    if (!this.recovering || m.term <= this.recoveryTargetTerm) return;
    this.recoveryTargetTerm = m.term;
    this.recoveryTarget = Math.max(this.recoveryTarget, commit, m.termStartIndex);
  }

  private maybeFinishRecovery(): void {
    if (!this.recovering || this.recoveryTarget < 0) return;
    if (this.log.stableIndex() >= this.recoveryTarget && !this.log.unstable.snapshot) this.recovering = false;
  }

  // ---- leader side of replication ----------------------------------------------------------

  private handleAppendResponse(m: AppRespMessage, pr: Progress): void {
    pr.recentActive = true;
    this.noteRecovering(pr, m.recovering);
    if (m.reject) {
      this.handleAppendRejection(m, pr);
      return;
    }
    const previousState = pr.state;
    if (!pr.maybeUpdate(m.matchIndex)) return;
    if (previousState === ProgressState.Probe) pr.becomeReplicate();
    else if (previousState === ProgressState.Snapshot && pr.match >= pr.pendingSnapshot) pr.becomeProbe();
    else if (previousState === ProgressState.Replicate) pr.inflights.freeLE(m.matchIndex);
    if (this.maybeCommit()) this.releaseReadsBeforeCommit();
    this.sendAppendLoop(m.from);
    // The others may have committed these entries before this ack came: without a notice this
    // follower would learn it only from the next heartbeat, and apply (and serve) that late. While
    // Apps are still out to it, the ack of the last one will ask for the notice: one per burst.
    if (pr.match === pr.next - 1 && Math.min(this.log.committed, pr.match) > pr.sentCommit) {
      this.lateAckNoticeDue = true;
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private handleAppendRejection(m: AppRespMessage, pr: Progress): void {
    if (m.recovering && pr.match > m.hintIndex) {
      // The replica lost what it acknowledged before its restart: forget those acks.
      pr.match = m.hintIndex;
    }
    let nextHint = m.hintIndex + 1;
    if (m.hintTerm > 0) {
      // Skip every entry of the follower's conflicting term in one step.
      nextHint = this.log.findConflictByTerm(m.hintIndex, m.hintTerm).index + 1;
    }
    if (!pr.maybeDecreaseTo(m.rejectedIndex, nextHint)) return;
    if (pr.state === ProgressState.Replicate) pr.becomeProbe();
    this.sendAppend(m.from);
  }

  /**
   * A replica that says it is recovering restarted without (part of) its log: what it acked before
   * is gone. Forget its match and probe from our end; its rejection hints find its real end.
   */
  private noteRecovering(pr: Progress, recovering: boolean): void {
    if (recovering && !pr.recovering) {
      pr.match = 0;
      pr.becomeProbe();
      pr.next = this.log.lastIndex() + 1;
    }
    pr.recovering = recovering;
  }

  private handleHeartbeatResponse(m: HeartbeatRespMessage, pr: Progress): void {
    pr.recentActive = true;
    this.noteRecovering(pr, m.recovering);
    pr.probeSent = false;
    if (m.round > pr.ackedRound) pr.ackedRound = m.round;
    if (
      pr.state === ProgressState.Replicate &&
      pr.match < pr.next - 1 &&
      pr.match === pr.matchAtLastHeartbeat
    ) {
      // Nothing was acked for a whole heartbeat interval although Apps are out: they were
      // probably lost. Probe from match again rather than wait for acks that will not come.
      pr.becomeProbe();
    }
    pr.matchAtLastHeartbeat = pr.match;
    if (
      pr.state === ProgressState.Snapshot &&
      this.tickCount - pr.pendingSnapshotTick >= this.config.electionTicks
    ) {
      // The snapshot was probably lost: probe again, which sends a new one if still needed.
      pr.becomeProbe();
    }
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
    this.releaseConfirmedReads();
  }

  /** Advances commit to what a quorum stores, for entries of the current term only. */
  private maybeCommit(): boolean {
    const index = this.tracker.committedIndex();
    if (index <= this.log.committed) return false;
    // Figure 8: an entry of an earlier term is never committed by counting replicas.
    if (this.log.termOrZero(index) !== this.term) return false;
    this.log.commitTo(index);
    return true;
  }

  /**
   * The storage loaded entries it reported EntriesPending for. A send that found them pending
   * returned without sending, and nothing else retries it before the next heartbeat response: a
   * follower far behind would get one load's worth of entries per heartbeat interval.
   */
  entriesLoaded(): void {
    if (this.role === StateRole.Leader) this.appendsPending = true;
  }

  /** Sends the Apps that proposals of this turn deferred. Called when a Ready is built. */
  flushAppends(): void {
    if (this.role !== StateRole.Leader) {
      this.appendsPending = false;
      return;
    }
    if (this.appendsPending) {
      this.appendsPending = false;
      this.bcastAppend();
    }
    if (this.log.committed > this.lastCommitNoticed || this.lateAckNoticeDue) {
      this.lastCommitNoticed = this.log.committed;
      this.lateAckNoticeDue = false;
      this.sendCommitNotices();
    }
  }

  commitNoticePending(): boolean {
    return (
      this.role === StateRole.Leader && (this.log.committed > this.lastCommitNoticed || this.lateAckNoticeDue)
    );
  }

  /** Tells followers the new commit index, unless an App this turn already did. */
  private sendCommitNotices(): void {
    for (const [id, pr] of this.tracker.progress) {
      if (id === this.id || pr.recovering) continue;
      const commit = Math.min(this.log.committed, pr.match);
      if (commit <= pr.sentCommit) continue;
      const m = makeMessage(MessageType.Commit, this.id, id, this.term);
      m.commit = commit;
      m.matchIndex = pr.match;
      m.matchTerm = this.log.termOrZero(pr.match);
      this.msgs.push(m);
      pr.sentCommit = commit;
    }
  }

  private bcastAppend(): void {
    for (const id of this.tracker.progress.keys()) if (id !== this.id) this.sendAppendLoop(id);
  }

  /** In replicate state, streams messages until the window is full or the follower has it all. */
  private sendAppendLoop(to: NodeId): void {
    const pr = this.tracker.progress.get(to)!;
    const last = this.log.lastIndex();
    let sent = 0;
    while (pr.next <= last && sent < this.config.maxInflightMessages && this.sendAppend(to)) {
      sent++;
      if (pr.state !== ProgressState.Replicate) break;
    }
  }

  /** Sends one App (or a snapshot) to `to`. Returns true if a message was sent. */
  private sendAppend(to: NodeId): boolean {
    const pr = this.tracker.progress.get(to)!;
    if (pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    let entries: Entry[];
    try {
      prevTerm = this.log.term(prevIndex);
      entries =
        pr.next <= this.log.lastIndex()
          ? this.log.slice(pr.next, this.log.lastIndex() + 1, this.config.maxBytesPerMessage)
          : EMPTY_ENTRIES;
    } catch (error) {
      if (isRaftError(error, 'Compacted')) return this.sendSnapshot(to, pr);
      if (isRaftError(error, 'EntriesPending')) return false;
      throw error;
    }
    if (entries.length === 0 && pr.state === ProgressState.Replicate) return false;
    const m = makeMessage(MessageType.App, this.id, to, this.term);
    m.prevIndex = prevIndex;
    m.prevTerm = prevTerm;
    m.entries = entries;
    m.commit = this.log.committed;
    m.termStartIndex = this.termStartIndex;
    this.msgs.push(m);
    pr.sentCommit = Math.max(pr.sentCommit, Math.min(this.log.committed, prevIndex + entries.length));
    let bytes = 0;
    for (let i = 0; i < entries.length; i++) bytes += entryBytes(entries[i]!);
    pr.sentEntries(prevIndex + entries.length, bytes);
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false; // it may be down: wait until it answers a heartbeat
    let snapshot: Snapshot;
    try {
      snapshot = this.log.snapshot();
    } catch (error) {
      if (isRaftError(error, 'SnapshotTemporarilyUnavailable')) return false;
      throw error;
    }
    assert(snapshot.metadata.index > 0, 'raft: need a snapshot but the storage has none');
    const m = makeMessage(MessageType.Snapshot, this.id, to, this.term);
    m.snapshot = snapshot;
    // Our commit, which may be past the snapshot: a recovering follower must catch up to it.
    m.commit = this.log.committed;
    m.termStartIndex = this.termStartIndex;
    this.msgs.push(m);
    pr.becomeSnapshot(snapshot.metadata.index, this.tickCount);
    return true;
  }

  private bcastHeartbeat(): number {
    this.round++;
    this.roundSentAt[this.round % ROUND_RING_SIZE] = this.now;
    for (const [id, pr] of this.tracker.progress) {
      if (id === this.id) continue;
      const m = makeMessage(MessageType.Heartbeat, this.id, id, this.term);
      // Never tell a follower to commit past what it is known to store.
      m.commit = Math.min(pr.match, this.log.committed);
      m.round = this.round;
      this.msgs.push(m);
      if (m.commit > pr.sentCommit) pr.sentCommit = m.commit;
    }
    return this.round;
  }

  private sendTimeoutNow(to: NodeId): void {
    this.leaseForfeited = true;
    this.msgs.push(makeMessage(MessageType.TimeoutNow, this.id, to, this.term));
  }

  // ---- proposals ---------------------------------------------------------------------------

  /** Appends entries on the leader; returns the index of the first. */
  propose(entries: Entry[]): number {
    if (this.role !== StateRole.Leader) {
      throw new RaftError(
        'NotLeader',
        `node ${this.id} is not the leader (leader: ${this.lead || 'unknown'})`,
      );
    }
    if (this.leadTransferee !== NONE) {
      throw new RaftError('ProposalDropped', `leadership is moving to node ${this.leadTransferee}`);
    }
    let bytes = 0;
    for (let i = 0; i < entries.length; i++) bytes += entryBytes(entries[i]!);
    if (!this.hasUncommittedRoom(bytes)) {
      throw new RaftError(
        'UncommittedBytesFull',
        `uncommitted entries hold ${this.uncommittedBytes} bytes; ${bytes} more would pass ` +
          `maxUncommittedBytes (${this.config.maxUncommittedBytes})`,
      );
    }
    this.uncommittedBytes += bytes;
    const first = this.appendEntries(entries);
    // Sent at the next Ready: every proposal of one driver turn leaves as one App per follower.
    this.appendsPending = true;
    return first;
  }

  /** Whether entries of `bytes` (entryBytes) fit the budget; one always fits an empty budget. */
  hasUncommittedRoom(bytes: number): boolean {
    const limit = this.config.maxUncommittedBytes;
    return limit === 0 || this.uncommittedBytes === 0 || this.uncommittedBytes + bytes <= limit;
  }

  proposeConfChange(change: ConfChange): number {
    if (this.role === StateRole.Leader && this.pendingConfIndex > this.log.applied) {
      throw new RaftError('ConfChangeRejected', 'another membership change is still pending');
    }
    applyConfChange(this.tracker.confState(), change); // validates
    const index = this.propose([
      { term: 0, index: 0, type: EntryType.ConfChange, data: encodeConfChange(change) },
    ]);
    this.pendingConfIndex = index;
    return index;
  }

  /** Stamps term and index on entries and appends them; the self-ack comes once durable. */
  private appendEntries(entries: Entry[]): number {
    const first = this.log.lastIndex() + 1;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      entry.term = this.term;
      entry.index = first + i;
    }
    this.log.append(entries);
    return first;
  }

  /** Committed entries were handed to the application: release their uncommitted budget. */
  reduceUncommitted(entries: readonly Entry[]): void {
    if (this.role !== StateRole.Leader || this.uncommittedBytes === 0) return;
    let bytes = 0;
    for (let i = 0; i < entries.length; i++) bytes += entryBytes(entries[i]!);
    this.uncommittedBytes = Math.max(0, this.uncommittedBytes - bytes);
  }

  // ---- reads -------------------------------------------------------------------------------

  /** Starts a linearizable read; its ReadState comes out in a later Ready. */
  readIndex(requestId: number, from: NodeId = this.id): void {
    if (this.role !== StateRole.Leader) {
      if (this.lead === NONE) return; // no leader: dropped; the driver asks again once one is known
      const m = makeMessage(MessageType.ReadIndex, this.id, this.lead, this.term);
      m.requestId = requestId;
      this.msgs.push(m);
      return;
    }
    const read: PendingRead = { requestId, from, index: this.log.committed, round: 0 };
    if (this.log.termOrZero(this.log.committed) !== this.term) {
      // Our commit index may lag the previous leader's until an entry of this term commits.
      this.readsBeforeCommit.push(read);
      return;
    }
    this.startRead(read);
  }

  private startRead(read: PendingRead): void {
    if (this.tracker.voters.length === 1 || (this.config.leaseReads && this.leaseValid())) {
      this.answerRead(read);
      return;
    }
    read.round = this.bcastHeartbeat();
    this.pendingReads.push(read);
  }

  private releaseReadsBeforeCommit(): void {
    if (this.readsBeforeCommit.length === 0) return;
    const reads = this.readsBeforeCommit;
    this.readsBeforeCommit = [];
    for (const read of reads) {
      read.index = this.log.committed;
      this.startRead(read);
    }
  }

  private releaseConfirmedReads(): void {
    if (this.pendingReads.length === 0) return;
    const confirmed = this.tracker.quorumAckedRound(this.id, this.round);
    let count = 0;
    while (count < this.pendingReads.length && this.pendingReads[count]!.round <= confirmed) {
      this.answerRead(this.pendingReads[count]!);
      count++;
    }
    if (count > 0) this.pendingReads.splice(0, count);
  }

  private answerRead(read: PendingRead): void {
    if (read.from === this.id) {
      this.readStates.push({ index: read.index, requestId: read.requestId });
      return;
    }
    const m = makeMessage(MessageType.ReadIndexResp, this.id, read.from, this.term);
    m.requestId = read.requestId;
    m.readIndex = read.index;
    this.msgs.push(m);
  }

  /**
   * The lease: a quorum answered a heartbeat round sent less than electionTicks - margin ago, so
   * none of them votes for anyone else yet (inLease), and no other leader can exist. Judged at
   * `now`, which the driver set when the read arrived: a read that waited out a pause finds the
   * lease expired. A round is dated when the core made it, at or before it left: never too late.
   */
  leaseValid(): boolean {
    if (this.role !== StateRole.Leader || !this.config.checkQuorum) return false;
    if (this.leadTransferee !== NONE || this.leaseForfeited) return false;
    const round = this.tracker.quorumAckedRound(this.id, this.round);
    if (round === 0 || this.round - round >= ROUND_RING_SIZE) return false;
    const sentAt = this.roundSentAt[round % ROUND_RING_SIZE]!;
    return this.now < sentAt + this.config.electionTicks - this.config.leaseMarginTicks;
  }

  // ---- leadership transfer -----------------------------------------------------------------

  transferLeader(to: NodeId): void {
    if (this.role !== StateRole.Leader) {
      if (this.lead === NONE) return;
      const m = makeMessage(MessageType.TransferLeader, this.id, this.lead, this.term);
      m.transferee = to;
      this.msgs.push(m);
      return;
    }
    if (to === this.id || to === this.leadTransferee || !this.tracker.isVoter(to)) return;
    this.leadTransferee = to;
    this.electionElapsed = 0; // the transfer times out after one election timeout
    const pr = this.tracker.progress.get(to)!;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppendLoop(to);
  }

  // ---- persistence ---------------------------------------------------------------------------

  /** Holds `message` until what is pending persistence now is durable (see assignHeld). */
  private hold(message: Message, matchTerm = 0): void {
    this.heldUnassigned.push({ persistId: 0, message, matchTerm });
  }

  /** Assigns held messages to a persist: the new one if any, else the latest still in flight. */
  assignHeld(persist: InflightPersist | null): void {
    if (persist) this.inflightPersists.push(persist);
    if (this.heldUnassigned.length === 0) return;
    const latest = this.inflightPersists[this.inflightPersists.length - 1];
    if (!latest) {
      for (const held of this.heldUnassigned) this.deliverHeld(held);
      this.heldUnassigned = [];
      return;
    }
    for (const held of this.heldUnassigned) {
      held.persistId = latest.persistId;
      this.held.push(held);
    }
    this.heldUnassigned = [];
  }

  nextPersistId(): number {
    return ++this.lastPersistId;
  }

  /** The driver reports that the writes of every Ready up to persistId are durable. */
  persisted(persistId: number): void {
    while (this.inflightPersists.length > 0 && this.inflightPersists[0]!.persistId <= persistId) {
      const done = this.inflightPersists.shift()!;
      if (done.snapshotIndex > 0) this.log.unstable.stableSnapshotTo(done.snapshotIndex);
      if (done.lastIndex > 0) this.log.unstable.stableTo(done.lastIndex, done.lastTerm);
    }
    this.maybeFinishRecovery();
    let count = 0;
    while (count < this.held.length && this.held[count]!.persistId <= persistId) {
      this.deliverHeld(this.held[count]!);
      count++;
    }
    if (count > 0) this.held.splice(0, count);
    if (this.role === StateRole.Leader) {
      const self = this.tracker.progress.get(this.id);
      if (self?.maybeUpdate(this.log.stableIndex()) && this.maybeCommit()) this.releaseReadsBeforeCommit();
    }
  }

  private deliverHeld(held: HeldMessage): void {
    const m = held.message;
    if (m.to === this.id) {
      // The self-vote of a candidate whose vote is now durable.
      if (m.type === MessageType.VoteResp && m.term === this.term && this.role === StateRole.Candidate) {
        this.tracker.recordVote(this.id, true);
        this.tallyAndAct();
      }
      return;
    }
    if (m.type === MessageType.AppResp && !m.reject) {
      // Acknowledge only entries that are still ours and durable.
      const index = m.matchIndex;
      if (index > this.log.stableIndex() || this.log.termOrZero(index) !== held.matchTerm) return;
      m.recovering = this.recovering;
    }
    this.msgs.push(m);
  }

  hasHeldUnassigned(): boolean {
    return this.heldUnassigned.length > 0;
  }

  // ---- membership --------------------------------------------------------------------------

  /** Applies committed conf change entries as the application applies them. */
  applyCommitted(entries: readonly Entry[]): void {
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      if (entry.type !== EntryType.ConfChange) continue;
      this.applyConfChangeEntry(decodeConfChange(entry.data));
    }
  }

  private applyConfChangeEntry(change: ConfChange): void {
    let next: ConfState;
    try {
      next = applyConfChange(this.tracker.confState(), change);
    } catch (error) {
      if (isRaftError(error, 'ConfChangeRejected')) return; // committed but invalid: a no-op everywhere
      throw error;
    }
    this.tracker.applyConfState(next, this.log.lastIndex() + 1);
    this.confStateChanged = true;
    if (this.role !== StateRole.Leader) return;
    if (!this.tracker.isVoter(this.id)) {
      this.becomeFollower(this.term, NONE);
      return;
    }
    const added = this.tracker.progress.get(change.nodeId);
    if (added && added.match === 0 && change.nodeId !== this.id) this.sendAppend(change.nodeId);
    if (this.maybeCommit()) this.releaseReadsBeforeCommit();
    this.releaseConfirmedReads();
  }
}
