// The contracts of a partition log: its options, one write of a driver turn, what the engine
// hands it, and what recovery found.

import type { ConfState, Entry, HardState, Snapshot } from '../raft/types.js';
import type { StorageError } from './errors.js';
import type { DescribeEntry } from './frame.js';
import type { IoExecutor } from './io-executor.js';
import type { WriterContext } from './log-writer.js';
import type { MemoryAccount } from './memory-chunks.js';
import type { PartitionLog } from './partition-log.js';
import type { Segment } from './segment.js';
import type { LogStart, StoredSnapshot } from './state-store.js';

export type PersistenceMode = 'sync' | 'async' | 'memory';

export interface PartitionLogOptions {
  mode: PersistenceMode;
  /** Record range of an entry, so reads by offset need no payload parsing. Default: none. */
  describeEntry?: DescribeEntry;
  /** A write with this persistId is durable per the mode; called in submission order. */
  onPersisted?: (persistId: number) => void;
  /** Entries that entries() reported EntriesPending for are loaded: retry. */
  onEntriesAvailable?: () => void;
  /** The log failed (an I/O error); it takes no more writes. */
  onError?: (error: StorageError) => void;
  /** Bytes of recent entries kept in memory (entries not yet written are kept regardless). */
  cacheBytesMax?: number;
}

/** One log's share of a driver turn: what its Ready says to persist. */
export interface LogWrite {
  log: PartitionLog;
  entries: readonly Entry[];
  hardState: HardState | null;
  snapshot: Snapshot | null;
  confState?: ConfState | null;
  mustSync: boolean;
  /** Reported back through onPersisted once durable; 0 when nothing needs reporting. */
  persistId: number;
}

/** What the engine hands a log: shared resources and limits. */
export interface LogContext extends WriterContext {
  executor: IoExecutor;
  logId: number;
  groupId: string;
  cacheBytesMax: number;
  /** Bytes read from disk at least, per load for entries(). */
  loadBytesMin: number;
  indexIntervalBytes: number;
  /** Memory mode: what the node's memory-mode logs hold, and the size of their chunks. */
  memoryAccount: MemoryAccount;
  memoryChunkBytesMax: number;
}

/** What recovery found, handed to the constructor. */
export interface RecoveredLog {
  segments: Segment[];
  /** Segments taken from their stored index, not read at open: the scrub verifies them. */
  unverified: { segment: Segment; endPosition: number }[];
  start: LogStart;
  lastIndex: number;
  termRuns: number[];
  snapshot: StoredSnapshot;
  hardState: HardState;
  confState: ConfState;
  applied: number;
  mayHaveLostTail: boolean;
  /** Bytes of segment files the open read (the rest came from stored indexes). */
  scannedBytes: number;
}
