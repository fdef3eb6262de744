// Group membership in the metadata state machine: join, revoke-before-assign, lost answers,
// leave, expiry, fenced commits, topic changes and snapshots.

import { describe, expect, it } from 'vitest';
import type { MemberAssignment } from '../../../src/broker/groups/protocol.js';
import { type MetadataCommand, MetadataState, type TopicConfig } from '../../../src/broker/metadata-state.js';

const config: TopicConfig = { persistence: 'async', retentionMs: -1, retentionBytes: -1 };

function stateWith(topics: Record<string, number>): MetadataState {
  const state = new MetadataState([1, 2, 3]);
  for (const [name, partitions] of Object.entries(topics)) {
    expect(state.apply({ type: 'createTopic', name, partitions, replicationFactor: 1, config }).ok).toBe(
      true,
    );
  }
  return state;
}

function run(state: MetadataState, command: MetadataCommand): MemberAssignment {
  const result = state.apply(command);
  if (!result.ok) throw result.error;
  return result.member!;
}

function codeOf(state: MetadataState, command: MetadataCommand): string {
  const result = state.apply(command);
  return result.ok ? 'ok' : result.error.code;
}

const join = (memberId: string, topics = ['t'], sessionTimeoutMs = 9000): MetadataCommand => ({
  type: 'joinGroup',
  group: 'g',
  memberId,
  topics,
  sessionTimeoutMs,
  nowMs: 1000,
});
const beat = (memberId: string, generation: number): MetadataCommand => ({
  type: 'heartbeatGroup',
  group: 'g',
  memberId,
  generation,
  nowMs: 2000,
});
const partitions = (answer: MemberAssignment) => answer.assignments.map((a) => `${a.topic}/${a.partition}`);

describe('group membership', () => {
  it('gives a lone member every partition, with committed offsets where there are any', () => {
    const state = stateWith({ t: 3 });
    state.apply({ type: 'commitOffsets', group: 'g', offsets: [{ topic: 't', partition: 1, offset: 7 }] });
    const a = run(state, join('a'));
    expect(a).toEqual({
      memberId: 'a',
      generation: 1,
      heartbeatIntervalMs: 1500,
      assignments: [
        { topic: 't', partition: 0 },
        { topic: 't', partition: 1, offset: 7 },
        { topic: 't', partition: 2 },
      ],
    });
  });

  it('gives a partition to its new owner only after the old owner heartbeated past its revocation', () => {
    const state = stateWith({ t: 4 });
    run(state, join('a'));
    const b = run(state, join('b'));
    // a still holds everything: b waits, and is asked to heartbeat sooner.
    expect(b.generation).toBe(2);
    expect(partitions(b)).toEqual([]);
    expect(b.heartbeatIntervalMs).toBe(500);
    // a's next heartbeat (it last saw generation 1) shows the revocation...
    const a1 = run(state, beat('a', 1));
    expect(a1.generation).toBe(2);
    expect(partitions(a1)).toEqual(['t/0', 't/1']);
    expect(partitions(run(state, beat('b', 2)))).toEqual([]);
    // ...and an answer that was lost is shown again: the same generation frees nothing.
    expect(partitions(run(state, beat('a', 1)))).toEqual(['t/0', 't/1']);
    expect(partitions(run(state, beat('b', 2)))).toEqual([]);
    // The heartbeat that carries generation 2 proves a saw it: b gets the partitions.
    const a2 = run(state, beat('a', 2));
    expect(a2.heartbeatIntervalMs).toBe(1500);
    const b2 = run(state, beat('b', 2));
    expect(partitions(b2)).toEqual(['t/2', 't/3']);
    expect(b2.generation).toBe(2);
    expect(b2.heartbeatIntervalMs).toBe(1500);
  });

  it('moves a leaver’s partitions at once, and a partition given back before it was let go stays', () => {
    const state = stateWith({ t: 4 });
    run(state, join('a'));
    run(state, join('b'));
    run(state, beat('a', 1)); // t/2, t/3 revoking from a
    // b leaves before it got anything: the target is a's again, so nothing is revoked.
    state.apply({ type: 'leaveGroup', group: 'g', memberId: 'b' });
    const a = run(state, beat('a', 2));
    expect(a.generation).toBe(3);
    expect(partitions(a)).toEqual(['t/0', 't/1', 't/2', 't/3']);
    expect(state.memberships.describe('g')!.members[0]!.revoking).toEqual([]);
    // A leaver that holds partitions: they go to the other member at once.
    run(state, join('c'));
    run(state, beat('a', 3));
    run(state, beat('a', 4));
    expect(partitions(run(state, beat('c', 4)))).toEqual(['t/2', 't/3']);
    state.apply({ type: 'leaveGroup', group: 'g', memberId: 'c' });
    expect(partitions(run(state, beat('a', 4)))).toEqual(['t/0', 't/1', 't/2', 't/3']);
    expect(codeOf(state, { type: 'leaveGroup', group: 'g', memberId: 'c' })).toBe('UNKNOWN_MEMBER');
  });

  it('expires a member only if no heartbeat was applied since the leader decided', () => {
    const state = stateWith({ t: 2 });
    run(state, join('a'));
    run(state, join('b'));
    const stamp = () => [...state.memberships.sessions()].find((s) => s.memberId === 'b')!.heartbeats;
    const seen = stamp();
    run(state, beat('b', 2));
    state.apply({ type: 'expireMembers', members: [{ group: 'g', memberId: 'b', heartbeats: seen }] });
    expect(state.memberships.describe('g')!.members.map((m) => m.memberId)).toEqual(['a', 'b']);
    state.apply({ type: 'expireMembers', members: [{ group: 'g', memberId: 'b', heartbeats: stamp() }] });
    expect(state.memberships.describe('g')!.members.map((m) => m.memberId)).toEqual(['a']);
    expect(codeOf(state, beat('b', 2))).toBe('UNKNOWN_MEMBER');
    // a gets b's partition at once: nothing to wait for from an expired member.
    expect(partitions(run(state, beat('a', 3)))).toEqual(['t/0', 't/1']);
    // The last member gone: the group is forgotten (its offsets would stay).
    state.apply({ type: 'leaveGroup', group: 'g', memberId: 'a' });
    expect(state.memberships.describe('g')).toBeNull();
  });

  it('fences commits: only partitions the member holds, in a generation since it got them', () => {
    const state = stateWith({ t: 2 });
    run(state, join('a'));
    run(state, join('b')); // generation 2: t/1 revoking from a
    const commit = (memberId: string, generation: number, partition: number): string =>
      codeOf(state, {
        type: 'commitOffsets',
        group: 'g',
        offsets: [{ topic: 't', partition, offset: 5 }],
        member: { memberId, generation },
      });
    expect(commit('a', 1, 0)).toBe('ok');
    expect(commit('a', 2, 1)).toBe('ok'); // revoking but not let go: a commits before it does
    expect(commit('b', 2, 1)).toBe('STALE_GENERATION'); // not b's yet
    expect(commit('a', 3, 0)).toBe('STALE_GENERATION'); // from the future
    expect(commit('z', 2, 0)).toBe('UNKNOWN_MEMBER');
    run(state, beat('a', 2)); // lets go of t/1
    expect(commit('a', 2, 1)).toBe('STALE_GENERATION');
    expect(commit('b', 2, 1)).toBe('ok');
    // All or nothing: one partition not owned refuses the whole commit.
    const mixed = state.apply({
      type: 'commitOffsets',
      group: 'g',
      offsets: [
        { topic: 't', partition: 0, offset: 9 },
        { topic: 't', partition: 1, offset: 9 },
      ],
      member: { memberId: 'a', generation: 2 },
    });
    expect(mixed.ok).toBe(false);
    expect(state.offsetsOf('g')).toEqual([
      { topic: 't', partition: 0, offset: 5 },
      { topic: 't', partition: 1, offset: 5 },
    ]);
  });

  it('refuses a commit from before the member last got the partition', () => {
    const state = stateWith({ t: 2 });
    run(state, join('a'));
    run(state, join('b'));
    run(state, beat('a', 2)); // a lets go of t/1; b holds it from generation 2
    state.apply({ type: 'leaveGroup', group: 'g', memberId: 'b' }); // generation 3: a has t/1 again
    const old = state.apply({
      type: 'commitOffsets',
      group: 'g',
      offsets: [{ topic: 't', partition: 1, offset: 1 }],
      member: { memberId: 'a', generation: 2 },
    });
    expect(old.ok ? 'ok' : old.error.code).toBe('STALE_GENERATION');
  });

  it('refuses joins to unknown topics and heartbeats from the future', () => {
    const state = stateWith({ t: 1 });
    expect(codeOf(state, join('a', ['nope']))).toBe('UNKNOWN_TOPIC');
    expect(state.memberships.describe('g')).toBeNull();
    run(state, join('a'));
    expect(codeOf(state, beat('a', 5))).toBe('INVALID_REQUEST');
    expect(codeOf(state, beat('x', 1))).toBe('UNKNOWN_MEMBER');
  });

  it('rebalances when a subscribed topic is deleted or created', () => {
    const state = stateWith({ t: 2, u: 2 });
    const a = run(state, join('a', ['t', 'u']));
    expect(partitions(a)).toEqual(['t/0', 't/1', 'u/0', 'u/1']);
    state.apply({ type: 'deleteTopic', name: 'u' });
    const after = run(state, beat('a', 1));
    expect(after.generation).toBe(2);
    expect(partitions(after)).toEqual(['t/0', 't/1']);
    state.apply({ type: 'createTopic', name: 'u', partitions: 3, replicationFactor: 1, config });
    expect(partitions(run(state, beat('a', 2)))).toEqual(['t/0', 't/1', 'u/0', 'u/1', 'u/2']);
    // A topic no member reads changes nothing.
    state.apply({ type: 'createTopic', name: 'other', partitions: 1, replicationFactor: 1, config });
    expect(state.memberships.describe('g')!.generation).toBe(3);
  });

  it('survives a snapshot: the copy answers the next commands exactly as the original', () => {
    const state = stateWith({ t: 4 });
    run(state, join('a'));
    run(state, join('b'));
    run(state, beat('a', 1));
    const copy = new MetadataState([1, 2, 3]);
    copy.restore(state.serialize());
    expect(copy.memberships.describe('g')).toEqual(state.memberships.describe('g'));
    for (const command of [beat('a', 2), beat('b', 2), join('c'), beat('a', 3)]) {
      expect(copy.apply(command)).toEqual(state.apply(command));
    }
    expect(copy.serialize()).toEqual(state.serialize());
  });
});
