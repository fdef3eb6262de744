// Property test of group membership over random sequences of joins, heartbeats (some answers
// lost), leaves, expiries, fenced commits and topic re-creations, with a model of what each
// client believes it owns (what its last received answer said):
// - no partition is owned by two live members: neither in the state machine (it asserts this
//   itself after every command) nor in what live clients believe;
// - a live client's commit of what it believes it owns, with its generation, is accepted;
// - generations never go backwards;
// - once the commands stop, three rounds of heartbeats from every member give every partition
//   of every subscribed topic to exactly one member: each move completes within one rebalance.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { MemberAssignment } from '../../../src/broker/groups/protocol.js';
import { type MetadataCommand, MetadataState, type TopicConfig } from '../../../src/broker/metadata-state.js';

const config: TopicConfig = { persistence: 'async', retentionMs: -1, retentionBytes: -1 };
const GROUPS = ['g1', 'g2'];
const TOPICS = ['a', 'b'];

type Op =
  | { kind: 'join'; group: number; topics: string[] }
  | { kind: 'heartbeat'; client: number; lost: boolean }
  | { kind: 'leave'; client: number }
  | { kind: 'expire'; client: number; stale: boolean }
  | { kind: 'commit'; client: number }
  | { kind: 'recreate'; partitions: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('join' as const),
    // Mostly one group, so that members meet often; the second checks groups stay apart.
    group: fc.constantFrom(0, 0, 0, 1),
    topics: fc.subarray(TOPICS, { minLength: 1 }),
  }),
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('heartbeat' as const), client: fc.nat(), lost: fc.boolean() }),
  },
  fc.record({ kind: fc.constant('leave' as const), client: fc.nat() }),
  fc.record({ kind: fc.constant('expire' as const), client: fc.nat(), stale: fc.boolean() }),
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('commit' as const), client: fc.nat() }) },
  fc.record({ kind: fc.constant('recreate' as const), partitions: fc.integer({ min: 1, max: 6 }) }),
);

interface Client {
  group: string;
  memberId: string;
  /** The generation of the last answer it received. */
  generation: number;
  /** What that answer assigned it. */
  owns: Set<string>;
}

class Harness {
  readonly state = new MetadataState([1]);
  readonly clients: Client[] = [];
  private nextId = 0;
  private readonly generations = new Map<string, number>();

  constructor() {
    this.apply({ type: 'createTopic', name: 'a', partitions: 4, replicationFactor: 1, config });
    this.apply({ type: 'createTopic', name: 'b', partitions: 3, replicationFactor: 1, config });
  }

  apply(command: MetadataCommand) {
    return this.state.apply(command);
  }

  receive(client: Client, answer: MemberAssignment): void {
    expect(answer.generation).toBeGreaterThanOrEqual(client.generation);
    client.generation = answer.generation;
    client.owns = new Set(answer.assignments.map((a) => `${a.topic}/${a.partition}`));
  }

  heartbeat(client: Client, lost: boolean): void {
    const result = this.apply({
      type: 'heartbeatGroup',
      group: client.group,
      memberId: client.memberId,
      generation: client.generation,
      nowMs: 0,
    });
    if (!result.ok) throw result.error;
    if (!lost) this.receive(client, result.member!);
  }

  step(o: Op): void {
    const client =
      this.clients.length > 0 ? this.clients[('client' in o ? o.client : 0) % this.clients.length]! : null;
    switch (o.kind) {
      case 'join': {
        const group = GROUPS[o.group]!;
        const memberId = `m${this.nextId++}`;
        const result = this.apply({
          type: 'joinGroup',
          group,
          memberId,
          topics: o.topics,
          sessionTimeoutMs: 3000,
          nowMs: 0,
        });
        if (!result.ok) throw result.error;
        const joined: Client = { group, memberId, generation: 0, owns: new Set() };
        this.receive(joined, result.member!);
        this.clients.push(joined);
        return;
      }
      case 'heartbeat':
        if (client) this.heartbeat(client, o.lost);
        return;
      case 'leave':
        if (!client) return;
        expect(this.apply({ type: 'leaveGroup', group: client.group, memberId: client.memberId }).ok).toBe(
          true,
        );
        this.clients.splice(this.clients.indexOf(client), 1);
        return;
      case 'expire': {
        if (!client) return;
        const stamp = [...this.state.memberships.sessions()].find((s) => s.memberId === client.memberId)!;
        const heartbeats = o.stale ? stamp.heartbeats - 1 : stamp.heartbeats;
        this.apply({
          type: 'expireMembers',
          members: [{ group: client.group, memberId: client.memberId, heartbeats }],
        });
        const present = [...this.state.memberships.sessions()].some((s) => s.memberId === client.memberId);
        expect(present).toBe(o.stale);
        if (!o.stale) this.clients.splice(this.clients.indexOf(client), 1);
        return;
      }
      case 'commit': {
        if (!client || client.owns.size === 0) return;
        const offsets = [...client.owns].map((key) => {
          const [topic, partition] = key.split('/');
          return { topic: topic!, partition: Number(partition), offset: 0 };
        });
        const result = this.apply({
          type: 'commitOffsets',
          group: client.group,
          offsets,
          member: { memberId: client.memberId, generation: client.generation },
        });
        expect(result.ok ? 'ok' : result.error.message).toBe('ok');
        return;
      }
      case 'recreate':
        // The topic's old partitions are gone: clients learn it from their fetches and drop them.
        this.apply({ type: 'deleteTopic', name: 'b' });
        for (const c of this.clients) for (const key of c.owns) if (key.startsWith('b/')) c.owns.delete(key);
        this.apply({
          type: 'createTopic',
          name: 'b',
          partitions: o.partitions,
          replicationFactor: 1,
          config,
        });
        return;
    }
  }

  /** No partition in two live clients' beliefs, nor held twice; beliefs are what the state holds. */
  check(): void {
    for (const group of GROUPS) {
      const owner = new Map<string, string>();
      for (const c of this.clients.filter((x) => x.group === group)) {
        for (const key of c.owns) {
          expect(owner.get(key), `${group} ${key} believed by two members`).toBeUndefined();
          owner.set(key, c.memberId);
        }
      }
      const description = this.state.memberships.describe(group);
      const held = new Map<string, string>();
      for (const m of description?.members ?? []) {
        for (const p of [...m.assignments, ...m.revoking]) {
          const key = `${p.topic}/${p.partition}`;
          expect(held.get(key), `${group} ${key} held twice`).toBeUndefined();
          held.set(key, m.memberId);
        }
      }
      for (const [key, memberId] of owner) expect(held.get(key), `${key} of ${memberId}`).toBe(memberId);
      const generation = description?.generation;
      if (generation === undefined) this.generations.delete(group);
      else {
        expect(generation).toBeGreaterThanOrEqual(this.generations.get(group) ?? 0);
        this.generations.set(group, generation);
      }
    }
  }

  /** After three rounds of heartbeats every subscribed partition is owned, once. */
  checkSettles(): void {
    for (let round = 0; round < 3; round++) for (const c of this.clients) this.heartbeat(c, false);
    this.check();
    for (const group of GROUPS) {
      const members = this.clients.filter((c) => c.group === group);
      const subscribed = new Set(
        (this.state.memberships.describe(group)?.members ?? []).flatMap((m) => m.topics),
      );
      const expected = [...subscribed].flatMap((topic) =>
        Array.from({ length: this.state.topic(topic).partitions.length }, (_, p) => `${topic}/${p}`),
      );
      const owned = members.flatMap((c) => [...c.owns]);
      expect(owned.sort()).toEqual(expected.sort());
      for (const m of this.state.memberships.describe(group)?.members ?? []) expect(m.revoking).toEqual([]);
    }
  }
}

describe('group membership under random commands', () => {
  it('never gives one partition to two live members, and settles within one rebalance', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 60 }), (ops) => {
        const harness = new Harness();
        for (const o of ops) {
          harness.step(o);
          harness.check();
        }
        harness.checkSettles();
        // And it settles again after one more change.
        harness.step({ kind: 'join', group: 0, topics: TOPICS });
        harness.checkSettles();
      }),
      { numRuns: 1000 },
    );
  });
});
