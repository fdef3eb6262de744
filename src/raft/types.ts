// The data the Raft core consumes and produces: entries, messages, hard state, Ready.
// Plain objects with numeric fields, so the transport can encode them without JSON.

/** A node id. 0 means "none" (no leader, no vote). */
export type NodeId = number;
export const NONE: NodeId = 0;

export enum EntryType {
  /** Application data. An entry with empty data is the leader's no-op. */
  Normal = 0,
  /** A membership change; data is an encoded ConfChange (see conf-change.ts). */
  ConfChange = 1,
}

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

export enum MessageType {
  App = 1,
  AppResp = 2,
  Vote = 3,
  VoteResp = 4,
  PreVote = 5,
  PreVoteResp = 6,
  Heartbeat = 7,
  HeartbeatResp = 8,
  Snapshot = 9,
  ReadIndex = 10,
  ReadIndexResp = 11,
  TimeoutNow = 12,
  TransferLeader = 13,
  Commit = 14,
}

// One interface per message kind, each field with one meaning. Every message of a kind is built by
// makeMessage (or the codec, through it) with the same fields in the same order, so each kind has
// one hidden class and the handlers of a kind stay monomorphic.

type VoteType = MessageType.Vote | MessageType.PreVote;
type VoteRespType = MessageType.VoteResp | MessageType.PreVoteResp;

interface MessageHeader<T extends MessageType> {
  type: T;
  from: NodeId;
  to: NodeId;
  term: number;
}

/** Leader → follower: entries after (prevIndex, prevTerm), and the leader's commit. */
export interface AppMessage extends MessageHeader<MessageType.App> {
  /** Index of the entry just before `entries`; they follow it contiguously. */
  prevIndex: number;
  /** Term of the entry at prevIndex, in the leader's log. */
  prevTerm: number;
  entries: Entry[];
  /** The leader's commit index; the follower commits up to min(commit, last new entry). */
  commit: number;
  /** Index of the leader's no-op of this term (see Raft.learnRecoveryTarget). */
  termStartIndex: number;
}

/** Follower → leader: the App was accepted (matchIndex) or refused (with a backtracking hint). */
export interface AppRespMessage extends MessageHeader<MessageType.AppResp> {
  /** The App's (prevIndex, prevTerm) does not match this log. */
  reject: boolean;
  /** Accepted: the last index known to match the leader's log, durable here. 0 when rejecting. */
  matchIndex: number;
  /** Rejected: the prevIndex of the refused App (a refusal of an older App is stale). */
  rejectedIndex: number;
  /** Rejected: the last index here at or below rejectedIndex whose term is at most the App's prevTerm. */
  hintIndex: number;
  /** Rejected: the term at hintIndex, so the leader can skip that whole term; 0 when unknown. */
  hintTerm: number;
  /** The replica restarted without its log and has not caught up: the leader must not count it. */
  recovering: boolean;
}

/** Candidate → voter: a vote request, real (Vote) or trial (PreVote, for term + 1). */
export interface VoteMessage<T extends VoteType = VoteType> extends MessageHeader<T> {
  /** The candidate's last entry: voters grant only a log at least as up-to-date as theirs. */
  lastIndex: number;
  lastTerm: number;
  /** Started by TimeoutNow (a leadership transfer): voters ignore their leader lease. */
  transfer: boolean;
  /** The candidate lost acknowledged entries in a restart (see Raft.recoveryAllowsVote). */
  recovering: boolean;
}

/**
 * Voter → candidate. As in etcd, `term` is the term of the election for a grant (for a
 * PreVoteResp the candidate's next term, which the voter has not entered) and the voter's own
 * term for a rejection, so that a candidate behind the times learns the newer term.
 */
export interface VoteRespMessage<T extends VoteRespType = VoteRespType> extends MessageHeader<T> {
  reject: boolean;
}

/** Leader → follower: liveness, commit, and a round number for ReadIndex and the lease. */
export interface HeartbeatMessage extends MessageHeader<MessageType.Heartbeat> {
  /** The leader's commit, capped at what the follower is known to store. */
  commit: number;
  /** The leader's heartbeat round; the response echoes it. */
  round: number;
}

export interface HeartbeatRespMessage extends MessageHeader<MessageType.HeartbeatResp> {
  /** The round of the heartbeat answered. */
  round: number;
  /** As AppRespMessage.recovering. */
  recovering: boolean;
}

/** Leader → follower whose next index is below the leader's log start. */
export interface SnapshotMessage extends MessageHeader<MessageType.Snapshot> {
  snapshot: Snapshot;
  /** The leader's commit, which may be past the snapshot: a recovering follower must reach it. */
  commit: number;
  /** As AppMessage.termStartIndex. */
  termStartIndex: number;
}

/** Follower → leader: ask for a read index on behalf of a local reader. */
export interface ReadIndexMessage extends MessageHeader<MessageType.ReadIndex> {
  /** The read's id, opaque to the core; the response carries it back. */
  requestId: number;
}

export interface ReadIndexRespMessage extends MessageHeader<MessageType.ReadIndexResp> {
  requestId: number;
  /** Once this index is applied locally, the read is linearizable. */
  readIndex: number;
}

/** Leader → transfer target: campaign now, ignoring the election timer and leases. */
export type TimeoutNowMessage = MessageHeader<MessageType.TimeoutNow>;

/** Follower → leader: please hand leadership to `transferee`. */
export interface TransferLeaderMessage extends MessageHeader<MessageType.TransferLeader> {
  transferee: NodeId;
}

/**
 * Leader → follower, no answer: the commit index moved. Sent when no App carries the news this
 * turn, so followers serve new records about one trip after commit.
 */
export interface CommitMessage extends MessageHeader<MessageType.Commit> {
  commit: number;
  /** An entry the follower is known to hold: it may commit up to min(commit, matchIndex). */
  matchIndex: number;
  matchTerm: number;
}

/** One message between two replicas of a group. */
export type Message =
  | AppMessage
  | AppRespMessage
  | VoteMessage<MessageType.Vote>
  | VoteMessage<MessageType.PreVote>
  | VoteRespMessage<MessageType.VoteResp>
  | VoteRespMessage<MessageType.PreVoteResp>
  | HeartbeatMessage
  | HeartbeatRespMessage
  | SnapshotMessage
  | ReadIndexMessage
  | ReadIndexRespMessage
  | TimeoutNowMessage
  | TransferLeaderMessage
  | CommitMessage;

interface MessageByType {
  [MessageType.App]: AppMessage;
  [MessageType.AppResp]: AppRespMessage;
  [MessageType.Vote]: VoteMessage<MessageType.Vote>;
  [MessageType.VoteResp]: VoteRespMessage<MessageType.VoteResp>;
  [MessageType.PreVote]: VoteMessage<MessageType.PreVote>;
  [MessageType.PreVoteResp]: VoteRespMessage<MessageType.PreVoteResp>;
  [MessageType.Heartbeat]: HeartbeatMessage;
  [MessageType.HeartbeatResp]: HeartbeatRespMessage;
  [MessageType.Snapshot]: SnapshotMessage;
  [MessageType.ReadIndex]: ReadIndexMessage;
  [MessageType.ReadIndexResp]: ReadIndexRespMessage;
  [MessageType.TimeoutNow]: TimeoutNowMessage;
  [MessageType.TransferLeader]: TransferLeaderMessage;
  [MessageType.Commit]: CommitMessage;
}

/** The message interface of one type; the whole union for a type not known statically. */
export type MessageOf<T extends MessageType> = MessageByType[T];

export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

export interface SnapshotMetadata {
  index: number;
  term: number;
  confState: ConfState;
}

/**
 * A snapshot of the state machine up to `metadata.index`. For a log broker the log prefix is gone
 * (retention), so `data` is the application's small state (next offset, dedup table), not the log.
 */
export interface Snapshot {
  metadata: SnapshotMetadata;
  data: Uint8Array;
}

export enum StateRole {
  Follower = 0,
  PreCandidate = 1,
  Candidate = 2,
  Leader = 3,
}

export interface SoftState {
  lead: NodeId;
  role: StateRole;
}

/** A ReadIndex result: once `index` is applied locally, a read for `requestId` is linearizable. */
export interface ReadState {
  index: number;
  requestId: number;
}

/**
 * What the driver must do next. Contract:
 * 1. Start persisting `snapshot` (first), then `entries` (entries[0].index may be at or below the
 *    last stored index: the stored log is cut there first), then `hardState`. Writes of successive
 *    Readys must become durable in `persistId` order.
 * 2. Send `messages` now: none of them depends on this Ready's writes.
 * 3. Apply `committedEntries` in order; they are already durable locally.
 * 4. Call `advance(ready)`.
 * 5. When the writes of this Ready are durable (per the persistence mode), call
 *    `reportPersisted(persistId)`. Messages that depended on them come out of a later Ready.
 */
export interface Ready {
  softState: SoftState | null;
  hardState: HardState | null;
  /** True when term or vote changed, or there are entries or a snapshot: the write must be durable. */
  mustSync: boolean;
  entries: Entry[];
  snapshot: Snapshot | null;
  /** Non-zero when this Ready carries anything to persist; report it back once durable. */
  persistId: number;
  messages: Message[];
  committedEntries: Entry[];
  readStates: ReadState[];
  /** The membership after the conf changes applied by the previous advance(), to persist. */
  confState: ConfState | null;
}

/**
 * Creates a message of `type` with its fields zero, empty or false, for the caller to fill in. The
 * one place each kind's object is shaped, so all messages of a kind share a hidden class.
 */
export function makeMessage<T extends MessageType>(
  type: T,
  from: NodeId,
  to: NodeId,
  term: number,
): MessageOf<T> {
  return newMessage(type, from, to, term) as MessageOf<T>;
}

function newMessage(type: MessageType, from: NodeId, to: NodeId, term: number): Message {
  switch (type) {
    case MessageType.App:
      return {
        type,
        from,
        to,
        term,
        prevIndex: 0,
        prevTerm: 0,
        entries: EMPTY_ENTRIES,
        commit: 0,
        termStartIndex: 0,
      };
    case MessageType.AppResp:
      return {
        type,
        from,
        to,
        term,
        reject: false,
        matchIndex: 0,
        rejectedIndex: 0,
        hintIndex: 0,
        hintTerm: 0,
        recovering: false,
      };
    case MessageType.Vote:
    case MessageType.PreVote:
      return { type, from, to, term, lastIndex: 0, lastTerm: 0, transfer: false, recovering: false };
    case MessageType.VoteResp:
    case MessageType.PreVoteResp:
      return { type, from, to, term, reject: false };
    case MessageType.Heartbeat:
      return { type, from, to, term, commit: 0, round: 0 };
    case MessageType.HeartbeatResp:
      return { type, from, to, term, round: 0, recovering: false };
    case MessageType.Snapshot:
      return { type, from, to, term, snapshot: NO_SNAPSHOT, commit: 0, termStartIndex: 0 };
    case MessageType.ReadIndex:
      return { type, from, to, term, requestId: 0 };
    case MessageType.ReadIndexResp:
      return { type, from, to, term, requestId: 0, readIndex: 0 };
    case MessageType.TimeoutNow:
      return { type, from, to, term };
    case MessageType.TransferLeader:
      return { type, from, to, term, transferee: NONE };
    case MessageType.Commit:
      return { type, from, to, term, commit: 0, matchIndex: 0, matchTerm: 0 };
  }
}

/** Shared empty array; never mutated. */
export const EMPTY_ENTRIES: Entry[] = Object.freeze([]) as unknown as Entry[];

/** The placeholder of a Snapshot message not filled in yet; never sent by the core. */
const NO_SNAPSHOT: Snapshot = Object.freeze({
  metadata: Object.freeze({ index: 0, term: 0, confState: Object.freeze({ voters: [], learners: [] }) }),
  data: new Uint8Array(0),
});

export function isResponse(type: MessageType): boolean {
  return (
    type === MessageType.AppResp ||
    type === MessageType.VoteResp ||
    type === MessageType.PreVoteResp ||
    type === MessageType.HeartbeatResp ||
    type === MessageType.ReadIndexResp
  );
}

/** Bytes an entry costs toward byte limits: its payload plus a fixed header. */
export const ENTRY_OVERHEAD_BYTES = 24;
export function entryBytes(entry: Entry): number {
  return entry.data.length + ENTRY_OVERHEAD_BYTES;
}
