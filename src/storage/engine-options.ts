// The options of a node's storage engine, with their defaults and why they are what they are.

import type { SyncFileSystem } from './file-system.js';
import { MEMORY_CHUNK_BYTES_MAX_DEFAULT } from './memory-chunks.js';

export interface StorageEngineOptions {
  dataDir: string;
  /** Async mode: written data is fdatasynced within this many ms. */
  flushIntervalMs?: number;
  /**
   * A commit-index-only change of a log's hard state is stored at most this often (and at close).
   * Each store is an lmdb commit with its own fdatasync; at every flushIntervalMs / 2 they cost a
   * busy node more latency than the segment fsyncs (docs/storage.md, "Lazy state").
   */
  stateFlushIntervalMs?: number;
  /** Threads of the I/O pool (they mostly wait on the disk, so more than the cores is fine). */
  ioThreads?: number;
  /** A segment file rolls once it reaches this size. */
  segmentBytesMax?: number;
  /** One sparse index point per this many bytes of segment. */
  indexIntervalBytes?: number;
  /** Per log: bytes of recent entries kept in memory (unwritten entries are kept regardless). */
  cacheBytesMax?: number;
  /** Memory mode: a log's entries are held in chunks of this size (larger entries: their own). */
  memoryChunkBytesMax?: number;
  /**
   * Per log: bytes read from disk at least when entries() misses the cache, and per read ahead
   * while a follower catches up from the segment files (a log holds two such ranges at most).
   */
  loadBytesMin?: number;
  /** Per log: bytes of frames one I/O task writes at most. */
  taskBytesMax?: number;
  /**
   * Sync mode: make a window's frames durable with one fdatasync of a shared write-ahead file
   * (true), or with one fdatasync per segment file written in it (false).
   */
  sharedWal?: boolean;
  /** A checkpoint starts once the current WAL file holds this many bytes... */
  walBytesMax?: number;
  /** ...or this long after the last one, if anything went to the WAL since. */
  walCheckpointIntervalMs?: number;
  /** Bytes one WAL write (one fdatasync) carries at most, unless one log's frames alone are more. */
  walWindowBytesMax?: number;
  /**
   * A sync-mode task writing at least this many bytes of frames fdatasyncs its own segment file
   * instead of going through the WAL (large writes cost bandwidth, which the WAL would double).
   */
  walDirectBytesMin?: number;
  /**
   * Writes of at most this many bytes with nothing else in their task (no open, fdatasync or
   * close) run on the event loop instead of the pool: a copy into the page cache costs a few
   * microseconds there, against two thread wake-ups through the pool (docs/storage.md, "Small
   * writes"). 0: every write goes through the pool.
   */
  smallWriteBytesMax?: number;
  /** A small write on the event loop that took longer than this (ms) is counted as a stall. */
  smallWriteStallMs?: number;
  /**
   * The background scrub reads segment files that a start took from their stored index, at most
   * this many bytes per second on average (0: off). See scrub.ts.
   */
  scrubBytesPerSecond?: number;
  /** The scrub starts this long after the engine opened. */
  scrubDelayMs?: number;
  /**
   * Tests: the file system under the I/O routing, run in-process instead of node:fs and the
   * worker pool (a fault-injecting layer goes here; the routing is production's).
   */
  fileSystem?: SyncFileSystem;
  /** Where the kernel's boot id is read (tests point it elsewhere). */
  bootIdPath?: string;
}

export type ResolvedOptions = Required<Omit<StorageEngineOptions, 'fileSystem'>> & {
  fileSystem?: SyncFileSystem;
};

export const DEFAULTS = {
  flushIntervalMs: 50,
  stateFlushIntervalMs: 1000,
  ioThreads: 4,
  segmentBytesMax: 64 * 1024 * 1024,
  indexIntervalBytes: 4096,
  cacheBytesMax: 4 * 1024 * 1024,
  memoryChunkBytesMax: MEMORY_CHUNK_BYTES_MAX_DEFAULT,
  // Large sequential reads for a catch-up: a read costs a worker round trip, and the sends to a
  // follower that is behind the cache wait on it when it is not ahead.
  loadBytesMin: 4 * 1024 * 1024,
  taskBytesMax: 16 * 1024 * 1024,
  sharedWal: true,
  walBytesMax: 64 * 1024 * 1024,
  walCheckpointIntervalMs: 1000,
  walWindowBytesMax: 4 * 1024 * 1024,
  walDirectBytesMin: 256 * 1024,
  smallWriteBytesMax: 64 * 1024,
  smallWriteStallMs: 5,
  bootIdPath: '/proc/sys/kernel/random/boot_id',
  // 2 GiB in about a minute: a small share of the disk, and done long before an operator would
  // have noticed the rot through a read.
  scrubBytesPerSecond: 32 * 1024 * 1024,
  scrubDelayMs: 3000,
};
