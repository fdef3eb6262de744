// One broker node: the coordinator of the metadata group (metadata-group.ts), the partition
// replicas placed here (partitions.ts), leadership (leadership.ts, hand-off.ts) and the bounds on
// produce, and the Broker facade the API talks to (facade.ts). Forwarding to other nodes is the
// API layer's job; this class answers for what is local and says where the rest lives.

import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { isStorageError } from '../storage/index.js';
import { ProduceBackpressure } from './backpressure.js';
import { DiskPressure } from './disk-pressure.js';
import { Driver } from './driver.js';
import { BrokerError } from './errors.js';
import type {
  Broker,
  CommittedOffset,
  FetchParams,
  FetchResult,
  GroupSummary,
  MetricsSnapshot,
  NodeObserver,
  OffsetSpec,
  ProduceParams,
  ProduceResult,
  ReplicaTail,
} from './facade.js';
import { type CommittedReader, fetchLocalWith, readCommitted } from './fetch.js';
import { type FetchBatchesResult, readCommittedBatches } from './fetch-batches.js';
import { GroupFactory, proposeEntry } from './group-factory.js';
import type { GroupDescription } from './groups/protocol.js';
import { SessionExpiry } from './groups/session-expiry.js';
import { LeadershipHandOff } from './hand-off.js';
import { LeadershipDirectory, LeadershipGossip, type PartitionStatus } from './leadership.js';
import { defaultMemoryTopicsBytesMax, MemoryTopicsBound } from './memory-bound.js';
import { MetadataGroup } from './metadata-group.js';
import {
  METADATA_GROUP_ID,
  type MetadataCommand,
  type MetadataResult,
  MetadataState,
  type PartitionPlacement,
  type PersistenceMode,
  type TopicMeta,
} from './metadata-state.js';
import { takeMetricsSnapshot } from './metrics-snapshot.js';
import {
  type BrokerNodeOptions,
  type BrokerTiming,
  DEFAULT_PRODUCE_LIMITS,
  DEFAULT_TIMING,
  raftConfigOf,
} from './node-options.js';
import { type OffsetForTimeResult, offsetForTimeLocal } from './offset-for-time.js';
import { RoundRobin } from './partitioner.js';
import { type LocalPartition, LocalPartitions } from './partitions.js';
import { produceLocal } from './produce.js';
import { ProducerCheckpoints } from './producer-checkpoint.js';
import { DEFAULT_PRODUCER_LIMITS } from './producer-state.js';
import type { RaftGroup } from './raft-group.js';
import { RetentionRunner } from './retention.js';
import { openTail } from './stream.js';
import { Signal, waitUntil } from './wait.js';

/** A stable id for the cluster: the same for every node given the same voters. */
export function clusterIdOf(peers: Map<number, string>): string {
  const ids = [...peers.keys()].sort((a, b) => a - b).join(',');
  return `rl-${createHash('sha256').update(ids).digest('hex').slice(0, 16)}`;
}

/** How long the metadata leader waits for a session-expiry command to apply. */
const SESSION_EXPIRY_TIMEOUT_MS = 10_000;
/** How often partitions are checked for a producer-table checkpoint due. */
const CHECKPOINT_CHECK_MS = 1000;

export class BrokerNode implements Broker {
  readonly nodeId: number;
  readonly peers: Map<number, string>;
  readonly clusterId: string;
  readonly timing: BrokerTiming;
  readonly metadata: MetadataState;
  readonly driver: Driver;
  /** The partition replicas open here, by group id. */
  readonly partitions: ReadonlyMap<number, LocalPartition>;
  readonly logger: Logger;
  readonly defaultPersistence: PersistenceMode;
  /** Produce requests waiting for room in a full uncommitted budget (bounded per node). */
  readonly backpressure: ProduceBackpressure;
  /** The bound on memory-topic data held here, and its refusals. */
  readonly memoryTopics: MemoryTopicsBound;
  /** The disk's floor and failed logs: what produce and replication may write. */
  readonly disk: DiskPressure;
  /**
   * Fired after anything that changes what this node knows of the cluster: a metadata apply, a
   * leadership change of a group here, an announcement, a replica dropped. Waits listen to it.
   */
  private readonly changed = new Signal();
  private readonly local: LocalPartitions;
  private readonly metadataGroup: MetadataGroup;
  private readonly leadership: LeadershipDirectory;
  private readonly handOffs: LeadershipHandOff;
  private readonly roundRobin = new Map<string, RoundRobin>();
  private readonly timers: NodeJS.Timeout[] = [];
  /** Retention of disk topics, and of memory topics: separate, so that neither waits on the other. */
  private readonly retention: RetentionRunner;
  private readonly producerCheckpoints: ProducerCheckpoints;
  private readonly memoryRetention: RetentionRunner;
  /** Expires consumer-group members whose sessions ran out, while this node leads metadata. */
  private readonly sessionExpiry: SessionExpiry;
  private stopping = false;
  /** handOffLeadership ran (a drain): stop() does not hand off again. */
  private handedOff = false;
  private observer: NodeObserver | null = null;

  constructor(private readonly options: BrokerNodeOptions) {
    this.nodeId = options.nodeId;
    this.peers = options.peers;
    this.clusterId = clusterIdOf(options.peers);
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    this.logger = options.logger;
    this.defaultPersistence = options.defaultPersistence;
    const produceLimits = { ...DEFAULT_PRODUCE_LIMITS, ...options.produceLimits };
    this.backpressure = new ProduceBackpressure(produceLimits.waitingBytesMax);
    this.memoryTopics = new MemoryTopicsBound(options.memoryTopicsBytesMax ?? defaultMemoryTopicsBytesMax(), {
      heldBytes: () => options.store.memoryModeBytes?.() ?? 0,
      turn: () => this.driver.turns,
    });
    this.disk = new DiskPressure(
      {
        diskGroups: () => this.local.diskGroups(),
        group: (groupId) =>
          (groupId === METADATA_GROUP_ID ? this.metadataGroup.group : this.partitions.get(groupId)?.group) ??
          undefined,
        handOff: (group) => this.handOffs.handOff(group),
        logger: options.logger,
      },
      options.diskGuard ?? null,
    );
    options.store.onGroupFailed?.((groupId, error) => {
      // Corruption storage's scrub found in a partition's log: rebuilt, as when found at open.
      if (isStorageError(error, 'CorruptLog') && groupId !== METADATA_GROUP_ID) {
        void this.local.rebuild(groupId, error);
      } else this.disk.groupFailed(groupId, error);
    });
    this.metadata = new MetadataState([...options.peers.keys()]);
    this.driver = new Driver({
      store: options.store,
      sink: options.transport,
      tickMs: this.timing.tickMs,
      logger: options.logger,
    });
    const factory = new GroupFactory({
      nodeId: options.nodeId,
      store: options.store,
      driver: this.driver,
      logger: options.logger,
      raftConfig: raftConfigOf(this.timing, produceLimits),
      disk: this.disk,
      onLeadership: (group) => this.leadership.groupChanged(group),
      observer: () => this.observer,
    });
    this.local = new LocalPartitions({
      nodeId: options.nodeId,
      metadata: this.metadata,
      factory,
      driver: this.driver,
      store: options.store,
      producerLimits: { ...DEFAULT_PRODUCER_LIMITS, ...options.producerLimits },
      logger: options.logger,
      isStopping: () => this.stopping,
      onDropped: (groupId) => this.leadership.forget(groupId),
    });
    this.partitions = this.local.byGroup;
    this.metadataGroup = new MetadataGroup({
      state: this.metadata,
      factory,
      driver: this.driver,
      voters: [...options.peers.keys()],
      logger: options.logger,
      snapshotEveryEntries: this.timing.metadataSnapshotEveryEntries,
      changed: this.changed,
      onChange: () => this.local.reconcile(),
    });
    const gossip = options.announcer ?? new LeadershipGossip(options.nodeId, options.peers, options.logger);
    this.leadership = new LeadershipDirectory(options.nodeId, this.partitions, gossip, this.changed);
    this.handOffs = new LeadershipHandOff({
      nodeId: options.nodeId,
      isPeerAlive: (id) => options.transport.isPeerAlive(id),
      driver: this.driver,
      changed: this.changed,
    });
    this.retention = new RetentionRunner(options.logger);
    this.producerCheckpoints = new ProducerCheckpoints(options.logger, options.producerCheckpointBytes);
    this.memoryRetention = new RetentionRunner(options.logger);
    this.sessionExpiry = new SessionExpiry(
      {
        leadingTerm: () => (this.isMetadataLeader() ? this.metadataTerm() : null),
        sessions: () => this.metadata.memberships.sessions(),
        expire: async (members) => {
          const result = await this.proposeMetadata(
            { type: 'expireMembers', members },
            SESSION_EXPIRY_TIMEOUT_MS,
          );
          if (!result.ok) throw result.error;
        },
        logger: options.logger,
      },
      this.timing.groupSessionCheckMs,
    );
  }

  /** Sends metrics events of every group, present and future, and of storage to `observer`. */
  observe(observer: NodeObserver): void {
    this.observer = observer;
    const metadataGroup = this.metadataGroup.group;
    if (metadataGroup) metadataGroup.observer = observer;
    for (const local of this.partitions.values()) local.group.observer = observer;
    this.options.store.observeFsync?.((durationMs) => observer.fsync(durationMs));
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  async start(): Promise<void> {
    await this.metadataGroup.open();
    this.driver.start();
    this.every(this.timing.gossipIntervalMs, () => this.leadership.announceAll());
    this.every(CHECKPOINT_CHECK_MS, () => this.producerCheckpoints.runDue(this.local.byGroup.values()));
    this.every(this.timing.retentionCheckMs, () => this.runRetention(this.retention, false));
    this.every(this.timing.memoryRetentionCheckMs, () => {
      this.runRetention(this.memoryRetention, true);
      this.memoryTopics.warnIfOver(this.logger, Date.now());
    });
    this.sessionExpiry.start();
  }

  private every(intervalMs: number, run: () => void): void {
    const timer = setInterval(run, intervalMs);
    timer.unref();
    this.timers.push(timer);
  }

  /** Starts a retention pass over this node's memory-topic replicas, or over the others. */
  private runRetention(runner: RetentionRunner, memory: boolean): void {
    if (this.stopping) return;
    const partitions: LocalPartition[] = [];
    for (const local of this.partitions.values()) {
      if ((local.group.store.mode === 'memory') === memory) partitions.push(local);
    }
    runner.run(partitions, (topic) => this.metadata.topics.get(topic)?.config);
  }

  /**
   * Stops: hands leadership away (see handOffLeadership; a drain has usually done that already),
   * then stops the loop and storage. Callers still waiting on a group get NO_LEADER.
   */
  async stop(handOffMs = 3000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (!this.handedOff) await this.handOffLeadership(handOffMs);
    for (const timer of this.timers) clearInterval(timer);
    this.sessionExpiry.stop();
    this.driver.stop();
    // Nothing applies any more: a restart then replays no log into the producer tables.
    await this.producerCheckpoints.saveAll(this.local.byGroup.values());
    const closing = new BrokerError(
      'NO_LEADER',
      `node ${this.nodeId} is shutting down; a write it had not answered may or may not have ` +
        'committed: a retry with the same producer sequence is safe; retry on another node',
    );
    const partitionsClosed = this.local.close(closing);
    this.metadataGroup.close(closing);
    this.changed.emit();
    await partitionsClosed;
    await this.retention.idle();
    await this.memoryRetention.idle();
    await this.options.store.close();
    await this.leadership.close();
  }

  /**
   * Hands the leadership of every group this node leads to its most caught-up live voter (the
   * core sends it what it lacks, then tells it to campaign), and waits until none is led here or
   * `deadlineMs` passes. Writes in flight then commit under the new leader and are answered here
   * as this replica applies them. The node keeps running: stop() comes after.
   */
  async handOffLeadership(deadlineMs: number): Promise<void> {
    this.handedOff = true;
    const groups: RaftGroup[] = [...this.partitions.values()].map((p) => p.group);
    const metadataGroup = this.metadataGroup.group;
    if (metadataGroup) groups.push(metadataGroup);
    await this.handOffs.handOffAll(groups, deadlineMs);
  }

  /** Asks this node's core, which leads the partition, to hand leadership to replica `to`. */
  transferLeadership(local: LocalPartition, to: number): void {
    this.handOffs.transfer(local.group, to);
  }

  /** The transport lost messages to `nodeId`: stop streaming to it until it answers again. */
  reportUnreachable(nodeId: number): void {
    for (const local of this.partitions.values()) {
      if (local.group.isLeader) local.group.raw.reportUnreachable(nodeId);
    }
    const metadataGroup = this.metadataGroup.group;
    if (metadataGroup?.isLeader) metadataGroup.raw.reportUnreachable(nodeId);
  }

  // ---- the cluster -------------------------------------------------------------------------

  isPeerAlive(nodeId: number): boolean {
    return nodeId === this.nodeId || this.options.transport.isPeerAlive(nodeId);
  }

  /** Replicas of `replicas` this node can reach now: itself, and peers with a live link. */
  reachableReplicas(replicas: readonly number[]): number {
    let reachable = 0;
    for (const id of replicas) if (this.isPeerAlive(id)) reachable++;
    return reachable;
  }

  isReady(): boolean {
    if (this.metadataLeader() === null || !this.local.allOpen()) return false;
    for (const local of this.partitions.values()) if (local.group.leaderId === 0) return false;
    return true;
  }

  receiveAnnouncements(statuses: PartitionStatus[]): void {
    this.leadership.receive(statuses);
  }

  partitionStatus(groupId: number): PartitionStatus | null {
    return this.leadership.status(groupId);
  }

  localPartition(groupId: number): LocalPartition | undefined {
    return this.partitions.get(groupId);
  }

  // ---- metadata ----------------------------------------------------------------------------

  findTopic(name: string): TopicMeta | undefined {
    return this.metadata.topics.get(name);
  }

  topic(name: string): TopicMeta {
    return this.metadata.topic(name);
  }

  topics(): TopicMeta[] {
    return [...this.metadata.topics.values()];
  }

  partition(topic: string, partition: number): PartitionPlacement {
    return this.metadata.partition(topic, partition);
  }

  metadataLeader(): number | null {
    return this.metadataGroup.leader();
  }

  /** The metadata group's term as this node knows it (0 before it opened). */
  metadataTerm(): number {
    return this.metadataGroup.term();
  }

  isMetadataLeader(): boolean {
    return this.metadataGroup.isLeader();
  }

  /** Proposes a metadata command on this node, which must lead the metadata group. */
  proposeMetadata(command: MetadataCommand, timeoutMs: number): Promise<MetadataResult> {
    return this.metadataGroup.propose(command, timeoutMs);
  }

  /**
   * Read-your-writes for metadata on a node that may lag: confirms with the metadata leader
   * (ReadIndex) and waits until this node has applied that far. Used before answering
   * UNKNOWN_TOPIC for a topic another node may just have created.
   */
  syncMetadata(timeoutMs: number): Promise<void> {
    return this.metadataGroup.sync(timeoutMs);
  }

  async waitForLeaders(topic: string, timeoutMs: number): Promise<boolean> {
    const led = () => {
      const meta = this.metadata.topics.get(topic);
      return meta?.partitions.every((p) => (this.partitionStatus(p.groupId)?.leader ?? 0) !== 0);
    };
    await waitUntil({
      done: () => led() !== false, // a topic gone (undefined) ends the wait too
      subscribe: (listener) => this.changed.subscribe(listener),
      deadlineMs: Date.now() + timeoutMs,
    });
    return led() === true;
  }

  groupOffsets(group: string, topic?: string): CommittedOffset[] {
    return this.metadata.offsetsOf(group, topic);
  }

  groups(): GroupSummary[] {
    return this.metadata.groupSummaries();
  }

  groupMembers(group: string): GroupDescription | null {
    return this.metadata.memberships.describe(group);
  }

  // ---- produce and reads -------------------------------------------------------------------

  leadsPartition(groupId: number): boolean {
    return this.partitions.get(groupId)?.group.isLeader ?? false;
  }

  hasReplica(groupId: number): boolean {
    return this.partitions.has(groupId);
  }

  /** Round-robin partition choice for keyless records, one cursor per topic. */
  nextRoundRobin(topic: string, partitions: number): number {
    let cursor = this.roundRobin.get(topic);
    if (!cursor) {
      cursor = new RoundRobin();
      this.roundRobin.set(topic, cursor);
    }
    return cursor.pick(partitions);
  }

  /** Proposes one entry on a group this node leads; maps the core's refusals to coded errors. */
  propose(group: RaftGroup, data: Uint8Array): number {
    return proposeEntry(this.driver, group, data);
  }

  produce(groupId: number, { records, producer, timeoutMs }: ProduceParams): Promise<ProduceResult> {
    return produceLocal(this, this.replica(groupId), records, producer, timeoutMs);
  }

  fetch(groupId: number, params: FetchParams, signal?: AbortSignal): Promise<FetchResult> {
    return this.fetchWith(groupId, params, readCommitted, signal);
  }

  fetchBatches(groupId: number, params: FetchParams, signal?: AbortSignal): Promise<FetchBatchesResult> {
    return this.fetchWith(groupId, params, readCommittedBatches, signal);
  }

  private fetchWith<R>(groupId: number, params: FetchParams, read: CommittedReader<R>, signal?: AbortSignal) {
    const local = this.replica(groupId);
    return fetchLocalWith(local, params, () => this.driver.markDirty(local.group), read, signal);
  }

  offsetForTime(groupId: number, timestampMs: number): Promise<OffsetForTimeResult> {
    return offsetForTimeLocal(this.replica(groupId), timestampMs);
  }

  tail(groupId: number, from: OffsetSpec): ReplicaTail {
    return openTail(this.replica(groupId), from);
  }

  async moveLeadership(groupId: number, target: number, timeoutMs: number): Promise<void> {
    const local = this.replica(groupId);
    if (!local.group.isLeader) {
      throw new BrokerError(
        'NO_LEADER',
        `node ${this.nodeId} does not lead ${local.topic}/${local.partition}`,
      );
    }
    if (!this.isPeerAlive(target)) {
      throw new BrokerError(
        'NO_LEADER',
        `node ${target} is unreachable; leadership stays with ${this.nodeId}`,
      );
    }
    await this.handOffs.move(local, target, timeoutMs);
  }

  private replica(groupId: number): LocalPartition {
    const local = this.partitions.get(groupId);
    if (!local)
      throw new BrokerError('NO_LEADER', `node ${this.nodeId} holds no replica of group ${groupId}`);
    return local;
  }

  // ---- metrics -----------------------------------------------------------------------------

  metricsSnapshot(): MetricsSnapshot {
    return takeMetricsSnapshot({
      nodeId: this.nodeId,
      partitions: this.partitions.values(),
      backpressure: this.backpressure,
      disk: this.disk,
      memoryTopics: this.memoryTopics,
      driver: this.driver,
      storageIo: this.options.store.ioStats?.() ?? null,
      metadata: { term: this.metadataTerm(), leader: this.metadataLeader() ?? 0 },
    });
  }
}
