// What the broker needs from storage, per node and per Raft group. src/storage implements it
// on disk (segments, lmdb, worker pool); tests can use an in-memory implementation.

import type { ConfState, Entry, HardState, InitialState, LogStorage, Snapshot } from '../raft/index.js';
import type { IoExecutorStats, MemoryAppendPlan } from '../storage/index.js';
import type { PersistenceMode } from './metadata-state.js';
import type { ProducerCheckpoint } from './producer-checkpoint.js';

/** The writes of one Ready of one group. */
export interface GroupWrite {
  entries: Entry[];
  hardState: HardState | null;
  snapshot: Snapshot | null;
  /** Membership after conf changes applied in the previous turn, to keep across restarts. */
  confState: ConfState | null;
  /** Term/vote changed, or entries/snapshot present: completion waits for durability. */
  mustSync: boolean;
  /** Called once the write is durable per the group's persistence mode, in submission order. */
  onDurable: () => void;
}

/** The record offsets carried by one log entry. */
export interface EntryOffsets {
  baseOffset: number;
  recordCount: number;
}

export interface GroupStore extends LogStorage {
  readonly mode: PersistenceMode;
  /** Hard state and membership as stored (a new log returns term 0 and no voters). */
  initialState(): InitialState;
  /**
   * This replica may have lost acknowledged entries in the restart (memory mode, or async mode
   * after a power loss): start its core as recovering.
   */
  readonly mayHaveLostEntries: boolean;
  /** Entries whose records include offsets >= fromOffset, oldest first, about maxBytes of them. */
  readByOffset(fromOffset: number, maxBytes: number): Promise<Entry[]>;
  /**
   * The time index: an offset at or below the first stored record whose timestamp is at least
   * `timestampMs`, every stored record below it earlier; null when none reaches it (absent: no
   * index, read from the log start).
   */
  offsetForTime?(timestampMs: number): number | null;
  /** Entries in [lo, hi), about maxBytes of them (at least one), from memory or disk. */
  readEntries(lo: number, hi: number, maxBytes: number): Promise<Entry[]>;
  /**
   * The last entry with records at or below `index` and above the log start, and its offsets;
   * null if there is none. Used once when a partition opens.
   */
  offsetsAtOrBefore(index: number): Promise<(EntryOffsets & { index: number }) | null>;
  /** Records a snapshot at `index` and drops whole segments below it (retention). */
  truncatePrefix(index: number, snapshot: Snapshot): Promise<void>;
  /** Called when a range reported EntriesPending has been loaded. */
  onEntriesAvailable(callback: () => void): void;
  /** The core left `recovering`: the replica holds its group's log again. */
  markCaughtUp(): void;
  /**
   * Segment files at or above the log start, oldest first, the last being the active one; in
   * memory mode, the in-memory chunks (absent or empty: none). Retention cuts whole closed ones.
   */
  segmentSummaries?(): Array<{ baseIndex: number; lastIndex: number; sizeBytes: number }>;
  /** Bytes of the log on disk, for metrics (absent: not on disk). */
  diskBytes?(): number;
  /** Bytes a memory-mode log holds in process memory, for metrics (absent or 0: none). */
  memoryBytes?(): number;
  /**
   * What appending an entry of `dataBytes`, after those planned in `after`, would add to
   * memoryBytes() (absent, or null: not a memory-mode log).
   */
  planMemoryAppend?(dataBytes: number, after: MemoryAppendPlan | null): MemoryAppendPlan | null;
  /** The producer-table checkpoints stored beside this log, newest first (absent: none). */
  producerCheckpoints?(): ProducerCheckpoint[];
  /** Stores a producer-table checkpoint, replacing the older of the last two; resolves once durable. */
  saveProducerCheckpoint?(checkpoint: ProducerCheckpoint): Promise<void>;
}

export interface NodeStore {
  /** Opens (recovering if needed) the log of a group. */
  openGroup(groupId: number, mode: PersistenceMode): Promise<GroupStore>;
  /** Removes a group's log and everything stored for it. */
  dropGroup(groupId: number): Promise<void>;
  /**
   * The group's log refused to open as corrupt: set its files aside and restart it empty at its
   * snapshot, flagged as having lost entries. Returns where the files went (null: none).
   */
  discardGroup?(groupId: number): Promise<string | null>;
  /** Starts the writes of one driver turn, for many groups at once. */
  submit(writes: Array<{ store: GroupStore; write: GroupWrite }>): void;
  /** Flushes everything buffered and stops; no call after this. */
  close(): Promise<void>;
  /** Metrics: report the time each log write spent in fdatasync (absent: no disk). */
  observeFsync?(observer: (durationMs: number) => void): void;
  /** Metrics: where the disk's I/O tasks ran so far (absent: no disk). */
  ioStats?(): IoExecutorStats;
  /**
   * Bytes every memory-mode log of the node holds in process memory (absent: not counted). The
   * node's bound on memory-topic data is held against it.
   */
  memoryModeBytes?(): number;
  /** Called once per log whose write failed (ENOSPC, EIO); later writes to it are skipped. */
  onGroupFailed?(listener: (groupId: number, error: Error) => void): void;
}
