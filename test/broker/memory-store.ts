// An in-memory NodeStore for broker tests: whole clusters in one process, no disk. Writes become
// "durable" on the next macrotask, so the async paths of the driver are exercised.

import type { EntryOffsets, GroupStore, GroupWrite, NodeStore } from '../../src/broker/group-store.js';
import type { PersistenceMode } from '../../src/broker/metadata-state.js';
import { entryOffsets } from '../../src/broker/partition-machine.js';
import {
  type ConfState,
  type Entry,
  type InitialState,
  MemoryStorage,
  type Snapshot,
} from '../../src/raft/index.js';

export class MemoryGroupStore extends MemoryStorage implements GroupStore {
  confState: ConfState = { voters: [], learners: [] };
  mayHaveLostEntries = false;

  constructor(readonly mode: PersistenceMode) {
    super();
  }

  initialState(): InitialState {
    return { hardState: { ...this.hardState }, confState: this.confState };
  }

  async readByOffset(fromOffset: number, maxBytes: number): Promise<Entry[]> {
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = this.firstIndex(); i <= this.lastIndex() && bytes < maxBytes; i++) {
      const entry = this.entries(i, i + 1, Number.MAX_SAFE_INTEGER)[0]!;
      const offsets = entryOffsets(entry);
      if (!offsets || offsets.baseOffset + offsets.recordCount <= fromOffset) continue;
      out.push(entry);
      bytes += entry.data.length;
    }
    return out;
  }

  async readEntries(lo: number, hi: number, maxBytes: number): Promise<Entry[]> {
    return this.entries(lo, hi, maxBytes);
  }

  async offsetsAtOrBefore(index: number): Promise<(EntryOffsets & { index: number }) | null> {
    for (let i = Math.min(index, this.lastIndex()); i >= this.firstIndex(); i--) {
      const offsets = entryOffsets(this.entries(i, i + 1, Number.MAX_SAFE_INTEGER)[0]!);
      if (offsets) return { index: i, ...offsets };
    }
    return null;
  }

  async truncatePrefix(index: number, snapshot: Snapshot): Promise<void> {
    this.createSnapshot(index, snapshot.metadata.confState, snapshot.data);
    this.compact(index);
  }

  onEntriesAvailable(): void {}

  markCaughtUp(): void {
    this.mayHaveLostEntries = false;
  }
}

export class MemoryNodeStore implements NodeStore {
  readonly groups = new Map<number, MemoryGroupStore>();
  writesSubmitted = 0;

  async openGroup(groupId: number, mode: PersistenceMode): Promise<GroupStore> {
    let store = this.groups.get(groupId);
    if (!store) {
      store = new MemoryGroupStore(mode);
      this.groups.set(groupId, store);
    }
    return store;
  }

  async dropGroup(groupId: number): Promise<void> {
    this.groups.delete(groupId);
  }

  submit(writes: Array<{ store: GroupStore; write: GroupWrite }>): void {
    this.writesSubmitted++;
    for (const { store, write } of writes) {
      const memory = store as MemoryGroupStore;
      if (write.snapshot) memory.applySnapshot(write.snapshot);
      memory.append(write.entries);
      if (write.hardState) memory.hardState = write.hardState;
      if (write.confState) memory.confState = write.confState;
    }
    setImmediate(() => {
      for (const { write } of writes) write.onDurable();
    });
  }

  async close(): Promise<void> {}
}
