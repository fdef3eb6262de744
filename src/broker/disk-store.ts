// The broker's NodeStore on the real storage engine: segment logs, lmdb state, worker pool.
// Completions come back by persistId through each log's onPersisted; this adapter maps them to
// the driver's per-write callbacks, in order.

import type { Entry, InitialState, Snapshot } from '../raft/index.js';
import {
  type IoExecutorStats,
  type KeyValueArea,
  type MemoryAppendPlan,
  type PartitionLog,
  StorageEngine,
  type StorageEngineOptions,
} from '../storage/index.js';
import type { EntryOffsets, GroupStore, GroupWrite, NodeStore } from './group-store.js';
import type { PersistenceMode } from './metadata-state.js';
import { entryOffsets, entryRecordRange } from './partition-machine.js';
import {
  decodeProducerCheckpoint,
  encodeProducerCheckpoint,
  type ProducerCheckpoint,
} from './producer-checkpoint.js';

/**
 * Producer-table checkpoints in the broker's key-value area, two per group: a save replaces the
 * older, so when a crash leaves the newest past what the log kept, the one before still serves.
 */
class CheckpointArea {
  constructor(private readonly kv: KeyValueArea) {}

  /** Newest first. */
  load(groupId: number): ProducerCheckpoint[] {
    const found: ProducerCheckpoint[] = [];
    for (const slot of [0, 1]) {
      const data = this.kv.get(CheckpointArea.key(groupId, slot));
      const checkpoint = data ? decodeProducerCheckpoint(data) : null;
      if (checkpoint) found.push(checkpoint);
    }
    return found.sort((a, b) => b.index - a.index);
  }

  save(groupId: number, checkpoint: ProducerCheckpoint): Promise<void> {
    const stored = [0, 1].map((slot) => {
      const data = this.kv.get(CheckpointArea.key(groupId, slot));
      return data ? (decodeProducerCheckpoint(data)?.index ?? 0) : 0;
    });
    const older = stored[0]! <= stored[1]! ? 0 : 1;
    return this.kv.put(CheckpointArea.key(groupId, older), encodeProducerCheckpoint(checkpoint));
  }

  async remove(groupId: number): Promise<void> {
    for (const slot of [0, 1]) await this.kv.remove(CheckpointArea.key(groupId, slot));
  }

  private static key(groupId: number, slot: number): string {
    return `producer-checkpoint/${groupId}/${slot}`;
  }
}

/** Entries read per step when scanning back for the last entry with records. */
const SCAN_BACK_ENTRIES = 64;

class DiskGroupStore implements GroupStore {
  /** Callbacks of writes not yet durable, by the persistId this adapter gave them. */
  readonly waiting = new Map<number, () => void>();
  private entriesAvailable: (() => void) | null = null;

  // Absent without a checkpoint area (memory mode): nobody builds a table snapshot for nothing.
  readonly producerCheckpoints?: () => ProducerCheckpoint[];
  readonly saveProducerCheckpoint?: (checkpoint: ProducerCheckpoint) => Promise<void>;

  constructor(
    readonly log: PartitionLog,
    readonly mode: PersistenceMode,
    checkpoints: CheckpointArea | null,
    groupId: number,
  ) {
    if (checkpoints) {
      this.producerCheckpoints = () => checkpoints.load(groupId);
      this.saveProducerCheckpoint = (checkpoint) => checkpoints.save(groupId, checkpoint);
    }
  }

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
  offsetForTime(timestampMs: number): number | null {
    return this.log.offsetForTime(timestampMs);
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

  private readonly checkpoints: CheckpointArea;

  private constructor(readonly engine: StorageEngine) {
    this.checkpoints = new CheckpointArea(engine.kv);
  }

  static async open(options: StorageEngineOptions): Promise<DiskNodeStore> {
    return new DiskNodeStore(await StorageEngine.open(options));
  }

  async openGroup(groupId: number, mode: PersistenceMode): Promise<GroupStore> {
    let store: DiskGroupStore | null = null;
    const log = await this.engine.openLog(String(groupId), {
      mode,
      describeEntry: entryRecordRange,
      onPersisted: (persistId) => store?.persisted(persistId),
      onEntriesAvailable: () => store?.entriesLoaded(),
      onError: (error) => this.groupFailed?.(groupId, error),
    });
    // A memory-mode log does not outlive the process: nothing to checkpoint.
    store = new DiskGroupStore(log, mode, mode === 'memory' ? null : this.checkpoints, groupId);
    return store;
  }

  async dropGroup(groupId: number): Promise<void> {
    await this.checkpoints.remove(groupId);
    await this.engine.dropLog(String(groupId));
  }

  async discardGroup(groupId: number): Promise<string | null> {
    await this.checkpoints.remove(groupId);
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
