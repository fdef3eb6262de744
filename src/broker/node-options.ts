// What a broker node is built from and tuned by: its peers, store and transport, its timing, and
// the bounds on what produce may hold. Defaults beside each.

import type { Logger } from 'pino';
import type { RaftConfig } from '../raft/index.js';
import { PRODUCE_WAITING_BYTES_MAX_DEFAULT } from './backpressure.js';
import type { DiskGuard } from './disk-guard.js';
import type { MessageSink } from './driver.js';
import type { NodeStore } from './group-store.js';
import type { Announcer } from './leadership.js';
import type { PersistenceMode } from './metadata-state.js';
import type { ProducerLimits } from './producer-state.js';

export interface BrokerTiming {
  /** One Raft tick for every group. */
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  /** Leaders announce their partitions to every peer this often (and at once when they win). */
  gossipIntervalMs: number;
  /** The metadata log is snapshotted and cut after this many applied entries. */
  metadataSnapshotEveryEntries: number;
  /** Each replica checks its partitions' retention (age, size) this often. */
  retentionCheckMs: number;
  /**
   * The same for memory topics, more often: what they hold between checks is memory, taken from
   * the node's bound (and their cuts cost no file I/O, only an lmdb write).
   */
  memoryRetentionCheckMs: number;
  /** The metadata leader checks consumer-group sessions this often (src/broker/groups/). */
  groupSessionCheckMs: number;
}

export const DEFAULT_TIMING: Readonly<BrokerTiming> = Object.freeze({
  tickMs: 100,
  electionTicks: 10,
  // Heartbeats every 200 ms: followers learn commits from Commit notices, not heartbeats, so
  // these only keep leases and liveness; at 1,000 idle groups per node that halves their cost.
  heartbeatTicks: 2,
  gossipIntervalMs: 1000,
  metadataSnapshotEveryEntries: 1000,
  retentionCheckMs: 5000,
  memoryRetentionCheckMs: 250,
  groupSessionCheckMs: 100,
});

export interface NodeTransport extends MessageSink {
  isPeerAlive(nodeId: number): boolean;
}

export interface BrokerNodeOptions {
  nodeId: number;
  /** Every voting node, this one included: id → URL. */
  peers: Map<number, string>;
  store: NodeStore;
  transport: NodeTransport;
  logger: Logger;
  defaultPersistence: PersistenceMode;
  timing?: Partial<BrokerTiming>;
  /** How leadership announcements reach peers; HTTP gossip unless a test injects its own. */
  announcer?: Announcer;
  /** Idempotent-producer expiry and table size; must be the same on every node. */
  producerLimits?: Partial<ProducerLimits>;
  /** Bounds on what produce may hold in memory (defaults: 64 MiB each). */
  produceLimits?: Partial<ProduceLimits>;
  /**
   * Bytes of memory-topic data this node may hold before its leaders refuse produce to memory
   * topics with MEMORY_FULL (default: defaultMemoryTopicsBytesMax(), a quarter of the memory).
   */
  memoryTopicsBytesMax?: number;
  /** Applied log bytes of a partition between two producer-table checkpoints (default 32 MiB). */
  producerCheckpointBytes?: number;
  /** The data directory's free-space floor (absent: no disk, or not watched). */
  diskGuard?: DiskGuard;
}

export interface ProduceLimits {
  /** Bytes of proposed, uncommitted entries a partition leader holds at most (Raft's budget). */
  uncommittedBytesMax: number;
  /** Bytes of produce batches a node holds while they wait for room in a full budget. */
  waitingBytesMax: number;
}

export const DEFAULT_PRODUCE_LIMITS: Readonly<ProduceLimits> = Object.freeze({
  uncommittedBytesMax: 64 * 1024 * 1024,
  waitingBytesMax: PRODUCE_WAITING_BYTES_MAX_DEFAULT,
});

/**
 * Entry bytes in flight to one follower. What a follower is sent but has not written waits in its
 * memory three times over (the received frame, its entry cache, the frame it writes), and lives
 * long enough to reach V8's old space: with 32 MiB a catch-up spent a third more CPU on the
 * follower than with 8 MiB, for less throughput (docs/benchmarks.md, catch-up). 8 MiB still covers
 * 80 ms of turnaround at 100 MB/s.
 */
export const REPLICATION_INFLIGHT_BYTES_MAX = 8 * 1024 * 1024;

/** The Raft limits every group of a node runs with. */
export function raftConfigOf(timing: BrokerTiming, limits: ProduceLimits): Partial<RaftConfig> {
  return {
    electionTicks: timing.electionTicks,
    heartbeatTicks: timing.heartbeatTicks,
    maxUncommittedBytes: limits.uncommittedBytesMax,
    maxInflightBytes: REPLICATION_INFLIGHT_BYTES_MAX,
  };
}
