// One broker node: the metadata group, the partition groups placed here, and what the API asks
// of them (admin, produce, fetch). Forwarding to other nodes is the API layer's job; this class
// answers for what is local and says where the rest lives.

import { createHash, randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import {
  type InitialState,
  isRaftError,
  type RaftConfig,
  RawNode,
  SeededRandom,
  type Snapshot,
  StateRole,
} from '../raft/index.js';
import { type IoExecutorStats, isStorageError } from '../storage/index.js';
import { PRODUCE_WAITING_BYTES_MAX_DEFAULT, ProduceBackpressure } from './backpressure.js';
import type { DiskGuard } from './disk-guard.js';
import { DiskPressure } from './disk-pressure.js';
import { Driver, type MessageSink } from './driver.js';
import { BrokerError } from './errors.js';
import { MetadataGroupMachine, PartitionGroupMachine } from './group-machines.js';
import type { GroupStore, NodeStore } from './group-store.js';
import { SessionExpiry } from './groups/session-expiry.js';
import { LeadershipGossip, LeadershipTable, type PartitionStatus } from './leadership.js';
import { defaultMemoryTopicsBytesMax, MemoryTopicsBound } from './memory-bound.js';
import {
  encodeCommand,
  METADATA_GROUP_ID,
  type MetadataCommand,
  type MetadataResult,
  MetadataState,
  type PartitionPlacement,
  type PersistenceMode,
  type TopicMeta,
} from './metadata-state.js';
import {
  decodePartitionSnapshot,
  entryOffsets,
  PartitionMachine,
  rebuildProducerTable,
} from './partition-machine.js';
import { RoundRobin } from './partitioner.js';
import { DEFAULT_PRODUCER_LIMITS, type ProducerLimits } from './producer-state.js';
import { type GroupMachine, type GroupObserver, RaftGroup } from './raft-group.js';
import { RetentionRunner } from './retention.js';

/** Storage's counts of where its I/O tasks ran, for metrics (the api layer sees only the broker). */
export type StorageIoStats = IoExecutorStats;

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

/** What a node reports for metrics (src/api/metrics.ts); keeps prom-client out of the broker. */
export interface NodeObserver extends GroupObserver {
  /** A log write task spent `durationMs` in fdatasync. */
  fsync(durationMs: number): void;
}

export interface Announcer {
  announce(statuses: PartitionStatus[]): void;
  close(): Promise<void>;
}

export interface LocalPartition {
  topic: string;
  partition: number;
  placement: PartitionPlacement;
  group: RaftGroup;
  machine: PartitionMachine;
}

/** A stable id for the cluster: the same for every node given the same voters. */
export function clusterIdOf(peers: Map<number, string>): string {
  const ids = [...peers.keys()].sort((a, b) => a - b).join(',');
  return `rl-${createHash('sha256').update(ids).digest('hex').slice(0, 16)}`;
}

const CAMPAIGN_RETRY_MS = 300;
const CAMPAIGN_ATTEMPTS_MAX = 10;
/** How long the metadata leader waits for a session-expiry command to apply. */
const SESSION_EXPIRY_TIMEOUT_MS = 10_000;

export class BrokerNode {
  readonly nodeId: number;
  readonly peers: Map<number, string>;
  readonly clusterId: string;
  readonly timing: BrokerTiming;
  readonly metadata: MetadataState;
  readonly driver: Driver;
  readonly leadership = new LeadershipTable();
  readonly partitions = new Map<number, LocalPartition>();
  readonly logger: Logger;
  readonly defaultPersistence: PersistenceMode;
  /** Produce requests waiting for room in a full uncommitted budget (bounded per node). */
  readonly backpressure: ProduceBackpressure;
  /** The bound on memory-topic data held here, and its refusals. */
  readonly memoryTopics: MemoryTopicsBound;
  /** The disk's floor and failed logs: what produce and replication may write. */
  readonly disk: DiskPressure;
  private readonly produceLimits: ProduceLimits;
  private metadataGroup: RaftGroup | null = null;
  private metadataMachine: MetadataGroupMachine | null = null;
  private readonly opening = new Map<number, Promise<void>>();
  private readonly gossip: Announcer;
  private readonly changedLeadership = new Set<number>();
  private readonly roundRobin = new Map<string, RoundRobin>();
  private gossipTimer: NodeJS.Timeout | null = null;
  private retentionTimer: NodeJS.Timeout | null = null;
  private memoryRetentionTimer: NodeJS.Timeout | null = null;
  /** Retention of disk topics, and of memory topics: separate, so that neither waits on the other. */
  private readonly retention: RetentionRunner;
  private readonly memoryRetention: RetentionRunner;
  /** Expires consumer-group members whose sessions ran out, while this node leads metadata. */
  private readonly sessionExpiry: SessionExpiry;
  private announceScheduled = false;
  private snapshotInFlight = false;
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
    this.produceLimits = { ...DEFAULT_PRODUCE_LIMITS, ...options.produceLimits };
    this.backpressure = new ProduceBackpressure(this.produceLimits.waitingBytesMax);
    this.memoryTopics = new MemoryTopicsBound(options.memoryTopicsBytesMax ?? defaultMemoryTopicsBytesMax(), {
      heldBytes: () => options.store.memoryModeBytes?.() ?? 0,
      turn: () => this.driver.turns,
    });
    this.disk = new DiskPressure(
      {
        diskGroups: () => this.diskGroups(),
        group: (groupId) =>
          groupId === METADATA_GROUP_ID
            ? (this.metadataGroup ?? undefined)
            : this.partitions.get(groupId)?.group,
        handOff: (group) => this.handOff(group),
        logger: options.logger,
      },
      options.diskGuard ?? null,
    );
    options.store.onGroupFailed?.((groupId, error) => this.disk.groupFailed(groupId, error));
    this.metadata = new MetadataState([...options.peers.keys()]);
    this.driver = new Driver({
      store: options.store,
      sink: options.transport,
      tickMs: this.timing.tickMs,
      logger: options.logger,
    });
    this.gossip = options.announcer ?? new LeadershipGossip(options.nodeId, options.peers, options.logger);
    this.retention = new RetentionRunner(options.logger);
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
    if (this.metadataGroup) this.metadataGroup.observer = observer;
    for (const local of this.partitions.values()) local.group.observer = observer;
    this.options.store.observeFsync?.((durationMs) => observer.fsync(durationMs));
  }

  private raftConfig(): Partial<RaftConfig> {
    return {
      electionTicks: this.timing.electionTicks,
      heartbeatTicks: this.timing.heartbeatTicks,
      maxUncommittedBytes: this.produceLimits.uncommittedBytesMax,
    };
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  async start(): Promise<void> {
    await this.openMetadataGroup();
    this.driver.start();
    this.gossipTimer = setInterval(() => this.announceAll(), this.timing.gossipIntervalMs);
    this.gossipTimer.unref();
    this.retentionTimer = setInterval(
      () => this.runRetention(this.retention, false),
      this.timing.retentionCheckMs,
    );
    this.retentionTimer.unref();
    this.memoryRetentionTimer = setInterval(() => {
      this.runRetention(this.memoryRetention, true);
      this.memoryTopics.warnIfOver(this.logger, Date.now());
    }, this.timing.memoryRetentionCheckMs);
    this.memoryRetentionTimer.unref();
    this.sessionExpiry.start();
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
    if (this.gossipTimer) clearInterval(this.gossipTimer);
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    if (this.memoryRetentionTimer) clearInterval(this.memoryRetentionTimer);
    this.sessionExpiry.stop();
    this.driver.stop();
    const closing = new BrokerError(
      'NO_LEADER',
      `node ${this.nodeId} is shutting down; a write it had not answered may or may not have ` +
        'committed: a retry with the same producer sequence is safe; retry on another node',
    );
    for (const local of this.partitions.values()) {
      local.group.close(closing);
      local.machine.close();
    }
    this.metadataGroup?.close(closing);
    await Promise.allSettled(this.opening.values());
    await this.retention.idle();
    await this.memoryRetention.idle();
    await this.options.store.close();
    await this.gossip.close();
  }

  /**
   * Hands the leadership of every group this node leads to its most caught-up live voter (the
   * core sends it what it lacks, then tells it to campaign), and waits until none is led here or
   * `deadlineMs` passes. Writes in flight then commit under the new leader and are answered here
   * as this replica applies them. The node keeps running: stop() comes after.
   */
  async handOffLeadership(deadlineMs: number): Promise<void> {
    this.handedOff = true;
    const groups = [...this.partitions.values()].map((p) => p.group);
    if (this.metadataGroup) groups.push(this.metadataGroup);
    const led = groups.filter((g) => g.isLeader);
    for (const group of led) this.handOff(group);
    const deadline = Date.now() + deadlineMs;
    while (led.some((g) => g.raw.role === StateRole.Leader) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Transfers one group's leadership to its best peer (see handOffTarget); false if none. */
  handOff(group: RaftGroup): boolean {
    const target = this.handOffTarget(group);
    if (target === null) return false;
    group.raw.transferLeader(target);
    this.driver.markDirty(group);
    return true;
  }

  private *diskGroups(): Iterable<RaftGroup> {
    for (const local of this.partitions.values()) {
      if (local.group.store.mode !== 'memory') yield local.group;
    }
  }

  /** The live voter with the highest match (under load none may be exactly caught up). */
  private handOffTarget(group: RaftGroup): number | null {
    const status = group.raw.status();
    if (!status.progress) return null;
    let best: number | null = null;
    let bestMatch = -1;
    for (const [id, pr] of status.progress) {
      if (id === this.nodeId || pr.isLearner || pr.recovering) continue;
      if (!this.options.transport.isPeerAlive(id) || pr.match <= bestMatch) continue;
      best = id;
      bestMatch = pr.match;
    }
    return best;
  }

  // ---- metadata group ----------------------------------------------------------------------

  private async openMetadataGroup(): Promise<void> {
    const store = await this.openGroupStore(METADATA_GROUP_ID, 'sync');
    const initial = store.initialState();
    const snapshot = store.snapshot();
    if (snapshot.metadata.index > 0) this.metadata.restore(snapshot.data);
    const voters = [...this.peers.keys()].sort((a, b) => a - b);
    const initialState: InitialState = {
      hardState: initial.hardState,
      confState: initial.confState.voters.length > 0 ? initial.confState : { voters, learners: [] },
    };
    const raw = new RawNode({
      id: this.nodeId,
      storage: store,
      random: new SeededRandom(randomInt(2 ** 31)),
      initialState,
      applied: snapshot.metadata.index,
      config: this.raftConfig(),
      // Rebuilt after corruption (openGroupStore): no vote, no ack counted, until caught up.
      recovering: store.mayHaveLostEntries,
      nowTicks: this.driver.nowTicks(),
    });
    this.metadataMachine = new MetadataGroupMachine(this.metadata, snapshot.metadata.index, () =>
      this.afterMetadataChange(),
    );
    const group = this.newGroup(METADATA_GROUP_ID, raw, store, this.metadataMachine);
    group.observer = this.observer;
    this.metadataGroup = group;
    store.onEntriesAvailable(() => {
      raw.notifyEntriesAvailable();
      this.driver.markDirty(group);
    });
    this.driver.add(group);
    // A lone node elects itself at once instead of waiting out an election timeout.
    if (voters.length === 1) raw.campaign();
  }

  metadataLeader(): number | null {
    const leader = this.metadataGroup?.leaderId ?? 0;
    return leader === 0 ? null : leader;
  }

  /** Where the disk's I/O tasks ran (null without a disk store). */
  storageIoStats(): StorageIoStats | null {
    return this.options.store.ioStats?.() ?? null;
  }

  /** The metadata group's term as this node knows it (0 before it opened). */
  metadataTerm(): number {
    return this.metadataGroup?.term ?? 0;
  }

  isMetadataLeader(): boolean {
    return this.metadataGroup?.isLeader ?? false;
  }

  /** Proposes a metadata command on this node, which must lead the metadata group. */
  async proposeMetadata(command: MetadataCommand, timeoutMs: number): Promise<MetadataResult> {
    const group = this.metadataGroup;
    if (!group?.isLeader) {
      throw new BrokerError('NO_LEADER', 'this node does not lead the metadata group');
    }
    const index = this.propose(group, encodeCommand(command));
    const result = (await group.waitForProposal(index, group.raw.term, timeoutMs)) as MetadataResult | null;
    if (!result) throw new BrokerError('INTERNAL', 'metadata command applied without a result');
    return result;
  }

  private afterMetadataChange(): void {
    this.reconcileGroups();
    this.maybeSnapshotMetadata();
  }

  /** Opens groups placed here that are not open yet, and drops groups whose topic is gone. */
  private reconcileGroups(): void {
    if (this.stopping) return;
    for (const topic of this.metadata.topics.values()) {
      for (const placement of topic.partitions) {
        if (!placement.replicas.includes(this.nodeId)) continue;
        if (this.partitions.has(placement.groupId) || this.opening.has(placement.groupId)) continue;
        const opening = this.openPartition(topic, placement)
          .catch((error: Error) =>
            this.logger.error({ group: placement.groupId, err: error.message }, 'could not open partition'),
          )
          .finally(() => this.opening.delete(placement.groupId));
        this.opening.set(placement.groupId, opening);
      }
    }
    for (const groupId of [...this.partitions.keys()]) {
      if (!this.metadata.groupIndex.has(groupId)) void this.dropPartition(groupId);
    }
  }

  private maybeSnapshotMetadata(): void {
    const group = this.metadataGroup;
    const machine = this.metadataMachine;
    if (!group || !machine || this.snapshotInFlight) return;
    const applied = machine.appliedIndex;
    if (applied - group.store.firstIndex() < this.timing.metadataSnapshotEveryEntries) return;
    const snapshot: Snapshot = {
      metadata: { index: applied, term: group.store.term(applied), confState: group.raw.status().confState },
      data: this.metadata.serialize(),
    };
    this.snapshotInFlight = true;
    group.store
      .truncatePrefix(applied, snapshot)
      .catch((error: Error) => this.logger.error({ err: error.message }, 'metadata snapshot failed'))
      .finally(() => {
        this.snapshotInFlight = false;
      });
  }

  // ---- partition groups --------------------------------------------------------------------

  /**
   * Opens a group's log. A log that refuses to open as corrupt (a bad frame before its tail) does
   * not take the node down: its files are set aside and the replica restarts empty at its
   * snapshot, flagged as having lost entries, so its core starts recovering (no vote, no ack
   * counted) and it catches up from the leader. The corrupt data is never read again.
   */
  private async openGroupStore(groupId: number, mode: PersistenceMode): Promise<GroupStore> {
    const nodeStore = this.options.store;
    try {
      return await nodeStore.openGroup(groupId, mode);
    } catch (error) {
      if (!isStorageError(error, 'CorruptLog') || !nodeStore.discardGroup) throw error;
      const movedTo = await nodeStore.discardGroup(groupId);
      this.logger.error(
        { group: groupId, file: error.file, offsetBytes: error.offsetBytes, movedTo, err: error.message },
        'corrupt log: set aside; rebuilding this replica from its peers',
      );
      return nodeStore.openGroup(groupId, mode);
    }
  }

  private async openPartition(topic: TopicMeta, placement: PartitionPlacement): Promise<void> {
    const store = await this.openGroupStore(placement.groupId, topic.config.persistence);
    if (this.stopping || !this.metadata.groupIndex.has(placement.groupId)) {
      await this.options.store.dropGroup(placement.groupId);
      return;
    }
    const local = await this.buildPartition(topic, placement, store);
    this.partitions.set(placement.groupId, local);
    store.onEntriesAvailable(() => {
      local.group.raw.notifyEntriesAvailable();
      this.driver.markDirty(local.group);
    });
    this.driver.add(local.group);
    if (placement.replicas[0] === this.nodeId && store.initialState().hardState.term === 0) {
      this.campaignUntilLed(local.group, CAMPAIGN_ATTEMPTS_MAX);
    }
  }

  private async buildPartition(
    topic: TopicMeta,
    placement: PartitionPlacement,
    store: GroupStore,
  ): Promise<LocalPartition> {
    const initial = store.initialState();
    const snapshot = store.snapshot();
    const recovering = store.mayHaveLostEntries;
    // Offsets are a function of the log, so a restart resumes at the stored commit index.
    const applied = Math.min(Math.max(initial.hardState.commit, snapshot.metadata.index), store.lastIndex());
    const snapshotData = decodePartitionSnapshot(snapshot.data);
    const logStartOffset = snapshotData.nextOffset;
    const atApplied = await store.offsetsAtOrBefore(applied);
    const highWatermark =
      atApplied && atApplied.index > snapshot.metadata.index
        ? atApplied.baseOffset + atApplied.recordCount
        : logStartOffset;
    const producerLimits = { ...DEFAULT_PRODUCER_LIMITS, ...this.options.producerLimits };
    const machine = new PartitionMachine({
      highWatermark,
      logStartOffset,
      appliedIndex: applied,
      producerLimits,
    });
    // The producer table is a function of the log too: the snapshot's, then the log replayed.
    await rebuildProducerTable(machine, store, { index: snapshot.metadata.index, data: snapshotData });
    // The uncommitted tail decides the next offset a leader assigns.
    if (store.lastIndex() > applied) {
      const tail = await store.readEntries(applied + 1, store.lastIndex() + 1, Number.MAX_SAFE_INTEGER);
      machine.noteAppendedEntries(tail);
    }
    const raw = new RawNode({
      id: this.nodeId,
      storage: store,
      random: new SeededRandom(randomInt(2 ** 31)),
      initialState: {
        hardState: initial.hardState,
        confState:
          initial.confState.voters.length > 0
            ? initial.confState
            : { voters: placement.replicas, learners: [] },
      },
      applied,
      config: this.raftConfig(),
      recovering,
      nowTicks: this.driver.nowTicks(),
    });
    const group = this.newGroup(placement.groupId, raw, store, new PartitionGroupMachine(machine));
    group.observer = this.observer;
    const local: LocalPartition = {
      topic: topic.name,
      partition: placement.partition,
      placement,
      group,
      machine,
    };
    return local;
  }

  private newGroup(groupId: number, raw: RawNode, store: GroupStore, machine: GroupMachine): RaftGroup {
    return new RaftGroup({
      groupId,
      raw,
      store,
      machine,
      logger: this.logger,
      onLeadership: (g) => this.onLeadershipChange(g),
      nowTicks: () => this.driver.nowTicks(),
      // The metadata log is small and must keep working under the disk floor; memory logs are
      // not on disk.
      admitsEntries:
        groupId === METADATA_GROUP_ID || store.mode === 'memory'
          ? undefined
          : (message) => this.disk.admitsEntries(message, store.mode),
    });
  }

  /** The preferred leader of a new group campaigns until a leader exists (peers may lag). */
  private campaignUntilLed(group: RaftGroup, attemptsLeft: number): void {
    if (group.closed || group.leaderId !== 0 || attemptsLeft === 0 || this.stopping) return;
    group.raw.campaign();
    this.driver.markDirty(group);
    setTimeout(() => this.campaignUntilLed(group, attemptsLeft - 1), CAMPAIGN_RETRY_MS).unref();
  }

  private async dropPartition(groupId: number): Promise<void> {
    const local = this.partitions.get(groupId);
    if (!local) return;
    this.partitions.delete(groupId);
    this.driver.remove(groupId);
    this.leadership.forget(groupId);
    local.group.close(new BrokerError('UNKNOWN_TOPIC', `topic '${local.topic}' was deleted`));
    local.machine.close();
    await this.options.store.dropGroup(groupId);
  }

  // ---- leadership --------------------------------------------------------------------------

  private onLeadershipChange(group: RaftGroup): void {
    if (group.groupId === METADATA_GROUP_ID) return;
    const status = this.localStatus(group.groupId);
    if (status) this.leadership.update(status);
    if (group.isLeader) {
      this.changedLeadership.add(group.groupId);
      this.scheduleAnnounce();
    }
  }

  private localStatus(groupId: number): PartitionStatus | null {
    const local = this.partitions.get(groupId);
    if (!local) return null;
    return {
      groupId,
      leader: local.group.leaderId,
      term: local.group.term,
      highWatermark: local.machine.highWatermark,
      logStartOffset: local.machine.logStartOffset,
    };
  }

  private scheduleAnnounce(): void {
    if (this.announceScheduled) return;
    this.announceScheduled = true;
    setImmediate(() => {
      this.announceScheduled = false;
      const statuses: PartitionStatus[] = [];
      for (const groupId of this.changedLeadership) {
        const status = this.localStatus(groupId);
        if (status && status.leader === this.nodeId) statuses.push(status);
      }
      this.changedLeadership.clear();
      this.gossip.announce(statuses);
    });
  }

  private announceAll(): void {
    const statuses: PartitionStatus[] = [];
    for (const local of this.partitions.values()) {
      if (!local.group.isLeader) continue;
      const status = this.localStatus(local.placement.groupId)!;
      this.leadership.update(status);
      statuses.push(status);
    }
    this.gossip.announce(statuses);
  }

  /** Announcements from a peer (the API's internal route calls this). */
  receiveAnnouncements(statuses: PartitionStatus[]): void {
    for (const status of statuses) {
      if (this.partitions.has(status.groupId)) continue; // our own core knows better
      this.leadership.update(status);
    }
  }

  /** The status of a partition as known here: local core first, then announcements. */
  partitionStatus(groupId: number): PartitionStatus | null {
    return this.localStatus(groupId) ?? this.leadership.get(groupId) ?? null;
  }

  // ---- proposals ---------------------------------------------------------------------------

  /** Proposes one entry on a group this node leads; maps the core's refusals to coded errors. */
  propose(group: RaftGroup, data: Uint8Array): number {
    if (!group.isLeader) throw new BrokerError('NO_LEADER', `this node does not lead group ${group.groupId}`);
    try {
      const index = group.raw.propose(data);
      this.driver.markDirty(group);
      return index;
    } catch (error) {
      if (isRaftError(error, 'NotLeader') || isRaftError(error, 'ProposalDropped')) {
        throw new BrokerError('NO_LEADER', error.message);
      }
      if (isRaftError(error, 'UncommittedBytesFull')) throw new BrokerError('THROTTLED', error.message);
      throw error;
    }
  }

  /**
   * Asks this node's core, which leads the partition, to hand leadership to replica `to`. The
   * core sends it what it lacks, then tells it to campaign; the caller watches for the outcome.
   */
  transferLeadership(local: LocalPartition, to: number): void {
    local.group.raw.transferLeader(to);
    this.driver.markDirty(local.group);
  }

  /** Describes which node answers for a partition. */
  localPartition(groupId: number): LocalPartition | undefined {
    return this.partitions.get(groupId);
  }

  /**
   * Read-your-writes for metadata on a node that may lag: confirms with the metadata leader
   * (ReadIndex) and waits until this node has applied that far. Used before answering
   * UNKNOWN_TOPIC for a topic another node may just have created.
   */
  async syncMetadata(timeoutMs: number): Promise<void> {
    const group = this.metadataGroup;
    const machine = this.metadataMachine;
    if (!group || !machine) throw new BrokerError('NO_LEADER', 'metadata is not open yet');
    const reading = group.readIndex(timeoutMs);
    this.driver.markDirty(group);
    const index = await reading;
    const deadline = Date.now() + timeoutMs;
    while (machine.appliedIndex < index) {
      if (Date.now() >= deadline) throw new BrokerError('NO_LEADER', 'metadata did not catch up in time');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
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

  /** Waits until every partition of a topic has a known leader (or the deadline passes). */
  async waitForLeaders(topic: string, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const meta = this.metadata.topics.get(topic);
      if (!meta) return false;
      if (meta.partitions.every((p) => (this.partitionStatus(p.groupId)?.leader ?? 0) !== 0)) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Whether this node serves: metadata has a leader and every local partition knows one. */
  isReady(): boolean {
    if (this.metadataLeader() === null) return false;
    for (const placement of this.metadata.topics.values()) {
      for (const p of placement.partitions) {
        if (p.replicas.includes(this.nodeId) && !this.partitions.has(p.groupId)) return false;
      }
    }
    for (const local of this.partitions.values()) if (local.group.leaderId === 0) return false;
    return true;
  }

  /** The transport lost messages to `nodeId`: stop streaming to it until it answers again. */
  reportUnreachable(nodeId: number): void {
    for (const local of this.partitions.values()) {
      if (local.group.isLeader) local.group.raw.reportUnreachable(nodeId);
    }
    if (this.metadataGroup?.isLeader) this.metadataGroup.raw.reportUnreachable(nodeId);
  }

  /** Replicas of `replicas` this node can reach now: itself, and peers with a live link. */
  reachableReplicas(replicas: readonly number[]): number {
    let reachable = 0;
    for (const id of replicas) if (this.isPeerAlive(id)) reachable++;
    return reachable;
  }

  isPeerAlive(nodeId: number): boolean {
    return nodeId === this.nodeId || this.options.transport.isPeerAlive(nodeId);
  }
}

export { entryOffsets };
