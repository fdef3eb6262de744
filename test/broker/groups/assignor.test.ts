// The sticky assignor: balance within each topic, the fewest moves, determinism, and only
// subscribers get a topic's partitions.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AssignorMember, assignSticky, parsePartitionKey } from '../../../src/broker/groups/assignor.js';

function keys(topic: string, count: number): string[] {
  return Array.from({ length: count }, (_, p) => `${topic}/${p}`);
}

function counts(target: Map<string, Set<string>>): number[] {
  return [...target.values()].map((s) => s.size).sort((a, b) => a - b);
}

function moved(before: Map<string, Set<string>>, after: Map<string, Set<string>>): number {
  let n = 0;
  for (const [memberId, partitions] of before) {
    for (const key of partitions) if (!after.get(memberId)?.has(key)) n++;
  }
  return n;
}

const one = (ids: string[], topic = 't'): AssignorMember[] =>
  ids.map((memberId) => ({ memberId, topics: [topic] }));

describe('sticky assignor', () => {
  it('balances a topic: every member holds floor or ceil of partitions/members', () => {
    const target = assignSticky({
      members: one(['a', 'b', 'c']),
      partitionCounts: new Map([['t', 12]]),
      previous: new Map(),
    });
    expect(counts(target)).toEqual([4, 4, 4]);
    const five = assignSticky({
      members: one(['a', 'b', 'c', 'd', 'e']),
      partitionCounts: new Map([['t', 12]]),
      previous: new Map(),
    });
    expect(counts(five)).toEqual([2, 2, 2, 3, 3]);
    const all = [...five.values()].flatMap((s) => [...s]).sort();
    expect(all).toEqual(keys('t', 12).sort());
  });

  it('moves only what the new member takes when one joins, and only what a leaver had when one leaves', () => {
    const partitionCounts = new Map([['t', 12]]);
    const three = assignSticky({ members: one(['a', 'b', 'c']), partitionCounts, previous: new Map() });
    const four = assignSticky({ members: one(['a', 'b', 'c', 'd']), partitionCounts, previous: three });
    expect(counts(four)).toEqual([3, 3, 3, 3]);
    expect(moved(three, four)).toBe(3);
    for (const id of ['a', 'b', 'c'])
      expect([...four.get(id)!].every((k) => three.get(id)!.has(k))).toBe(true);

    const without = assignSticky({ members: one(['a', 'c', 'd']), partitionCounts, previous: four });
    expect(counts(without)).toEqual([4, 4, 4]);
    // Only b's three partitions changed hands.
    for (const id of ['a', 'c', 'd'])
      expect([...four.get(id)!].every((k) => without.get(id)!.has(k))).toBe(true);
  });

  it('keeps the +1 quotas with members that already had them', () => {
    const partitionCounts = new Map([['t', 7]]);
    const previous = new Map([
      ['a', new Set(['t/0', 't/1', 't/2'])],
      ['b', new Set(['t/3', 't/4'])],
      ['c', new Set(['t/5', 't/6'])],
    ]);
    const target = assignSticky({ members: one(['a', 'b', 'c']), partitionCounts, previous });
    expect(target).toEqual(previous);
  });

  it('gives a topic only to its subscribers and spreads the remainders over topics', () => {
    const members: AssignorMember[] = [
      { memberId: 'a', topics: ['x', 'y'] },
      { memberId: 'b', topics: ['x'] },
      { memberId: 'c', topics: ['y'] },
    ];
    const target = assignSticky({
      members,
      partitionCounts: new Map([
        ['x', 3],
        ['y', 3],
      ]),
      previous: new Map(),
    });
    for (const [memberId, partitions] of target) {
      const topics = members.find((m) => m.memberId === memberId)!.topics;
      for (const key of partitions) expect(topics).toContain(parsePartitionKey(key).topic);
    }
    // x: a or b takes 2; y: the remainder goes to whoever has less so far, so a holds 3, not 4.
    expect(counts(target)).toEqual([1, 2, 3]);
    expect(target.get('a')!.size).toBe(3);
  });

  it('skips topics that do not exist and members with nothing to read', () => {
    const target = assignSticky({
      members: [
        { memberId: 'a', topics: ['gone'] },
        { memberId: 'b', topics: ['t'] },
      ],
      partitionCounts: new Map([['t', 2]]),
      previous: new Map([['a', new Set(['gone/0'])]]),
    });
    expect(target.get('a')).toEqual(new Set());
    expect(target.get('b')).toEqual(new Set(['t/0', 't/1']));
  });

  it('holds its properties for random groups: disjoint, complete, balanced, sticky, order-free', () => {
    const topicNames = ['p', 'q', 'r'];
    const scenario = fc.record({
      counts: fc.tuple(
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 0, max: 12 }),
      ),
      members: fc.uniqueArray(
        fc.record({
          memberId: fc.stringMatching(/^m[0-9]{1,2}$/),
          topics: fc.subarray(topicNames, { minLength: 1 }),
        }),
        { selector: (m) => m.memberId, minLength: 1, maxLength: 8 },
      ),
      keep: fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
      joiners: fc.uniqueArray(fc.stringMatching(/^n[0-9]$/), { maxLength: 3 }),
    });
    fc.assert(
      fc.property(scenario, ({ counts: c, members, keep, joiners }) => {
        const partitionCounts = new Map(topicNames.map((t, i) => [t, c[i]!]));
        const first = assignSticky({ members, partitionCounts, previous: new Map() });
        // Some leave, some join: then check the second assignment against the first.
        const next = [
          ...members.filter((_, i) => keep[i]),
          ...joiners.map((memberId) => ({ memberId, topics: topicNames })),
        ];
        if (next.length === 0) return;
        const second = assignSticky({ members: next, partitionCounts, previous: first });
        const reversed = assignSticky({ members: [...next].reverse(), partitionCounts, previous: first });
        expect(reversed).toEqual(second);
        const owner = new Map<string, string>();
        for (const [memberId, partitions] of second) {
          for (const key of partitions) {
            expect(owner.has(key), key).toBe(false);
            owner.set(key, memberId);
          }
        }
        for (const topic of topicNames) {
          const subscribers = next.filter((m) => m.topics.includes(topic));
          if (subscribers.length === 0) continue;
          for (const key of keys(topic, partitionCounts.get(topic)!)) expect(owner.has(key), key).toBe(true);
          const held = subscribers.map(
            (m) => [...second.get(m.memberId)!].filter((k) => k.startsWith(`${topic}/`)).length,
          );
          expect(Math.max(...held) - Math.min(...held)).toBeLessThanOrEqual(1);
          // Sticky: a member that stays keeps as much of the topic as its new quota allows.
          const base = Math.floor(partitionCounts.get(topic)! / subscribers.length);
          for (const m of subscribers) {
            const had = [...(first.get(m.memberId) ?? [])].filter((k) => k.startsWith(`${topic}/`));
            const kept = had.filter((k) => second.get(m.memberId)!.has(k)).length;
            expect(kept).toBeGreaterThanOrEqual(Math.min(had.length, base));
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
