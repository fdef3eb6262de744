// Limits and timing of one Raft group. Every field carries its unit in its name.

import { assert } from './errors.js';

export interface RaftConfig {
  /** Ticks without hearing from a leader before a follower campaigns; randomized in [n, 2n). */
  electionTicks: number;
  /** Ticks between leader heartbeats. Must be less than electionTicks. */
  heartbeatTicks: number;
  /** Most entry bytes in one App message (at least one entry is always sent). */
  maxBytesPerMessage: number;
  /** Most App messages in flight to one follower in replicate state. */
  maxInflightMessages: number;
  /** Most entry bytes in flight to one follower. 0 means no byte limit. */
  maxInflightBytes: number;
  /** Most bytes of proposed but uncommitted entries on the leader. 0 means no limit. */
  maxUncommittedBytes: number;
  /** Most bytes of committed entries handed out in one Ready. */
  maxCommittedBytesPerReady: number;
  /** Run a pre-vote round before a real election, so a partitioned node cannot inflate terms. */
  preVote: boolean;
  /** A leader that has not heard from a quorum for electionTicks steps down. Required for leases. */
  checkQuorum: boolean;
  /**
   * Serve ReadIndex from the leader lease when it is valid. The lease lasts electionTicks minus
   * leaseMarginTicks from the send time of the last heartbeat round a quorum answered; the margin
   * covers clock drift between nodes.
   */
  leaseReads: boolean;
  leaseMarginTicks: number;
}

export const DEFAULT_RAFT_CONFIG: Readonly<RaftConfig> = Object.freeze({
  electionTicks: 10,
  heartbeatTicks: 1,
  maxBytesPerMessage: 1024 * 1024,
  maxInflightMessages: 256,
  maxInflightBytes: 32 * 1024 * 1024,
  maxUncommittedBytes: 64 * 1024 * 1024,
  maxCommittedBytesPerReady: 16 * 1024 * 1024,
  preVote: true,
  checkQuorum: true,
  leaseReads: true,
  leaseMarginTicks: 2,
});

export function resolveConfig(partial: Partial<RaftConfig> | undefined): RaftConfig {
  const config: RaftConfig = { ...DEFAULT_RAFT_CONFIG, ...partial };
  assert(config.electionTicks > 0, 'electionTicks must be positive');
  assert(config.heartbeatTicks > 0, 'heartbeatTicks must be positive');
  assert(config.heartbeatTicks < config.electionTicks, 'heartbeatTicks must be less than electionTicks');
  assert(config.maxBytesPerMessage > 0, 'maxBytesPerMessage must be positive');
  assert(config.maxInflightMessages > 0, 'maxInflightMessages must be positive');
  assert(config.maxInflightBytes >= 0, 'maxInflightBytes must not be negative');
  assert(config.maxUncommittedBytes >= 0, 'maxUncommittedBytes must not be negative');
  assert(config.maxCommittedBytesPerReady > 0, 'maxCommittedBytesPerReady must be positive');
  assert(
    config.leaseMarginTicks >= 0 && config.leaseMarginTicks < config.electionTicks,
    'leaseMarginTicks must be in [0, electionTicks)',
  );
  assert(!config.leaseReads || config.checkQuorum, 'leaseReads requires checkQuorum');
  return config;
}
