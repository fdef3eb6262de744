// The consumer-group protocol as the rest of the broker and the API see it: its bounds, its
// commands, and what a member is told and an admin is shown. membership.ts applies it.

/** Session timeouts a member may ask for (docs/api.md: 1,000 to 300,000 ms). */
export const SESSION_TIMEOUT_MS_MIN = 1000;
export const SESSION_TIMEOUT_MS_MAX = 300_000;
/** While a member has a partition to let go of or to receive, it is asked to heartbeat this often. */
export const REBALANCE_HEARTBEAT_INTERVAL_MS = 500;
/**
 * A steady member heartbeats every third of its session, but at least this often: the others
 * learn of an expired member's partitions only at their next heartbeat, so this bounds how long
 * a partition stays unowned after an expiry (session + this + the expiry check).
 */
export const STEADY_HEARTBEAT_INTERVAL_MS_MAX = 1500;
/** Members of one group, and of every group together: each is state on every node. */
export const MEMBERS_PER_GROUP_MAX = 1000;
export const MEMBERS_MAX = 10_000;

export interface AssignedPartition {
  topic: string;
  partition: number;
  /** The group's committed offset; absent when none is committed. */
  offset?: number;
}

/** The answer to a join or a heartbeat. */
export interface MemberAssignment {
  memberId: string;
  generation: number;
  heartbeatIntervalMs: number;
  assignments: AssignedPartition[];
}

export interface ExpiringMember {
  group: string;
  memberId: string;
  /** The member's heartbeat count when the leader saw its session run out (see SessionClock). */
  heartbeats: number;
}

export type GroupCommand =
  | {
      type: 'joinGroup';
      group: string;
      memberId: string;
      topics: string[];
      sessionTimeoutMs: number;
      /** The proposing leader's wall clock: shown as the last heartbeat, never used to decide. */
      nowMs: number;
    }
  | { type: 'heartbeatGroup'; group: string; memberId: string; generation: number; nowMs: number }
  | { type: 'leaveGroup'; group: string; memberId: string }
  | { type: 'expireMembers'; members: ExpiringMember[] };

/** A member's proof of ownership on an offset commit. */
export interface GroupFence {
  memberId: string;
  generation: number;
}

export interface MemberDescription {
  memberId: string;
  topics: string[];
  sessionTimeoutMs: number;
  lastHeartbeatAtMs: number;
  assignments: AssignedPartition[];
  /** Partitions taken from it that it has not let go of yet. */
  revoking: Array<{ topic: string; partition: number }>;
}

export interface GroupDescription {
  generation: number;
  members: MemberDescription[];
}

/** A liveness stamp of one member, for the leader's session clock. */
export interface SessionStamp {
  group: string;
  memberId: string;
  heartbeats: number;
  sessionTimeoutMs: number;
}
