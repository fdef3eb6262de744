// The checks of `raftlog verify` on crafted inputs, apart from any I/O: each kind of fault is
// flagged, and a faithful history is clean.

import { describe, expect, it } from 'vitest';
import {
  Checker,
  type FetchedPage,
  numberedValue,
  parseValue,
  type ReplicaRange,
} from '../../src/cli/verify/checker.js';

const RUN = 'r1';
const v = (key: string, n: number) => numberedValue(RUN, key, n);

function page(records: Array<[number, string]>, highWatermark: number, logStartOffset = 0): FetchedPage {
  return { records: records.map(([offset, value]) => ({ offset, value })), highWatermark, logStartOffset };
}

/** Two keys on partition 0: a1 a2 b1 a3 b2 at offsets 0..4, all acknowledged. */
function acknowledged(): Checker {
  const checker = new Checker(RUN, 1);
  const values = [v('a', 1), v('a', 2), v('b', 1), v('a', 3), v('b', 2)];
  for (const [offset, value] of values.entries()) checker.acknowledge(0, offset, value);
  return checker;
}

const faithful: Array<[number, string]> = [
  [0, v('a', 1)],
  [1, v('a', 2)],
  [2, v('b', 1)],
  [3, v('a', 3)],
  [4, v('b', 2)],
];

function range(logStartOffset: number, highWatermark: number): ReplicaRange {
  return { logStartOffset, highWatermark };
}

function findingsOf(checker: Checker): Record<string, number> {
  return Object.fromEntries([...checker.counts].filter(([, count]) => count > 0));
}

describe('verify checker', () => {
  it('parses only this run’s values, keys with colons included', () => {
    expect(parseValue(numberedValue(RUN, 'k:1', 7), RUN)).toEqual({ run: RUN, key: 'k:1', number: 7 });
    expect(parseValue('r2:a:1', RUN)).toBeUndefined();
    expect(parseValue('r1:a:x', RUN)).toBeUndefined();
    expect(parseValue(42, RUN)).toBeUndefined();
  });

  it('finds nothing wrong in a faithful history read from every replica, across pages', () => {
    const checker = acknowledged();
    for (const replica of [1, 2, 3]) {
      const scan = checker.scan(replica, 0, 0);
      scan.accept(page(faithful.slice(0, 2), 5));
      scan.accept(page(faithful.slice(2), 5));
      scan.accept(page([], 5)); // Caught up: nothing more, nothing missing.
      expect(scan.next).toBe(5);
    }
    checker.linearizableRead(2, 0, 4, 5);
    checker.finalCheck(
      new Map([
        [1, [range(0, 5)]],
        [2, [range(0, 5)]],
        [3, [range(0, 5)]],
      ]),
    );
    expect(findingsOf(checker)).toEqual({});
    expect(checker.clean).toBe(true);
    expect([checker.readBy(1), checker.readBy(2), checker.readBy(3)]).toEqual([5, 5, 5]);
  });

  it('flags loss: an acknowledged record with another value on a replica', () => {
    const checker = acknowledged();
    const replaced = faithful.map(([offset, value]): [number, string] => [
      offset,
      offset === 3 ? 'other' : value,
    ]);
    checker.scan(1, 0, 0).accept(page(replaced, 5));
    expect(checker.count('loss')).toBe(1);
    expect(checker.examples.get('loss')![0]).toContain('offset 3');
  });

  it('flags loss: an acknowledged record missing from a replica whose highWatermark is past it', () => {
    const checker = acknowledged();
    checker.scan(1, 0, 0).accept(page(faithful.slice(0, 3), 3)); // Replica 1 stops at 3 (behind, fine).
    checker.finalCheck(new Map([[1, [range(0, 5)]]])); // ...but says 5 at the end without having returned 3, 4.
    expect(checker.count('loss')).toBe(2);
  });

  it('flags loss: an acknowledged offset that no replica has below its highWatermark', () => {
    const checker = acknowledged();
    checker.finalCheck(
      new Map([
        [1, [range(0, 4)]],
        [2, [range(0, 3)]],
      ]),
    );
    // Offset 4 on no replica; 0..3 never returned by replica 1, 0..2 by replica 2: each offset once.
    expect(checker.count('loss')).toBe(5);
  });

  it("does not count records below a replica's log start as lost, if another replica has them", () => {
    const checker = acknowledged();
    checker.scan(1, 0, 0).accept(page(faithful, 5));
    // Replica 2 restarted empty (memory) and caught up from a snapshot: it retains 3 and 4 only.
    checker.scan(2, 0, 0).accept(page(faithful.slice(3), 5, 3));
    checker.finalCheck(
      new Map([
        [1, [range(0, 5)]],
        [2, [range(3, 5)]],
      ]),
    );
    expect(findingsOf(checker)).toEqual({});
  });

  it('flags loss: one offset acknowledged for two values (the first was lost), once per offset', () => {
    const checker = acknowledged();
    checker.acknowledge(0, 3, v('c', 1));
    checker.scan(1, 0, 0).accept(page(faithful, 5));
    expect(checker.count('loss')).toBe(1);
    expect(checker.examples.get('loss')![0]).toContain('acknowledged again');
  });

  it('flags an offset gap (and the loss it hides) when a page skips an offset below the highWatermark', () => {
    const checker = acknowledged();
    checker.scan(1, 0, 0).accept(page([faithful[0]!, faithful[1]!, faithful[3]!, faithful[4]!], 5));
    expect(checker.count('gap')).toBe(1);
    expect(checker.count('loss')).toBe(1);
    const empty = acknowledged();
    empty.scan(1, 0, 2).accept(page([], 5));
    expect(empty.count('gap')).toBe(1);
  });

  it('does not take retention for a gap', () => {
    const checker = new Checker(RUN, 1);
    const scan = checker.scan(1, 0, 0);
    scan.accept(page([[10, v('a', 1)]], 11, 10));
    expect(checker.clean).toBe(true);
    expect(scan.next).toBe(11);
  });

  it('flags a duplicate: one numbered value at two offsets', () => {
    const checker = acknowledged();
    checker.scan(1, 0, 0).accept(page([...faithful, [5, v('a', 3)]], 6));
    expect(checker.count('duplicate')).toBe(1);
  });

  it('flags reordering: per key, a number after a higher one', () => {
    const checker = new Checker(RUN, 1);
    checker.scan(1, 0, 0).accept(
      page(
        [
          [0, v('a', 1)],
          [1, v('a', 3)],
          [2, v('b', 1)],
          [3, v('a', 2)],
        ],
        4,
      ),
    );
    expect(checker.count('reordering')).toBe(1);
    expect(checker.examples.get('reordering')![0]).toContain('key a number 2 at offset 3 after 3');
  });

  it('flags a stale linearizable read: its highWatermark not past an offset acknowledged before it', () => {
    const checker = acknowledged();
    checker.linearizableRead(1, 0, checker.highestAcknowledged(0), 4);
    expect(checker.count('stale')).toBe(1);
    checker.linearizableRead(1, 0, checker.highestAcknowledged(0), 5);
    expect(checker.count('stale')).toBe(1);
  });

  it('flags divergence: two replicas with different records at one offset', () => {
    const checker = new Checker(RUN, 1);
    checker.scan(1, 0, 0).accept(page([[0, 'x']], 1));
    checker.scan(2, 0, 0).accept(page([[0, 'y']], 1));
    expect(checker.count('divergence')).toBe(1);
  });

  it('keeps a bounded number of examples however many findings', () => {
    const checker = new Checker(RUN, 1);
    for (let i = 0; i < 100; i++) checker.linearizableRead(1, 0, 10, 1);
    expect(checker.count('stale')).toBe(100);
    expect(checker.examples.get('stale')!.length).toBeLessThanOrEqual(5);
  });
});
