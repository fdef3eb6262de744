// The one seam between the HTTP API (src/api) and the broker: everything a route may ask of this
// node, typed. BrokerNode implements it. Beyond this file the API imports only the broker's
// errors and its pure helpers (validators, the partitioner, the gossip wire form); never a
// group, a core, a machine or the driver (test/architecture/api-boundary.test.ts keeps it so).

import type { IoExecutorStats } from '../storage/index.js';
import type { FetchLocalParams, FetchLocalResult } from './fetch.js';
import type { FetchBatchesResult } from './fetch-batches.js';
import type { GroupDescription } from './groups/protocol.js';
import type { PartitionStatus } from './leadership.js';
import type {
  MetadataCommand,
  MetadataResult,
  PartitionPlacement,
  PersistenceMode,
  TopicMeta,
} from './metadata-state.js';
import type { OffsetForTimeResult } from './offset-for-time.js';
import type { ProduceInput, ProduceLocalResult } from './produce.js';
import type { GroupObserver } from './raft-group.js';
import type { ProducerInfo, StoredRecord } from './record-batch.js';

export type { GroupDescription, MemberAssignment } from './groups/protocol.js';
export type { PartitionStatus } from './leadership.js';
export type {
  MetadataCommand,
  MetadataResult,
  PartitionPlacement,
  PersistenceMode,
  TopicConfig,
  TopicMeta,
} from './metadata-state.js';
export type { OffsetForTimeResult } from './offset-for-time.js';
export type { ProduceInput } from './produce.js';
export type { ObservedGroup } from './raft-group.js';
export type { ProducerInfo, StoredRecord } from './record-batch.js';

/** Storage's counts of where its I/O tasks ran. */
export type StorageIoStats = IoExecutorStats;

/** Where a read starts: an offset, or this replica's log start or high watermark. */
export type OffsetSpec = number | 'earliest' | 'latest';

export type FetchParams = FetchLocalParams;
export type FetchResult = FetchLocalResult;
export type { FetchBatchesResult };
export type ProduceResult = ProduceLocalResult;

export interface ProduceParams {
  records: readonly ProduceInput[];
  /** An idempotent producer's id, epoch and sequence; null for a plain produce. */
  producer: ProducerInfo | null;
  timeoutMs: number;
}

/** A local replica's committed records from a start resolved when it was opened. */
export interface ReplicaTail {
  readonly startOffset: number;
  /**
   * The records from startOffset on, in chunks, each read when the high watermark passes it;
   * ends when the signal aborts, the replica closes, or retention removes the next offset.
   */
  chunks(signal: AbortSignal): AsyncIterable<StoredRecord[]>;
}

export interface CommittedOffset {
  topic: string;
  partition: number;
  offset: number;
}

export interface GroupSummary {
  group: string;
  members: number;
  generation: number;
}

/** Metrics events of every group, present and future, and of storage (src/api/metrics.ts). */
export interface NodeObserver extends GroupObserver {
  /** A log write task spent `durationMs` in fdatasync. */
  fsync(durationMs: number): void;
}

/** One partition replica on this node, as a metrics scrape sees it. */
export interface PartitionMetrics {
  topic: string;
  partition: number;
  term: number;
  /** The leader as this replica knows it; 0: none. */
  leader: number;
  /** This replica leads (and has caught up its state machine as leader). */
  isLeader: boolean;
  highWatermark: number;
  logStartOffset: number;
  /** Bytes of segment files (0 for memory topics), and of process memory (memory topics only). */
  diskBytes: number;
  memoryBytes: number;
  /** The idempotent-producer table: full entries, evicted ones remembered, evictions so far. */
  producers: number;
  producersEvictedRemembered: number;
  producerEvictionsTotal: number;
  producerEvictionsForgottenTotal: number;
  /** On the leader only: the Raft entries each follower lacks; null elsewhere. */
  replicaLagEntries: ReadonlyMap<number, number> | null;
}

/** What a metrics scrape reads of the broker, all at one moment. */
export interface MetricsSnapshot {
  partitions: PartitionMetrics[];
  /** Where storage's I/O tasks ran (null without a disk store). */
  storageIo: StorageIoStats | null;
  produce: {
    waited: number;
    throttled: number;
    refusedBusy: number;
    refusedDiskFull: number;
    refusedMemoryFull: number;
    waitingBytes: number;
  };
  disk: {
    /** At the last reading; null when the disk is not watched or not read yet. */
    freeBytes: number | null;
    freeBytesMin: number | null;
    failedLogs: number;
    /** Leaders' entries this replica turned away at its free-space floor. */
    replicationRefusedEntries: number;
  };
  memoryTopics: { heldBytes: number; bytesMax: number };
  metadata: { term: number; leader: number };
}

export interface Broker {
  // ---- this node and the cluster ---------------------------------------------------------
  readonly nodeId: number;
  readonly clusterId: string;
  /** Every voting node, this one included: id → URL. */
  readonly peers: ReadonlyMap<number, string>;
  readonly defaultPersistence: PersistenceMode;
  /** This node itself, or a peer with a live link. */
  isPeerAlive(nodeId: number): boolean;
  /** Metadata has a leader and every local partition is open and knows one. */
  isReady(): boolean;
  /** Leadership announcements from a peer. */
  receiveAnnouncements(statuses: PartitionStatus[]): void;

  // ---- describe: this node's view now (syncMetadata first for read-your-writes) ----------
  findTopic(name: string): TopicMeta | undefined;
  /** Throws UNKNOWN_TOPIC. */
  topic(name: string): TopicMeta;
  topics(): TopicMeta[];
  /** Throws UNKNOWN_TOPIC or UNKNOWN_PARTITION. */
  partition(topic: string, partition: number): PartitionPlacement;
  /** A partition's leader, term and offsets: from its replica here, else from announcements. */
  partitionStatus(groupId: number): PartitionStatus | null;
  metadataLeader(): number | null;
  isMetadataLeader(): boolean;

  // ---- waits, each with a deadline ---------------------------------------------------------
  /** Confirms with the metadata leader and applies that far; NO_LEADER if not in time. */
  syncMetadata(timeoutMs: number): Promise<void>;
  /** Until every partition of `topic` has a known leader; false if not in time. */
  waitForLeaders(topic: string, timeoutMs: number): Promise<boolean>;

  // ---- metadata writes, on the metadata leader ---------------------------------------------
  proposeMetadata(command: MetadataCommand, timeoutMs: number): Promise<MetadataResult>;

  // ---- consumer groups -----------------------------------------------------------------------
  groupOffsets(group: string, topic?: string): CommittedOffset[];
  /** Every group with members or committed offsets, by name. */
  groups(): GroupSummary[];
  /** The group's generation and members; null if it has none. */
  groupMembers(group: string): GroupDescription | null;

  // ---- produce, on the partition's leader ---------------------------------------------------
  leadsPartition(groupId: number): boolean;
  /** Round-robin partition choice for keyless records, one cursor per topic. */
  nextRoundRobin(topic: string, partitions: number): number;
  produce(groupId: number, params: ProduceParams): Promise<ProduceResult>;

  // ---- reads, on a replica here ------------------------------------------------------------
  hasReplica(groupId: number): boolean;
  fetch(groupId: number, params: FetchParams, signal?: AbortSignal): Promise<FetchResult>;
  /** The same read answered as the stored batches (the binary fetch answer). */
  fetchBatches(groupId: number, params: FetchParams, signal?: AbortSignal): Promise<FetchBatchesResult>;
  /** The first committed record at or after `timestampMs` here, or the high watermark. */
  offsetForTime(groupId: number, timestampMs: number): Promise<OffsetForTimeResult>;
  /** Throws OFFSET_OUT_OF_RANGE below the log start (past the high watermark it waits). */
  tail(groupId: number, from: OffsetSpec): ReplicaTail;

  // ---- leadership ------------------------------------------------------------------------------
  /** On the partition's leader: resolves once `target` leads; TIMEOUT or NO_LEADER otherwise. */
  moveLeadership(groupId: number, target: number, timeoutMs: number): Promise<void>;

  // ---- metrics -------------------------------------------------------------------------------
  observe(observer: NodeObserver): void;
  metricsSnapshot(): MetricsSnapshot;
}
