// The metadata group's state machine: topics, partition placement, consumer-group offsets and
// membership (src/broker/groups/).
// Commands are small JSON entries (metadata is not on the hot path); applying them is
// deterministic, so every node holds the same state at the same index.

import { assert } from '../raft/errors.js';
import { BrokerError } from './errors.js';
import { partitionKey } from './groups/assignor.js';
import { GroupMemberships, type SerializedGroup } from './groups/membership.js';
import type { GroupCommand, GroupFence, MemberAssignment } from './groups/protocol.js';

export type PersistenceMode = 'sync' | 'async' | 'memory';
export const PERSISTENCE_MODES: readonly PersistenceMode[] = ['sync', 'async', 'memory'];

export interface TopicConfig {
  persistence: PersistenceMode;
  /** Records older than this are deleted (whole segments); -1 keeps them forever. */
  retentionMs: number;
  /** The partition log is cut back to about this size (whole segments); -1 means no limit. */
  retentionBytes: number;
}

export interface PartitionPlacement {
  partition: number;
  /** The Raft group of this partition; unique for the life of the cluster, never reused. */
  groupId: number;
  /** Voting replicas; the first is the preferred leader. */
  replicas: number[];
}

export interface TopicMeta {
  name: string;
  config: TopicConfig;
  partitions: PartitionPlacement[];
}

export type MetadataCommand =
  | { type: 'createTopic'; name: string; partitions: number; replicationFactor: number; config: TopicConfig }
  | { type: 'deleteTopic'; name: string }
  | {
      type: 'commitOffsets';
      group: string;
      offsets: Array<{ topic: string; partition: number; offset: number }>;
      /** A fenced commit: only partitions this member owns (membership.ts, checkCommit). */
      member?: GroupFence;
    }
  | GroupCommand;

export type MetadataResult =
  | { ok: true; topic?: TopicMeta; member?: MemberAssignment }
  | { ok: false; error: BrokerError };

/** The metadata group's own id; partition groups count up from 1. */
export const METADATA_GROUP_ID = 0;
export const TOPIC_NAME_MAX_CHARS = 249;
const TOPIC_NAME_PATTERN = /^[a-zA-Z0-9._-]+$/;
export const PARTITIONS_MAX = 10_000;

export function validateTopicName(name: string): void {
  if (
    name.length < 1 ||
    name.length > TOPIC_NAME_MAX_CHARS ||
    !TOPIC_NAME_PATTERN.test(name) ||
    name === '.' ||
    name === '..'
  ) {
    throw new BrokerError(
      'INVALID_TOPIC_NAME',
      `topic name '${name}' is invalid: use 1 to ${TOPIC_NAME_MAX_CHARS} characters of [a-zA-Z0-9._-], not '.' or '..'`,
    );
  }
}

export function validateReplicationFactor(replicationFactor: number, nodeCount: number): void {
  if (!Number.isInteger(replicationFactor) || replicationFactor < 1 || replicationFactor > nodeCount) {
    throw new BrokerError(
      'INVALID_REPLICATION_FACTOR',
      `replication factor ${replicationFactor} is invalid: the cluster has ${nodeCount} node(s)`,
    );
  }
}

interface SerializedState {
  topics: TopicMeta[];
  nextGroupId: number;
  placementCursor: number;
  groups: Array<[string, Array<[string, number]>]>;
  /** Absent in snapshots from before membership. */
  memberships?: SerializedGroup[];
}

export class MetadataState {
  readonly topics = new Map<string, TopicMeta>();
  /** groupId → (topic, partition), for every live partition group. */
  readonly groupIndex = new Map<number, { topic: string; partition: number }>();
  /** Next partition group id to hand out. Invariant: greater than every id ever used. */
  nextGroupId = 1;
  /** Where the next topic's replica placement starts, so topics spread over the nodes. */
  placementCursor = 0;
  /** group → "topic/partition" → committed offset. */
  readonly groupOffsets = new Map<string, Map<string, number>>();
  /** Consumer-group members, generations and assignments. */
  readonly memberships = new GroupMemberships({
    partitionCount: (topic) => this.topics.get(topic)?.partitions.length,
    committedOffset: (group, key) => this.groupOffsets.get(group)?.get(key),
  });

  /** The voting nodes, sorted: placement depends only on this and the commands. */
  constructor(private readonly nodeIds: readonly number[]) {
    assert(nodeIds.length > 0, 'metadata: no nodes');
    this.nodeIds = [...nodeIds].sort((a, b) => a - b);
  }

  apply(command: MetadataCommand): MetadataResult {
    try {
      switch (command.type) {
        case 'createTopic':
          return { ok: true, topic: this.createTopic(command) };
        case 'deleteTopic':
          this.deleteTopic(command.name);
          return { ok: true };
        case 'commitOffsets':
          this.commitOffsets(command.group, command.offsets, command.member);
          return { ok: true };
        case 'joinGroup':
        case 'heartbeatGroup':
        case 'leaveGroup':
        case 'expireMembers': {
          const member = this.memberships.apply(command);
          return member ? { ok: true, member } : { ok: true };
        }
      }
    } catch (error) {
      if (error instanceof BrokerError) return { ok: false, error };
      throw error;
    }
  }

  private createTopic(command: Extract<MetadataCommand, { type: 'createTopic' }>): TopicMeta {
    validateTopicName(command.name);
    validateReplicationFactor(command.replicationFactor, this.nodeIds.length);
    if (this.topics.has(command.name)) {
      throw new BrokerError('TOPIC_EXISTS', `topic '${command.name}' already exists`);
    }
    assert(command.partitions >= 1 && command.partitions <= PARTITIONS_MAX, 'createTopic: partition count');
    const n = this.nodeIds.length;
    const partitions: PartitionPlacement[] = [];
    for (let p = 0; p < command.partitions; p++) {
      // Round-robin: partition p starts one node further than p-1, so preferred leaders
      // (replicas[0]) are spread evenly over the nodes.
      const start = (this.placementCursor + p) % n;
      const replicas: number[] = [];
      for (let k = 0; k < command.replicationFactor; k++) replicas.push(this.nodeIds[(start + k) % n]!);
      const groupId = this.nextGroupId++;
      partitions.push({ partition: p, groupId, replicas });
      this.groupIndex.set(groupId, { topic: command.name, partition: p });
    }
    this.placementCursor = (this.placementCursor + command.partitions) % n;
    const topic: TopicMeta = { name: command.name, config: { ...command.config }, partitions };
    this.topics.set(command.name, topic);
    this.memberships.topicChanged(command.name);
    return topic;
  }

  private deleteTopic(name: string): void {
    const topic = this.topics.get(name);
    if (!topic) throw new BrokerError('UNKNOWN_TOPIC', `topic '${name}' does not exist`);
    for (const p of topic.partitions) this.groupIndex.delete(p.groupId);
    this.topics.delete(name);
    const prefix = `${name}/`;
    for (const offsets of this.groupOffsets.values()) {
      for (const key of offsets.keys()) if (key.startsWith(prefix)) offsets.delete(key);
    }
    this.memberships.topicChanged(name);
  }

  private commitOffsets(
    group: string,
    offsets: Array<{ topic: string; partition: number; offset: number }>,
    member: GroupFence | undefined,
  ): void {
    for (const { topic, partition } of offsets) this.partition(topic, partition);
    if (member) {
      const keys = offsets.map(({ topic, partition }) => partitionKey(topic, partition));
      this.memberships.checkCommit(group, member, keys);
    }
    let map = this.groupOffsets.get(group);
    if (!map) {
      map = new Map();
      this.groupOffsets.set(group, map);
    }
    for (const { topic, partition, offset } of offsets) map.set(`${topic}/${partition}`, offset);
  }

  /** The placement of one partition; throws UNKNOWN_TOPIC / UNKNOWN_PARTITION. */
  partition(topicName: string, partition: number): PartitionPlacement {
    const topic = this.topics.get(topicName);
    if (!topic) throw new BrokerError('UNKNOWN_TOPIC', `topic '${topicName}' does not exist`);
    const placement = topic.partitions[partition];
    if (!Number.isInteger(partition) || !placement) {
      throw new BrokerError(
        'UNKNOWN_PARTITION',
        `topic '${topicName}' has no partition ${partition} (it has ${topic.partitions.length}: 0..${topic.partitions.length - 1})`,
      );
    }
    return placement;
  }

  topic(name: string): TopicMeta {
    const topic = this.topics.get(name);
    if (!topic) throw new BrokerError('UNKNOWN_TOPIC', `topic '${name}' does not exist`);
    return topic;
  }

  offsetsOf(group: string, topic?: string): Array<{ topic: string; partition: number; offset: number }> {
    const map = this.groupOffsets.get(group);
    if (!map) return [];
    const out: Array<{ topic: string; partition: number; offset: number }> = [];
    for (const [key, offset] of map) {
      const slash = key.lastIndexOf('/');
      const topicName = key.slice(0, slash);
      if (topic !== undefined && topicName !== topic) continue;
      out.push({ topic: topicName, partition: Number(key.slice(slash + 1)), offset });
    }
    out.sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
    return out;
  }

  /** Every group with members or committed offsets, by name, with its member count and generation. */
  groupSummaries(): Array<{ group: string; members: number; generation: number }> {
    const withMembers = this.memberships.list();
    const names = new Set(withMembers.keys());
    // A group whose offsets were all of deleted topics has none left: not listed.
    for (const [group, offsets] of this.groupOffsets) if (offsets.size > 0) names.add(group);
    return [...names].sort().map((group) => ({
      group,
      members: withMembers.get(group)?.members ?? 0,
      generation: withMembers.get(group)?.generation ?? 0,
    }));
  }

  serialize(): Uint8Array {
    const state: SerializedState = {
      topics: [...this.topics.values()],
      nextGroupId: this.nextGroupId,
      placementCursor: this.placementCursor,
      groups: [...this.groupOffsets].map(([group, offsets]) => [group, [...offsets]]),
      memberships: this.memberships.serialize(),
    };
    return new TextEncoder().encode(JSON.stringify(state));
  }

  restore(data: Uint8Array): void {
    this.topics.clear();
    this.groupIndex.clear();
    this.groupOffsets.clear();
    this.memberships.restore([]);
    if (data.length === 0) return;
    const state = JSON.parse(new TextDecoder().decode(data)) as SerializedState;
    for (const topic of state.topics) {
      this.topics.set(topic.name, topic);
      for (const p of topic.partitions)
        this.groupIndex.set(p.groupId, { topic: topic.name, partition: p.partition });
    }
    this.nextGroupId = state.nextGroupId;
    this.placementCursor = state.placementCursor;
    for (const [group, offsets] of state.groups) this.groupOffsets.set(group, new Map(offsets));
    this.memberships.restore(state.memberships ?? []);
  }
}

export function encodeCommand(command: MetadataCommand): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(command));
}

export function decodeCommand(data: Uint8Array): MetadataCommand {
  return JSON.parse(new TextDecoder().decode(data)) as MetadataCommand;
}
