// The broker's NodeStore on the real storage engine: segment logs, lmdb state, worker pool.
// Completions come back by persistId through each log's onPersisted; this adapter maps them to
// the driver's per-write callbacks, in order.

import type { Entry, InitialState, Snapshot } from '../raft/index.js';
import {
  type IoExecutorStats,
  type MemoryAppendPlan,
  type PartitionLog,
  StorageEngine,
  type StorageEngineOptions,
} from '../storage/index.js';
import type { EntryOffsets, GroupStore, GroupWrite, NodeStore } from './group-store.js';
import type { PersistenceMode } from './metadata-state.js';
import { entryOffsets } from './partition-machine.js';

/** Entries read per step when scanning back for the last entry with records. */
const SCAN_BACK_ENTRIES = 64;

class DiskGroupStore implements GroupStore {
  /** Callbacks of writes not yet durable, by the persistId this adapter gave them. */
  readonly waiting = new Map<number, () => void>();
  private entriesAvailable: (() => void) | null = null;

  constructor(
    readonly log: PartitionLog,
    readonly mode: PersistenceMode,
  ) {}

  firstIndex(): number {
    return this.log.firstIndex();
  }
  lastIndex(): number {
    return this.log.lastIndex();
  }
  term(index: number): number {
    return this.log.term(index);
  }
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.log.entries(lo, hi, maxBytes);
  }
  snapshot(): Snapshot {
    return this.log.snapshot();
  }
  initialState(): InitialState {
    return this.log.initialState();
  }
  get mayHaveLostEntries(): boolean {
    return this.log.mayHaveLostTail;
  }
  markCaughtUp(): void {
    this.log.markCaughtUp();
  }
  diskBytes(): number {
    return this.log.diskBytes();
  }
  memoryBytes(): number {
    return this.log.memoryBytes();
  }
  planMemoryAppend(dataBytes: number, after: MemoryAppendPlan | null): MemoryAppendPlan | null {
    return this.log.planMemoryAppend(dataBytes, after);
  }
  segmentSummaries(): Array<{ baseIndex: number; lastIndex: number; sizeBytes: number }> {
    return this.log.segmentSummaries();
  }
  readByOffset(fromOffset: number, maxBytes: number): Promise<Entry[]> {
    return this.log.readRecords(fromOffset, { maxBytes });
  }
  readEntries(lo: number, hi: number, maxBytes: number): Promise<Entry[]> {
    return this.log.readEntries(lo, hi, maxBytes);
  }

  async offsetsAtOrBefore(index: number): Promise<(EntryOffsets & { index: number }) | null> {
    const first = this.log.firstIndex();
    let hi = Math.min(index, this.log.lastIndex()) + 1;
    while (hi > first) {
      const lo = Math.max(first, hi - SCAN_BACK_ENTRIES);
      const entries = await this.log.readEntries(lo, hi, Number.MAX_SAFE_INTEGER);
      for (let i = entries.length - 1; i >= 0; i--) {
        const offsets = entryOffsets(entries[i]!);
        if (offsets) return { index: entries[i]!.index, ...offsets };
      }
      hi = lo;
    }
    return null;
  }

  async truncatePrefix(index: number, snapshot: Snapshot): Promise<void> {
    await this.log.createSnapshot(index, snapshot.metadata.confState, snapshot.data);
    await this.log.compact(index);
  }

  onEntriesAvailable(callback: () => void): void {
    this.entriesAvailable = callback;
  }

  entriesLoaded(): void {
    this.entriesAvailable?.();
  }

  /** Every write up to persistId is durable (the log reports in submission order). */
  persisted(persistId: number): void {
    for (const [id, callback] of this.waiting) {
      if (id > persistId) break;
      this.waiting.delete(id);
      callback();
    }
  }
}

export class DiskNodeStore implements NodeStore {
  private nextPersistId = 1;
  private groupFailed: ((groupId: number, error: Error) => void) | null = null;

  private constructor(readonly engine: StorageEngine) {}

  static async open(options: StorageEngineOptions): Promise<DiskNodeStore> {
    return new DiskNodeStore(await StorageEngine.open(options));
  }

  async openGroup(groupId: number, mode: PersistenceMode): Promise<GroupStore> {
    let store: DiskGroupStore | null = null;
    const log = await this.engine.openLog(String(groupId), {
      mode,
      describeEntry: entryOffsets,
      onPersisted: (persistId) => store?.persisted(persistId),
      onEntriesAvailable: () => store?.entriesLoaded(),
      onError: (error) => this.groupFailed?.(groupId, error),
    });
    store = new DiskGroupStore(log, mode);
    return store;
  }

  async dropGroup(groupId: number): Promise<void> {
    await this.engine.dropLog(String(groupId));
  }

  discardGroup(groupId: number): Promise<string | null> {
    return this.engine.discardLog(String(groupId));
  }

  onGroupFailed(listener: (groupId: number, error: Error) => void): void {
    this.groupFailed = listener;
  }

  submit(writes: Array<{ store: GroupStore; write: GroupWrite }>): void {
    const logWrites = [];
    for (const { store, write } of writes) {
      const disk = store as DiskGroupStore;
      // A log whose write failed takes no more: its writes are dropped, never reported durable,
      // so this replica acknowledges nothing it did not store (Raft stays safe without it).
      if (disk.log.failed !== null) continue;
      let persistId = 0;
      if (write.mustSync) {
        persistId = this.nextPersistId++;
        disk.waiting.set(persistId, write.onDurable);
      }
      logWrites.push({
        log: disk.log,
        entries: write.entries,
        hardState: write.hardState,
        snapshot: write.snapshot,
        confState: write.confState,
        mustSync: write.mustSync,
        persistId,
      });
    }
    this.engine.write(logWrites);
  }

  observeFsync(observer: (durationMs: number) => void): void {
    this.engine.observeFsync(observer);
  }

  ioStats(): IoExecutorStats {
    return this.engine.ioStats();
  }

  memoryModeBytes(): number {
    return this.engine.memoryModeBytes();
  }

  async close(): Promise<void> {
    await this.engine.close();
  }
}
