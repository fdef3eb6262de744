// The server-side partition assignor of consumer groups: sticky and balanced, pure and
// deterministic (it runs inside the metadata state machine, the same on every node).
//
// Per topic, in name order: the members subscribed to it share its partitions, each holding
// floor(P/n) or floor(P/n)+1 of them. A member keeps the partitions it had in the previous target
// up to its quota, and the +1 quotas go first to members that already had that many (so nothing
// moves for them), then to the members with the least load so far over every topic (so a member
// of several topics is not given every remainder), then by member id. Only partitions whose
// owner left, stopped subscribing or held more than its quota move, which is the fewest moves
// any balanced assignment can make.

import { assert } from '../../raft/errors.js';

/** A partition of a topic as one string, `topic/partition` (topic names have no '/'). */
export type PartitionKey = string;

export function partitionKey(topic: string, partition: number): PartitionKey {
  return `${topic}/${partition}`;
}

export function parsePartitionKey(key: PartitionKey): { topic: string; partition: number } {
  const slash = key.lastIndexOf('/');
  return { topic: key.slice(0, slash), partition: Number(key.slice(slash + 1)) };
}

/** Orders partition keys by topic name, then partition number. */
export function comparePartitionKeys(a: PartitionKey, b: PartitionKey): number {
  const left = parsePartitionKey(a);
  const right = parsePartitionKey(b);
  if (left.topic !== right.topic) return left.topic < right.topic ? -1 : 1;
  return left.partition - right.partition;
}

export interface AssignorMember {
  memberId: string;
  /** Topics the member reads. */
  topics: readonly string[];
}

export interface AssignorInput {
  members: readonly AssignorMember[];
  /** The partition count of each existing topic; a subscribed topic absent here has none. */
  partitionCounts: ReadonlyMap<string, number>;
  /** The previous target: member id → its partitions (members that left may still be named). */
  previous: ReadonlyMap<string, ReadonlySet<PartitionKey>>;
}

/** The new target: every member id of the input → its partitions. Disjoint; covers every partition. */
export function assignSticky(input: AssignorInput): Map<string, Set<PartitionKey>> {
  const target = new Map<string, Set<PartitionKey>>();
  const load = new Map<string, number>();
  const byId = [...input.members].sort((a, b) => (a.memberId < b.memberId ? -1 : 1));
  for (const member of byId) {
    target.set(member.memberId, new Set());
    load.set(member.memberId, 0);
  }
  const topics = [...new Set(byId.flatMap((m) => m.topics))].sort();
  for (const topic of topics) {
    const count = input.partitionCounts.get(topic);
    if (count === undefined || count === 0) continue;
    const subscribers = byId.filter((m) => m.topics.includes(topic)).map((m) => m.memberId);
    assignTopic({ topic, count, subscribers, previous: input.previous, target, load });
  }
  return target;
}

interface TopicAssignment {
  topic: string;
  count: number;
  /** Member ids reading the topic, sorted. */
  subscribers: readonly string[];
  previous: ReadonlyMap<string, ReadonlySet<PartitionKey>>;
  target: Map<string, Set<PartitionKey>>;
  load: Map<string, number>;
}

function assignTopic({ topic, count, subscribers, previous, target, load }: TopicAssignment): void {
  const base = Math.floor(count / subscribers.length);
  const extra = count % subscribers.length;
  // What each subscriber had of this topic, in partition order.
  const had = new Map<string, number[]>();
  for (const memberId of subscribers) {
    const partitions: number[] = [];
    for (const key of previous.get(memberId) ?? []) {
      const { topic: t, partition } = parsePartitionKey(key);
      if (t === topic && partition < count) partitions.push(partition);
    }
    had.set(
      memberId,
      partitions.sort((a, b) => a - b),
    );
  }
  const ranked = [...subscribers].sort((a, b) => {
    const keptA = Math.min(had.get(a)!.length, base + 1);
    const keptB = Math.min(had.get(b)!.length, base + 1);
    if (keptA !== keptB) return keptB - keptA;
    const loadA = load.get(a)!;
    const loadB = load.get(b)!;
    if (loadA !== loadB) return loadA - loadB;
    return a < b ? -1 : 1;
  });
  const quota = new Map<string, number>();
  for (const [rank, memberId] of ranked.entries()) quota.set(memberId, base + (rank < extra ? 1 : 0));
  const taken = new Set<number>();
  for (const memberId of subscribers) {
    for (const partition of had.get(memberId)!.slice(0, quota.get(memberId)!)) {
      // Two members never had one partition in a target; a restored or odd state must not make two now.
      if (taken.has(partition)) continue;
      taken.add(partition);
      target.get(memberId)!.add(partitionKey(topic, partition));
    }
  }
  let next = 0;
  for (const memberId of subscribers) {
    const owned = target.get(memberId)!;
    let held = had.get(memberId)!.filter((p) => owned.has(partitionKey(topic, p))).length;
    while (held < quota.get(memberId)!) {
      while (taken.has(next)) next++;
      // The quotas add up to the partition count, so there is always one left.
      assert(next < count, `assignor: quotas of ${topic} exceed its ${count} partitions`);
      taken.add(next);
      owned.add(partitionKey(topic, next));
      held++;
    }
    load.set(memberId, load.get(memberId)! + quota.get(memberId)!);
  }
}
