// Small builders for the log tests: entries by index and term, snapshots, and storage holding them.

import { type Entry, EntryType, MemoryStorage, type Snapshot } from '../../src/raft/index.js';

/** Entries from index `first` on, one per term in `terms`, each with `dataBytes` bytes of data. */
export function entries(first: number, terms: readonly number[], dataBytes = 1): Entry[] {
  return terms.map((term, i) => ({
    index: first + i,
    term,
    type: EntryType.Normal,
    data: new Uint8Array(dataBytes).fill(first + i),
  }));
}

export function snapshotAt(index: number, term: number): Snapshot {
  return {
    metadata: { index, term, confState: { voters: [1, 2, 3], learners: [] } },
    data: new Uint8Array(0),
  };
}

/** (index, term) of each entry: what the tests compare, data aside. */
export function ids(list: readonly Entry[]): Array<[number, number]> {
  return list.map((e) => [e.index, e.term]);
}

/**
 * Storage that holds a snapshot at `snapshotIndex` (none when 0), with entries after it of the
 * given terms.
 */
export function storageWith(
  snapshotIndex: number,
  snapshotTerm: number,
  terms: readonly number[],
): MemoryStorage {
  const storage = new MemoryStorage();
  if (snapshotIndex > 0) storage.applySnapshot(snapshotAt(snapshotIndex, snapshotTerm));
  storage.append(entries(snapshotIndex + 1, terms));
  return storage;
}
