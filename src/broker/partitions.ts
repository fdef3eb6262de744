// The partition replicas open on this node and their lifecycle: opened when the metadata places
// one here (its state machine rebuilt from the log), driven, and dropped when its topic is deleted.

import type { Logger } from 'pino';
import { isStorageError, type StorageError } from '../storage/index.js';
import type { Driver } from './driver.js';
import { BrokerError } from './errors.js';
import type { GroupFactory } from './group-factory.js';
import { PartitionGroupMachine } from './group-machines.js';
import type { EntryOffsets, GroupStore, NodeStore } from './group-store.js';
import type { MetadataState, PartitionPlacement, TopicMeta } from './metadata-state.js';
import { decodePartitionSnapshot, PartitionMachine, rebuildProducerTable } from './partition-machine.js';
import { withProducerCheckpoint } from './producer-checkpoint.js';
import type { ProducerLimits } from './producer-state.js';
import type { RaftGroup } from './raft-group.js';

export interface LocalPartition {
  topic: string;
  partition: number;
  placement: PartitionPlacement;
  /** Applying an entry answers its proposer with the offsets the entry took. */
  group: RaftGroup<EntryOffsets | null>;
  machine: PartitionMachine;
  /** Log entries replayed into the producer table when this replica opened. */
  replayedAtOpen: number;
}

export interface LocalPartitionsOptions {
  nodeId: number;
  metadata: MetadataState;
  factory: GroupFactory;
  driver: Driver;
  store: NodeStore;
  producerLimits: ProducerLimits;
  logger: Logger;
  /** The node is stopping: open nothing more. */
  isStopping: () => boolean;
  /** A replica was dropped (its topic deleted) and its group closed. */
  onDropped: (groupId: number) => void;
}

/** A new group's preferred leader campaigns this often until some leader exists, at most this often. */
const CAMPAIGN_RETRY_MS = 300;
const CAMPAIGN_ATTEMPTS_MAX = 10;

export class LocalPartitions {
  /** The replicas open here, by group id. */
  readonly byGroup = new Map<number, LocalPartition>();
  private readonly opening = new Map<number, Promise<void>>();

  constructor(private readonly options: LocalPartitionsOptions) {}

  /** Opens groups placed here that are not open yet, and drops groups whose topic is gone. */
  reconcile(): void {
    const { metadata, nodeId, logger } = this.options;
    if (this.options.isStopping()) return;
    for (const topic of metadata.topics.values()) {
      for (const placement of topic.partitions) {
        if (!placement.replicas.includes(nodeId)) continue;
        if (this.byGroup.has(placement.groupId) || this.opening.has(placement.groupId)) continue;
        const opening = this.open(topic, placement)
          .catch((error: Error) =>
            logger.error({ group: placement.groupId, err: error.message }, 'could not open partition'),
          )
          .finally(() => this.opening.delete(placement.groupId));
        this.opening.set(placement.groupId, opening);
      }
    }
    for (const groupId of [...this.byGroup.keys()]) {
      if (!metadata.groupIndex.has(groupId)) void this.drop(groupId);
    }
  }

  /** Whether every partition the metadata places here is open. */
  allOpen(): boolean {
    for (const topic of this.options.metadata.topics.values()) {
      for (const p of topic.partitions) {
        if (p.replicas.includes(this.options.nodeId) && !this.byGroup.has(p.groupId)) return false;
      }
    }
    return true;
  }

  *diskGroups(): Iterable<RaftGroup> {
    for (const local of this.byGroup.values()) {
      if (local.group.store.mode !== 'memory') yield local.group;
    }
  }

  /** Closes every replica: whoever still waits on one gets `error`. Then waits for opens under way. */
  async close(error: BrokerError): Promise<void> {
    for (const local of this.byGroup.values()) {
      local.group.close(error);
      local.machine.close();
    }
    await Promise.allSettled(this.opening.values());
  }

  private async open(topic: TopicMeta, placement: PartitionPlacement): Promise<void> {
    const { factory, store: nodeStore, metadata, nodeId } = this.options;
    const store = await factory.openStore(placement.groupId, topic.config.persistence);
    if (this.options.isStopping() || !metadata.groupIndex.has(placement.groupId)) {
      await nodeStore.dropGroup(placement.groupId);
      return;
    }
    const local = await this.buildOrRebuild(topic, placement, store);
    this.byGroup.set(placement.groupId, local);
    factory.drive(local.group);
    // A new group's preferred leader starts its first election at once; so does the only voter
    // of a group at every open (nobody else can lead it: waiting an election timeout is waste).
    const onlyVoter = placement.replicas.length === 1 && placement.replicas[0] === nodeId;
    if (onlyVoter || (placement.replicas[0] === nodeId && store.initialState().hardState.term === 0)) {
      this.campaignUntilLed(local.group, CAMPAIGN_ATTEMPTS_MAX);
    }
  }

  /**
   * A replica's log turned out corrupt after it opened (storage's background scrub of the files a
   * restart did not read): closes the replica, sets its log aside and opens it again empty, as
   * for corruption found at open. A replica still opening is rebuilt once it is open.
   */
  async rebuild(groupId: number, error: StorageError): Promise<void> {
    await this.opening.get(groupId);
    const local = this.byGroup.get(groupId);
    if (!local || !this.options.factory.canRebuild || this.options.isStopping()) return;
    this.byGroup.delete(groupId);
    this.options.driver.remove(groupId);
    local.group.close(new BrokerError('NO_LEADER', 'this replica is being rebuilt'));
    local.machine.close();
    this.options.onDropped(groupId);
    await this.options.factory.setAside(groupId, error);
    this.reconcile();
  }

  /**
   * Builds the replica, which reads its log. Files a restart took from their recovery point are
   * read here for the first time, so this read may be the first to meet a bad frame: handled as
   * corruption found at open.
   */
  private async buildOrRebuild(
    topic: TopicMeta,
    placement: PartitionPlacement,
    store: GroupStore,
  ): Promise<LocalPartition> {
    const { factory } = this.options;
    try {
      return await this.build(topic, placement, store);
    } catch (error) {
      if (!isStorageError(error, 'CorruptRead') || !factory.canRebuild) throw error;
      await factory.setAside(placement.groupId, error);
      const fresh = await factory.openStore(placement.groupId, topic.config.persistence);
      return this.build(topic, placement, fresh);
    }
  }

  private async build(
    topic: TopicMeta,
    placement: PartitionPlacement,
    store: GroupStore,
  ): Promise<LocalPartition> {
    const initial = store.initialState();
    const snapshot = store.snapshot();
    // Offsets are a function of the log, so a restart resumes at the stored commit index.
    const applied = Math.min(Math.max(initial.hardState.commit, snapshot.metadata.index), store.lastIndex());
    const snapshotData = decodePartitionSnapshot(snapshot.data);
    const logStartOffset = snapshotData.nextOffset;
    const atApplied = await store.offsetsAtOrBefore(applied);
    const highWatermark =
      atApplied && atApplied.index > snapshot.metadata.index
        ? atApplied.baseOffset + atApplied.recordCount
        : logStartOffset;
    const machine = new PartitionMachine({
      highWatermark,
      logStartOffset,
      appliedIndex: applied,
      producerLimits: this.options.producerLimits,
    });
    // The producer table is a function of the log too: the snapshot's (or a newer checkpoint's),
    // then the log after it replayed.
    const tableFrom = withProducerCheckpoint(store, snapshot.metadata.index, snapshotData, applied);
    const replayedAtOpen = await rebuildProducerTable(machine, store, {
      index: snapshot.metadata.index,
      data: tableFrom,
    });
    // The uncommitted tail decides the next offset a leader assigns.
    if (store.lastIndex() > applied) {
      const tail = await store.readEntries(applied + 1, store.lastIndex() + 1, Number.MAX_SAFE_INTEGER);
      machine.noteAppendedEntries(tail);
    }
    const raw = this.options.factory.core(store, { voters: placement.replicas, applied });
    const group = this.options.factory.group(
      placement.groupId,
      raw,
      store,
      new PartitionGroupMachine(machine),
    );
    return { topic: topic.name, partition: placement.partition, placement, group, machine, replayedAtOpen };
  }

  /** The preferred leader of a new group campaigns until a leader exists (peers may lag). */
  private campaignUntilLed(group: RaftGroup, attemptsLeft: number): void {
    if (group.closed || group.leaderId !== 0 || attemptsLeft === 0 || this.options.isStopping()) return;
    group.raw.campaign();
    this.options.driver.markDirty(group);
    setTimeout(() => this.campaignUntilLed(group, attemptsLeft - 1), CAMPAIGN_RETRY_MS).unref();
  }

  private async drop(groupId: number): Promise<void> {
    const local = this.byGroup.get(groupId);
    if (!local) return;
    this.byGroup.delete(groupId);
    this.options.driver.remove(groupId);
    local.group.close(new BrokerError('UNKNOWN_TOPIC', `topic '${local.topic}' was deleted`));
    local.machine.close();
    this.options.onDropped(groupId);
    await this.options.store.dropGroup(groupId);
  }
}
