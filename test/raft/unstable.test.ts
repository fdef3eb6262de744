// The unstable tail of the log: entries (and a snapshot) not yet reported durable, which of them
// were handed to the driver, and how appends, durable reports and snapshots move its bounds.
// Every case checks the invariants written on the class after each step.

import { describe, expect, it } from 'vitest';
import { entryBytes } from '../../src/raft/index.js';
import { Unstable } from '../../src/raft/raft-log.js';
import { entries, ids, snapshotAt } from './log-helpers.js';

/** The invariants written on Unstable: a test fails here if an operation breaks one. */
function checkInvariants(u: Unstable): void {
  expect(u.entries.map((e) => e.index)).toEqual(u.entries.map((_, i) => u.offset + i));
  expect(u.offsetInProgress).toBeGreaterThanOrEqual(u.offset);
  expect(u.offsetInProgress).toBeLessThanOrEqual(u.offset + u.entries.length);
  if (u.snapshot) expect(u.offset).toBe(u.snapshot.metadata.index + 1);
}

/** A tail at `offset` holding entries of `terms`, of which the first `inProgress` were handed out. */
function tail(offset: number, terms: number[], inProgress = 0): Unstable {
  const u = new Unstable(offset);
  if (terms.length > 0) u.truncateAndAppend(entries(offset, terms));
  u.offsetInProgress = offset + inProgress;
  checkInvariants(u);
  return u;
}

describe('Unstable', () => {
  it('lastIndex is the last entry, else the snapshot, else unknown', () => {
    expect(tail(5, []).lastIndex()).toBeUndefined();
    expect(tail(5, [1, 1]).lastIndex()).toBe(6);
    const u = tail(5, []);
    u.restore(snapshotAt(4, 1));
    expect(u.lastIndex()).toBe(4);
    u.truncateAndAppend(entries(5, [2]));
    expect(u.lastIndex()).toBe(5);
    checkInvariants(u);
  });

  it('term is known for its entries and its snapshot index, and for nothing else', () => {
    const u = tail(5, [1, 2]);
    expect([4, 5, 6, 7].map((i) => u.term(i))).toEqual([undefined, 1, 2, undefined]);
    u.restore(snapshotAt(6, 2));
    u.truncateAndAppend(entries(7, [3]));
    expect([5, 6, 7, 8].map((i) => u.term(i))).toEqual([undefined, 2, 3, undefined]);
  });

  describe('truncateAndAppend', () => {
    // Start: entries 5, 6, 7 of term 1, all handed to the driver (in progress up to 8).
    const cases: Array<{
      name: string;
      append: ReturnType<typeof entries>;
      offset: number;
      after: Array<[number, number]>;
      offsetInProgress: number;
    }> = [
      {
        name: 'right after the last entry: appended, in-progress mark kept',
        append: entries(8, [1, 2]),
        offset: 5,
        after: [
          [5, 1],
          [6, 1],
          [7, 1],
          [8, 1],
          [9, 2],
        ],
        offsetInProgress: 8,
      },
      {
        name: 'inside the tail: the suffix is replaced, and must be handed out again',
        append: entries(6, [2, 2]),
        offset: 5,
        after: [
          [5, 1],
          [6, 2],
          [7, 2],
        ],
        offsetInProgress: 6,
      },
      {
        name: 'at the offset: the whole tail is replaced',
        append: entries(5, [2]),
        offset: 5,
        after: [[5, 2]],
        offsetInProgress: 5,
      },
      {
        name: 'below the offset: the tail is replaced and the driver cuts storage there',
        append: entries(3, [2, 2]),
        offset: 3,
        after: [
          [3, 2],
          [4, 2],
        ],
        offsetInProgress: 3,
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const u = tail(5, [1, 1, 1], 3);
        u.truncateAndAppend(c.append);
        checkInvariants(u);
        expect(u.offset).toBe(c.offset);
        expect(ids(u.entries)).toEqual(c.after);
        expect(u.offsetInProgress).toBe(c.offsetInProgress);
      });
    }

    it('an append inside the tail leaves the entries already handed out unchanged', () => {
      const u = tail(5, [1, 1, 1]);
      const handedOut = u.nextEntries();
      u.acceptInProgress();
      u.truncateAndAppend(entries(6, [2]));
      // The driver may still be writing handedOut: the tail must not have cut it in place.
      expect(ids(handedOut)).toEqual([
        [5, 1],
        [6, 1],
        [7, 1],
      ]);
      expect(ids(u.nextEntries())).toEqual([[6, 2]]);
    });
  });

  it('hands each entry to the driver once: nextEntries, then acceptInProgress', () => {
    const u = tail(5, [1, 1]);
    expect(u.hasNext()).toBe(true);
    expect(ids(u.nextEntries())).toEqual([
      [5, 1],
      [6, 1],
    ]);
    u.acceptInProgress();
    checkInvariants(u);
    expect(u.hasNext()).toBe(false);
    expect(u.nextEntries()).toEqual([]);
    u.truncateAndAppend(entries(7, [1]));
    expect(ids(u.nextEntries())).toEqual([[7, 1]]);
  });

  describe('stableTo', () => {
    it('drops the durable prefix and moves the in-progress mark with it', () => {
      const u = tail(5, [1, 1, 1]);
      u.stableTo(6, 1);
      checkInvariants(u);
      expect(u.offset).toBe(7);
      expect(ids(u.entries)).toEqual([[7, 1]]);
      expect(u.offsetInProgress).toBe(7);
    });

    it('drops everything when the last entry is durable', () => {
      const u = tail(5, [1, 1], 2);
      u.stableTo(6, 1);
      checkInvariants(u);
      expect(u.entries).toEqual([]);
      expect(u.offset).toBe(7);
      expect(u.lastIndex()).toBeUndefined();
    });

    const ignored: Array<[string, number, number]> = [
      ['the entry was replaced with another term since the write began', 6, 2],
      ['the index is below the tail (already durable)', 4, 1],
      ['the index is past the tail', 8, 1],
    ];
    for (const [name, index, term] of ignored) {
      it(`ignores a report when ${name}`, () => {
        const u = tail(5, [1, 1, 1], 3);
        u.stableTo(index, term);
        checkInvariants(u);
        expect(u.offset).toBe(5);
        expect(u.entries).toHaveLength(3);
      });
    }

    it('ignores a report at the snapshot index: the snapshot has its own report', () => {
      const u = tail(5, []);
      u.restore(snapshotAt(4, 1));
      u.stableTo(4, 1);
      checkInvariants(u);
      expect(u.snapshot).not.toBeNull();
      expect(u.offset).toBe(5);
    });
  });

  it('restore puts a snapshot in place of the whole tail, handed out once, cleared when durable', () => {
    const u = tail(5, [1, 1], 1);
    const snapshot = snapshotAt(9, 3);
    u.restore(snapshot);
    checkInvariants(u);
    expect(u.entries).toEqual([]);
    expect(u.offset).toBe(10);
    expect(u.offsetInProgress).toBe(10);
    expect(u.hasNext()).toBe(true);
    expect(u.nextSnapshot()).toBe(snapshot);
    u.acceptInProgress();
    expect(u.nextSnapshot()).toBeNull();
    expect(u.hasNext()).toBe(false);
    u.stableSnapshotTo(8);
    expect(u.snapshot).toBe(snapshot);
    u.stableSnapshotTo(9);
    expect(u.snapshot).toBeNull();
    expect(u.snapshotInProgress).toBe(false);
  });

  it('slice returns [lo, hi) cut to the byte limit, and always at least one entry', () => {
    const u = new Unstable(5);
    u.truncateAndAppend(entries(5, [1, 1, 1, 1], 10));
    const perEntry = entryBytes(u.entries[0]!);
    expect(ids(u.slice(6, 8, Number.MAX_SAFE_INTEGER))).toEqual([
      [6, 1],
      [7, 1],
    ]);
    expect(u.slice(5, 9, 2 * perEntry)).toHaveLength(2);
    expect(u.slice(5, 9, 2 * perEntry - 1)).toHaveLength(1);
    expect(u.slice(5, 9, 0)).toHaveLength(1);
  });
});
