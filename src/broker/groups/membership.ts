// Consumer-group membership as a pure, deterministic state machine, held by the metadata group:
// members, generations, each member's target (the assignor's choice) and what it holds, with
// revoke-before-assign. It reads topics and committed offsets through a narrow interface and has
// no clock: every time in it came in a command, proposed by the metadata leader.
//
// The protocol (docs/api.md, "Consumer groups with membership"):
// - Join, leave, expiry and a change of a subscribed topic start a rebalance: the generation
//   goes up by one and the assignor computes a new target. A partition a member holds but is no
//   longer its target becomes *revoking*, stamped with that generation R; it vanishes from the
//   member's assignment (what responses show) at once, but the member still holds it.
// - A member lets go of a revoking partition with a heartbeat carrying a generation >= R: that
//   generation came in a response at R or later, and every such response left the partition out,
//   so the member has seen the revocation (a lost response is asked again, never skipped).
//   Leaving or expiring lets go of everything at once.
// - A partition no member holds goes to its target owner at once (it learns on its next call).
// Invariant (checked after every change): no partition is held by two members, so no two live
// members of one generation ever own the same partition; what a member owns is in its target.

import { assert } from '../../raft/errors.js';
import { BrokerError } from '../errors.js';
import { assignSticky, comparePartitionKeys, type PartitionKey, parsePartitionKey } from './assignor.js';
import {
  type AssignedPartition,
  type ExpiringMember,
  type GroupCommand,
  type GroupDescription,
  type GroupFence,
  MEMBERS_MAX,
  MEMBERS_PER_GROUP_MAX,
  type MemberAssignment,
  REBALANCE_HEARTBEAT_INTERVAL_MS,
  SESSION_TIMEOUT_MS_MAX,
  SESSION_TIMEOUT_MS_MIN,
  type SessionStamp,
  STEADY_HEARTBEAT_INTERVAL_MS_MAX,
} from './protocol.js';

/** What membership needs of the rest of the metadata. */
export interface MembershipTopics {
  /** The partition count of an existing topic; undefined if there is no such topic. */
  partitionCount(topic: string): number | undefined;
  /** The group's committed offset of a partition, if it has one. */
  committedOffset(group: string, key: PartitionKey): number | undefined;
}

interface Holding {
  /** The generation in which the member was given the partition (this time). */
  since: number;
  /** The generation whose rebalance took it away; null while it is the member's to consume. */
  revokedAt: number | null;
}

interface MemberRecord {
  memberId: string;
  /** Sorted, without duplicates. */
  topics: string[];
  sessionTimeoutMs: number;
  lastHeartbeatAtMs: number;
  /** The join and every heartbeat applied: the session clock's sign of life. */
  heartbeats: number;
  /** The assignor's choice. Invariant: disjoint from every other member's target. */
  target: Set<PartitionKey>;
  /**
   * What the member holds. Invariant: disjoint from every other member's holdings; a holding with
   * revokedAt null is in target, a revoking one is not.
   */
  held: Map<PartitionKey, Holding>;
}

interface GroupRecord {
  /** Invariant: only grows while the group has members; a group with none is forgotten. */
  generation: number;
  /** In join order (the same on every node: the order commands were applied). */
  members: Map<string, MemberRecord>;
}

export interface SerializedGroup {
  group: string;
  generation: number;
  members: Array<{
    memberId: string;
    topics: string[];
    sessionTimeoutMs: number;
    lastHeartbeatAtMs: number;
    heartbeats: number;
    target: PartitionKey[];
    held: Array<[PartitionKey, number, number | null]>;
  }>;
}

export class GroupMemberships {
  private readonly groups = new Map<string, GroupRecord>();
  private memberCount = 0;

  constructor(private readonly topics: MembershipTopics) {}

  apply(command: GroupCommand): MemberAssignment | null {
    switch (command.type) {
      case 'joinGroup':
        return this.join(command);
      case 'heartbeatGroup':
        return this.heartbeat(command);
      case 'leaveGroup':
        this.leave(command.group, command.memberId);
        return null;
      case 'expireMembers':
        this.expire(command.members);
        return null;
    }
  }

  private join(command: Extract<GroupCommand, { type: 'joinGroup' }>): MemberAssignment {
    assert(
      command.sessionTimeoutMs >= SESSION_TIMEOUT_MS_MIN &&
        command.sessionTimeoutMs <= SESSION_TIMEOUT_MS_MAX,
      `membership: session timeout ${command.sessionTimeoutMs} out of range`,
    );
    const topics = [...new Set(command.topics)].sort();
    for (const topic of topics) {
      if (this.topics.partitionCount(topic) === undefined) {
        throw new BrokerError('UNKNOWN_TOPIC', `topic '${topic}' does not exist`);
      }
    }
    const existing = this.groups.get(command.group);
    if (existing?.members.has(command.memberId)) {
      throw new BrokerError('INTERNAL', `member id ${command.memberId} is taken; join again`);
    }
    if ((existing?.members.size ?? 0) >= MEMBERS_PER_GROUP_MAX || this.memberCount >= MEMBERS_MAX) {
      throw new BrokerError(
        'BUSY',
        `group '${command.group}' has ${existing?.members.size ?? 0} members, the cluster ${this.memberCount}: ` +
          `at most ${MEMBERS_PER_GROUP_MAX} per group and ${MEMBERS_MAX} in all`,
      );
    }
    const record = existing ?? { generation: 0, members: new Map() };
    this.groups.set(command.group, record);
    const member: MemberRecord = {
      memberId: command.memberId,
      topics,
      sessionTimeoutMs: command.sessionTimeoutMs,
      lastHeartbeatAtMs: command.nowMs,
      heartbeats: 1,
      target: new Set(),
      held: new Map(),
    };
    record.members.set(member.memberId, member);
    this.memberCount++;
    this.rebalance(record);
    this.settle(command.group, record);
    return this.assignmentOf(command.group, record, member);
  }

  private heartbeat(command: Extract<GroupCommand, { type: 'heartbeatGroup' }>): MemberAssignment {
    const { record, member } = this.memberOf(command.group, command.memberId);
    if (command.generation > record.generation) {
      throw new BrokerError(
        'INVALID_REQUEST',
        `body/generation ${command.generation} is ahead of group '${command.group}' (generation ` +
          `${record.generation}): send the generation of the last answer`,
      );
    }
    member.heartbeats++;
    member.lastHeartbeatAtMs = command.nowMs;
    for (const [key, holding] of member.held) {
      // The member has seen an answer of generation >= revokedAt, and each left this partition out.
      if (holding.revokedAt !== null && holding.revokedAt <= command.generation) member.held.delete(key);
    }
    this.settle(command.group, record);
    return this.assignmentOf(command.group, record, member);
  }

  private leave(group: string, memberId: string): void {
    const { record } = this.memberOf(group, memberId);
    this.remove(group, record, memberId);
    if (this.groups.has(group)) {
      this.rebalance(record);
      this.settle(group, record);
    }
  }

  /** Removes members whose heartbeat count is still the one their session ran out at. */
  private expire(members: readonly ExpiringMember[]): void {
    const touched = new Map<string, GroupRecord>();
    for (const { group, memberId, heartbeats } of members) {
      const record = this.groups.get(group);
      // A heartbeat applied since the leader decided: the member lives on.
      if (record?.members.get(memberId)?.heartbeats !== heartbeats) continue;
      this.remove(group, record, memberId);
      touched.set(group, record);
    }
    for (const [group, record] of touched) {
      if (!this.groups.has(group)) continue;
      this.rebalance(record);
      this.settle(group, record);
    }
  }

  /**
   * A fenced commit: throws UNKNOWN_MEMBER, or STALE_GENERATION unless the member holds every
   * partition and was given each in `generation` or before (an older commit, from before the
   * member last got the partition, could rewind an offset committed since).
   */
  checkCommit(group: string, fence: GroupFence, keys: readonly PartitionKey[]): void {
    const { record, member } = this.memberOf(group, fence.memberId);
    if (fence.generation > record.generation) {
      throw new BrokerError(
        'STALE_GENERATION',
        `generation ${fence.generation} is ahead of group '${group}' (generation ${record.generation})`,
      );
    }
    for (const key of keys) {
      const holding = member.held.get(key);
      if (!holding) {
        throw new BrokerError(
          'STALE_GENERATION',
          `member ${fence.memberId} does not own ${key} in generation ${record.generation}: nothing committed`,
        );
      }
      if (fence.generation < holding.since) {
        throw new BrokerError(
          'STALE_GENERATION',
          `generation ${fence.generation} is older than generation ${holding.since}, in which member ` +
            `${fence.memberId} was given ${key}: nothing committed`,
        );
      }
    }
  }

  /** The partitions of `topic` changed (created, deleted, added): groups reading it rebalance. */
  topicChanged(topic: string): void {
    const count = this.topics.partitionCount(topic) ?? 0;
    for (const [group, record] of this.groups) {
      const members = [...record.members.values()];
      if (!members.some((m) => m.topics.includes(topic))) continue;
      for (const member of members) {
        // Partitions that no longer exist are dropped at once: there is nothing to let go of.
        for (const key of member.held.keys()) if (gone(key, topic, count)) member.held.delete(key);
        for (const key of member.target) if (gone(key, topic, count)) member.target.delete(key);
      }
      this.rebalance(record);
      this.settle(group, record);
    }
  }

  describe(group: string): GroupDescription | null {
    const record = this.groups.get(group);
    if (!record) return null;
    const members = [...record.members.values()].sort((a, b) => (a.memberId < b.memberId ? -1 : 1));
    return {
      generation: record.generation,
      members: members.map((member) => ({
        memberId: member.memberId,
        topics: [...member.topics],
        sessionTimeoutMs: member.sessionTimeoutMs,
        lastHeartbeatAtMs: member.lastHeartbeatAtMs,
        assignments: this.assignedTo(group, member),
        revoking: [...member.held]
          .filter(([, holding]) => holding.revokedAt !== null)
          .map(([key]) => key)
          .sort(comparePartitionKeys)
          .map(parsePartitionKey),
      })),
    };
  }

  /** Groups with members: name → [member count, generation]. */
  list(): Map<string, { members: number; generation: number }> {
    const out = new Map<string, { members: number; generation: number }>();
    for (const [group, record] of this.groups) {
      out.set(group, { members: record.members.size, generation: record.generation });
    }
    return out;
  }

  *sessions(): Iterable<SessionStamp> {
    for (const [group, record] of this.groups) {
      for (const member of record.members.values()) {
        yield {
          group,
          memberId: member.memberId,
          heartbeats: member.heartbeats,
          sessionTimeoutMs: member.sessionTimeoutMs,
        };
      }
    }
  }

  serialize(): SerializedGroup[] {
    return [...this.groups].map(([group, record]) => ({
      group,
      generation: record.generation,
      members: [...record.members.values()].map((m) => ({
        memberId: m.memberId,
        topics: m.topics,
        sessionTimeoutMs: m.sessionTimeoutMs,
        lastHeartbeatAtMs: m.lastHeartbeatAtMs,
        heartbeats: m.heartbeats,
        target: [...m.target],
        held: [...m.held].map(([key, h]): [PartitionKey, number, number | null] => [
          key,
          h.since,
          h.revokedAt,
        ]),
      })),
    }));
  }

  restore(groups: readonly SerializedGroup[]): void {
    this.groups.clear();
    this.memberCount = 0;
    for (const { group, generation, members } of groups) {
      const record: GroupRecord = { generation, members: new Map() };
      for (const m of members) {
        record.members.set(m.memberId, {
          memberId: m.memberId,
          topics: m.topics,
          sessionTimeoutMs: m.sessionTimeoutMs,
          lastHeartbeatAtMs: m.lastHeartbeatAtMs,
          heartbeats: m.heartbeats,
          target: new Set(m.target),
          held: new Map(m.held.map(([key, since, revokedAt]) => [key, { since, revokedAt }])),
        });
        this.memberCount++;
      }
      this.groups.set(group, record);
      this.checkInvariants(group, record);
    }
  }

  // ---- helpers ------------------------------------------------------------------------------

  private memberOf(group: string, memberId: string): { record: GroupRecord; member: MemberRecord } {
    const record = this.groups.get(group);
    const member = record?.members.get(memberId);
    if (!record || !member) {
      throw new BrokerError(
        'UNKNOWN_MEMBER',
        `group '${group}' has no member '${memberId}' (it left, or its session expired): join again`,
      );
    }
    return { record, member };
  }

  private remove(group: string, record: GroupRecord, memberId: string): void {
    record.members.delete(memberId);
    this.memberCount--;
    if (record.members.size === 0) this.groups.delete(group);
  }

  /** A new generation and target. Holdings outside the new target start being revoked. */
  private rebalance(record: GroupRecord): void {
    record.generation++;
    const members = [...record.members.values()];
    const partitionCounts = new Map<string, number>();
    for (const topic of new Set(members.flatMap((m) => m.topics))) {
      const count = this.topics.partitionCount(topic);
      if (count !== undefined) partitionCounts.set(topic, count);
    }
    const target = assignSticky({
      members,
      partitionCounts,
      previous: new Map(members.map((m) => [m.memberId, m.target])),
    });
    for (const member of members) {
      member.target = target.get(member.memberId)!;
      for (const [key, holding] of member.held) {
        if (!member.target.has(key)) holding.revokedAt ??= record.generation;
        else holding.revokedAt = null; // given back before it was let go: it never left
      }
    }
  }

  /** Gives every partition no one holds to its target owner, then checks the invariants. */
  private settle(group: string, record: GroupRecord): void {
    const held = new Set<PartitionKey>();
    for (const member of record.members.values()) for (const key of member.held.keys()) held.add(key);
    for (const member of record.members.values()) {
      for (const key of member.target) {
        if (held.has(key)) continue;
        member.held.set(key, { since: record.generation, revokedAt: null });
        held.add(key);
      }
    }
    this.checkInvariants(group, record);
  }

  private checkInvariants(group: string, record: GroupRecord): void {
    const holder = new Map<PartitionKey, string>();
    const targeted = new Map<PartitionKey, string>();
    for (const member of record.members.values()) {
      for (const key of member.target) {
        const other = targeted.get(key);
        assert(
          other === undefined,
          `group '${group}': ${key} is the target of ${other} and ${member.memberId}`,
        );
        targeted.set(key, member.memberId);
      }
      for (const [key, holding] of member.held) {
        const other = holder.get(key);
        assert(
          other === undefined,
          `group '${group}' generation ${record.generation}: ${key} is owned by both ${other} and ${member.memberId}`,
        );
        holder.set(key, member.memberId);
        assert(
          (holding.revokedAt === null) === member.target.has(key),
          `group '${group}': ${member.memberId} holds ${key} ${holding.revokedAt === null ? 'outside' : 'revoking inside'} its target`,
        );
        assert(
          holding.since <= record.generation &&
            (holding.revokedAt === null ||
              (holding.since <= holding.revokedAt && holding.revokedAt <= record.generation)),
          `group '${group}': ${member.memberId} holds ${key} with generations from the future`,
        );
      }
    }
  }

  private assignmentOf(group: string, record: GroupRecord, member: MemberRecord): MemberAssignment {
    const intervalMs = Math.min(Math.floor(member.sessionTimeoutMs / 3), STEADY_HEARTBEAT_INTERVAL_MS_MAX);
    let pending = false;
    for (const holding of member.held.values()) if (holding.revokedAt !== null) pending = true;
    for (const key of member.target) if (!member.held.has(key)) pending = true;
    return {
      memberId: member.memberId,
      generation: record.generation,
      // A rebalance waits on heartbeats: the members it waits on are asked to come sooner.
      heartbeatIntervalMs: pending ? Math.min(intervalMs, REBALANCE_HEARTBEAT_INTERVAL_MS) : intervalMs,
      assignments: this.assignedTo(group, member),
    };
  }

  /** What the member may consume now, in topic and partition order, with committed offsets. */
  private assignedTo(group: string, member: MemberRecord): AssignedPartition[] {
    const keys: PartitionKey[] = [];
    for (const [key, holding] of member.held) if (holding.revokedAt === null) keys.push(key);
    return keys.sort(comparePartitionKeys).map((key) => {
      const { topic, partition } = parsePartitionKey(key);
      const offset = this.topics.committedOffset(group, key);
      return offset === undefined ? { topic, partition } : { topic, partition, offset };
    });
  }
}

function gone(key: PartitionKey, topic: string, count: number): boolean {
  const parsed = parsePartitionKey(key);
  return parsed.topic === topic && parsed.partition >= count;
}
