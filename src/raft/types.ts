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
  /** Leader → follower: entries after (logTerm, index), and the leader's commit. */
  App = 1,
  /** Follower → leader: accept (index = last matching index) or reject (with hints). */
  AppResp = 2,
  Vote = 3,
  VoteResp = 4,
  PreVote = 5,
  PreVoteResp = 6,
  /** Leader → follower: liveness and commit; context carries a read or lease round. */
  Heartbeat = 7,
  HeartbeatResp = 8,
  /** Leader → follower whose next index is below the leader's log start. */
  Snapshot = 9,
  /** Follower → leader: ask for a read index on behalf of a local reader. */
  ReadIndex = 10,
  ReadIndexResp = 11,
  /** Leader → transfer target: campaign now, ignoring the election timer and leases. */
  TimeoutNow = 12,
  /** Follower → leader: please transfer leadership to `from`'s choice (in index). */
  TransferLeader = 13,
  /**
   * Leader → follower, no answer: the commit index moved. `index`/`logTerm` name an entry the
   * follower is known to hold, so it may commit up to min(commit, index). Sent when no App
   * carries the news this turn, so followers serve new records about one trip after commit.
   */
  Commit = 14,
}

/**
 * One message between two replicas of a group. Fields that a type does not use are zero/empty.
 * Kept flat so that encoding is a fixed header plus the entries.
 */
export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  /** App: term of the entry at `index`. Vote/PreVote: candidate's last log term. AppResp(reject): hint term. */
  logTerm: number;
  /** App: index preceding `entries`. Vote: candidate's last index. AppResp: match index or reject hint. */
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  /** AppResp(reject): the follower's last index, so the leader can back off in one step. */
  rejectHint: number;
  /**
   * Heartbeat/HeartbeatResp: the leader's round number (for ReadIndex and the lease).
   * ReadIndex/ReadIndexResp: the request's id (opaque to the core).
   */
  context: number;
  /** Snapshot: the snapshot to install. */
  snapshot: Snapshot | null;
  /**
   * AppResp/HeartbeatResp from a replica that restarted without its log (memory mode) and has not
   * caught up yet: the leader must not count it toward commit.
   */
  recovering: boolean;
}

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

/** Creates a message with every field present (monomorphic objects keep the hot path fast). */
export function makeMessage(type: MessageType, from: NodeId, to: NodeId, term: number): Message {
  return {
    type,
    from,
    to,
    term,
    logTerm: 0,
    index: 0,
    entries: EMPTY_ENTRIES,
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: 0,
    snapshot: null,
    recovering: false,
  };
}

/** Shared empty array; never mutated. */
export const EMPTY_ENTRIES: Entry[] = Object.freeze([]) as unknown as Entry[];

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
