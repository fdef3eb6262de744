// RaftLog on its own: the durable log in storage plus the unstable tail, read as one; the
// matching, appending and backtracking rules the follower and leader lean on; and what may be
// applied (committed and durable here).

import { describe, expect, it } from 'vitest';
import { AssertionError, entryBytes, isRaftError, MemoryStorage } from '../../src/raft/index.js';
import { RaftLog } from '../../src/raft/raft-log.js';
import { entries, ids, snapshotAt, storageWith } from './log-helpers.js';

/** Reports everything in the tail durable, and stores it, as a driver would after its write. */
function persistAll(log: RaftLog, storage: MemoryStorage): void {
  const tail = log.unstable.nextEntries();
  log.unstable.acceptInProgress();
  storage.append(tail);
  if (tail.length > 0) {
    const last = tail[tail.length - 1]!;
    log.unstable.stableTo(last.index, last.term);
  }
}

function raftError(f: () => unknown): unknown {
  try {
    f();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('RaftLog', () => {
  it('starts after its storage: committed at the snapshot, applied where the driver says', () => {
    const storage = storageWith(3, 2, [2, 3]);
    const log = new RaftLog(storage, 0);
    expect([log.firstIndex(), log.lastIndex(), log.lastTerm()]).toEqual([4, 5, 3]);
    expect([log.committed, log.applied, log.applying]).toEqual([3, 3, 3]);
    expect(log.stableIndex()).toBe(5);
    expect(new RaftLog(storage, 4).applied).toBe(4);
  });

  it('reads terms from the tail, then storage; Compacted below the snapshot, Unavailable past the end', () => {
    const storage = storageWith(3, 2, [2, 3]);
    const log = new RaftLog(storage, 0);
    log.append(entries(6, [4]));
    expect([3, 4, 5, 6].map((i) => log.term(i))).toEqual([2, 2, 3, 4]);
    expect(
      isRaftError(
        raftError(() => log.term(2)),
        'Compacted',
      ),
    ).toBe(true);
    expect(
      isRaftError(
        raftError(() => log.term(7)),
        'Unavailable',
      ),
    ).toBe(true);
    expect([2, 7].map((i) => log.termOrZero(i))).toEqual([0, 0]);
  });

  it('matchTerm: (0, 0) always matches; a term of 0 past the end does not', () => {
    const log = new RaftLog(storageWith(0, 0, [1, 1]), 0);
    expect(log.matchTerm(0, 0)).toBe(true);
    expect(log.matchTerm(2, 1)).toBe(true);
    expect(log.matchTerm(2, 2)).toBe(false);
    expect(log.matchTerm(3, 0)).toBe(false);
    expect(log.matchTerm(3, 1)).toBe(false);
  });

  it('isUpToDate: a later last term wins; with equal terms, the longer log', () => {
    const log = new RaftLog(storageWith(0, 0, [1, 2, 3]), 0);
    const table: Array<[lastIndex: number, lastTerm: number, upToDate: boolean]> = [
      [2, 4, true],
      [3, 4, true],
      [4, 4, true],
      [2, 2, false],
      [3, 2, false],
      [4, 2, false],
      [2, 3, false],
      [3, 3, true],
      [4, 3, true],
    ];
    for (const [lastIndex, lastTerm, expected] of table) {
      expect(log.isUpToDate(lastIndex, lastTerm), `(${lastIndex}, t${lastTerm})`).toBe(expected);
    }
  });

  describe('maybeAppend', () => {
    // The log before each case: 1/t1 2/t2 3/t3, committed 1.
    const cases: Array<{
      name: string;
      prev: [index: number, term: number];
      commit: number;
      append: ReturnType<typeof entries>;
      lastNew: number;
      log: Array<[number, number]>;
      committed: number;
    }> = [
      {
        name: 'refuses when the term at prevIndex differs',
        prev: [3, 2],
        commit: 3,
        append: entries(4, [4]),
        lastNew: -1,
        log: [
          [1, 1],
          [2, 2],
          [3, 3],
        ],
        committed: 1,
      },
      {
        name: 'refuses when prevIndex is past the end',
        prev: [4, 4],
        commit: 3,
        append: entries(5, [4]),
        lastNew: -1,
        log: [
          [1, 1],
          [2, 2],
          [3, 3],
        ],
        committed: 1,
      },
      {
        name: 'accepts an empty append at the last entry and commits up to it',
        prev: [3, 3],
        commit: 9,
        append: [],
        lastNew: 3,
        log: [
          [1, 1],
          [2, 2],
          [3, 3],
        ],
        committed: 3,
      },
      {
        name: 'commits no further than the last entry this App vouches for',
        prev: [1, 1],
        commit: 9,
        append: [],
        lastNew: 1,
        log: [
          [1, 1],
          [2, 2],
          [3, 3],
        ],
        committed: 1,
      },
      {
        name: 'appends new entries after the last one',
        prev: [3, 3],
        commit: 4,
        append: entries(4, [4, 4]),
        lastNew: 5,
        log: [
          [1, 1],
          [2, 2],
          [3, 3],
          [4, 4],
          [5, 4],
        ],
        committed: 4,
      },
      {
        name: 'keeps entries it already has, and the tail after them',
        prev: [1, 1],
        commit: 2,
        append: entries(2, [2]),
        lastNew: 2,
        log: [
          [1, 1],
          [2, 2],
          [3, 3],
        ],
        committed: 2,
      },
      {
        name: 'replaces a conflicting suffix from the first conflict on',
        prev: [1, 1],
        commit: 1,
        append: entries(2, [2, 4]),
        lastNew: 3,
        log: [
          [1, 1],
          [2, 2],
          [3, 4],
        ],
        committed: 1,
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const storage = storageWith(0, 0, [1, 2, 3]);
        const log = new RaftLog(storage, 0);
        log.commitTo(1);
        expect(log.maybeAppend(c.prev[0], c.prev[1], c.commit, c.append)).toBe(c.lastNew);
        expect(ids(log.slice(1, log.lastIndex() + 1, Number.MAX_SAFE_INTEGER))).toEqual(c.log);
        expect(log.committed).toBe(c.committed);
      });
    }

    it('crashes rather than replace a committed entry', () => {
      const log = new RaftLog(storageWith(0, 0, [1, 2, 3]), 0);
      log.commitTo(2);
      expect(() => log.maybeAppend(1, 1, 2, entries(2, [4]))).toThrow(AssertionError);
    });
  });

  describe('findConflictByTerm (fast backtracking)', () => {
    // Log 1/t2 2/t2 3/t5 4/t5 5/t5, whole or compacted up to 2.
    const table: Array<[index: number, term: number, expected: [number, number]]> = [
      [5, 6, [5, 5]],
      [5, 5, [5, 5]],
      [5, 4, [2, 2]],
      [5, 2, [2, 2]],
      [9, 4, [2, 2]],
      [3, 2, [2, 2]],
    ];
    it('finds the last index at or below `index` whose term is at most `term`', () => {
      const log = new RaftLog(storageWith(0, 0, [2, 2, 5, 5, 5]), 0);
      for (const [index, term, expected] of table) {
        const found = log.findConflictByTerm(index, term);
        expect([found.index, found.term], `(${index}, t${term})`).toEqual(expected);
      }
      const start = log.findConflictByTerm(5, 1);
      expect([start.index, start.term]).toEqual([0, 0]);
    });

    it('stops at the snapshot when the log is compacted', () => {
      const log = new RaftLog(storageWith(2, 2, [5, 5, 5]), 0);
      for (const [index, term, expected] of table) {
        const found = log.findConflictByTerm(index, term);
        expect([found.index, found.term], `(${index}, t${term})`).toEqual(expected);
      }
      const start = log.findConflictByTerm(5, 1);
      expect([start.index, start.term]).toEqual([2, 2]);
    });
  });

  it('append replaces a conflicting suffix, including stored entries, but never a committed one', () => {
    const storage = storageWith(0, 0, [1, 1, 1]);
    const log = new RaftLog(storage, 0);
    log.commitTo(1);
    expect(log.append(entries(3, [2, 2]))).toBe(4);
    expect(ids(log.slice(1, 5, Number.MAX_SAFE_INTEGER))).toEqual([
      [1, 1],
      [2, 1],
      [3, 2],
      [4, 2],
    ]);
    // Storage still holds 3/t1 until the driver writes the new tail; the log reads the tail.
    expect(log.stableIndex()).toBe(2);
    expect(log.append([])).toBe(4);
    expect(() => log.append(entries(1, [3]))).toThrow(AssertionError);
  });

  it('commitTo only moves forward, and never past the last index', () => {
    const log = new RaftLog(storageWith(0, 0, [1, 1, 1]), 0);
    log.commitTo(2);
    log.commitTo(1);
    expect(log.committed).toBe(2);
    expect(() => log.commitTo(4)).toThrow(AssertionError);
  });

  it('hands out for applying only what is committed and durable here', () => {
    const storage = storageWith(0, 0, [1, 1]);
    const log = new RaftLog(storage, 0);
    log.append(entries(3, [1, 1]));
    log.commitTo(4);
    // 3 and 4 are committed (a quorum has them) but not yet durable on this node.
    expect(ids(log.nextCommittedEntries(Number.MAX_SAFE_INTEGER))).toEqual([
      [1, 1],
      [2, 1],
    ]);
    log.applying = 2;
    expect(log.hasNextCommittedEntries()).toBe(false);
    persistAll(log, storage);
    expect(ids(log.nextCommittedEntries(Number.MAX_SAFE_INTEGER))).toEqual([
      [3, 1],
      [4, 1],
    ]);
    // The byte limit cuts, but always lets one entry through.
    expect(log.nextCommittedEntries(0)).toHaveLength(1);
  });

  it('appliedTo stays within [applied, committed]', () => {
    const log = new RaftLog(storageWith(0, 0, [1, 1, 1]), 0);
    log.commitTo(2);
    log.appliedTo(2);
    expect([log.applied, log.applying]).toEqual([2, 2]);
    expect(() => log.appliedTo(3)).toThrow(AssertionError);
    expect(() => log.appliedTo(1)).toThrow(AssertionError);
  });

  describe('slice across storage and the tail', () => {
    function split(): RaftLog {
      // 1..3 stored, 4..6 in the tail; every entry 10 data bytes.
      const storage = new MemoryStorage();
      storage.append(entries(1, [1, 1, 1], 10));
      const log = new RaftLog(storage, 0);
      log.append(entries(4, [2, 2, 2], 10));
      return log;
    }
    const per = entryBytes(entries(1, [1], 10)[0]!);

    it('joins the stored part and the tail', () => {
      expect(ids(split().slice(2, 6, Number.MAX_SAFE_INTEGER))).toEqual([
        [2, 1],
        [3, 1],
        [4, 2],
        [5, 2],
      ]);
    });

    it('stops at the byte limit on either side of the boundary, with at least one entry', () => {
      const log = split();
      expect(log.slice(2, 7, per)).toHaveLength(1);
      expect(log.slice(2, 7, 2 * per)).toHaveLength(2);
      expect(log.slice(2, 7, 3 * per - 1)).toHaveLength(2);
      expect(log.slice(2, 7, 3 * per)).toHaveLength(3);
      expect(log.slice(2, 7, 4 * per)).toHaveLength(4);
      expect(log.slice(5, 7, 0)).toHaveLength(1);
      expect(log.slice(3, 3, 0)).toEqual([]);
    });

    it('refuses below the first index and past the last', () => {
      const log = new RaftLog(storageWith(3, 1, [1, 1]), 0);
      expect(
        isRaftError(
          raftError(() => log.slice(3, 5, 100)),
          'Compacted',
        ),
      ).toBe(true);
      expect(() => log.slice(4, 7, 100)).toThrow(AssertionError);
    });
  });

  it('restore puts a snapshot in place of the whole log, committed, applied once it is durable', () => {
    const storage = storageWith(0, 0, [1, 1]);
    const log = new RaftLog(storage, 0);
    const snapshot = snapshotAt(10, 3);
    log.restore(snapshot);
    expect([log.firstIndex(), log.lastIndex(), log.committed, log.term(10)]).toEqual([11, 10, 10, 3]);
    expect(log.snapshot()).toBe(snapshot);
    // Nothing is applied from the log while the snapshot is not durable.
    expect(log.hasNextCommittedEntries()).toBe(false);
    log.append(entries(11, [3]));
    expect(log.lastIndex()).toBe(11);
    storage.applySnapshot(snapshot);
    log.unstable.stableSnapshotTo(10);
    expect(log.snapshot()).toBe(snapshot);
    expect(log.firstIndex()).toBe(11);
  });
});
