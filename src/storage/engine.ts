// The storage of one node: the lmdb environment, the I/O worker pool and every partition log.
// The driver calls write() once per turn with every log's writes; each log starts one I/O task
// for them, and the tasks of different logs run in parallel in the pool (see log-writer.ts).
// It also owns the node's shared write-ahead file for sync-mode logs (wal.ts) and its checkpoints,
// and the background work: async-mode fsyncs within flushIntervalMs, lazy state writes, and the
// clean-shutdown marker that, with the boot id, tells whether a power loss may have eaten
// async-mode writes.

import fs from 'node:fs/promises';
import path from 'node:path';
import { assert } from '../raft/errors.js';
import { DEFAULTS, type ResolvedOptions, type StorageEngineOptions } from './engine-options.js';
import { StorageError } from './errors.js';
import { nodeFileSystem } from './file-system.js';
import { IoExecutor, type IoExecutorStats, inProcessBackend, nodeBackend } from './io-executor.js';
import { KeyValueArea } from './kv.js';
import { MemoryAccount } from './memory-chunks.js';
import { type LogContext, type LogWrite, PartitionLog, type PartitionLogOptions } from './partition-log.js';
import { recoverLog } from './recovery.js';
import { Scrubber } from './scrub.js';
import { StateStore } from './state-store.js';
import {
  type RecoveredWal,
  recoverWal,
  WAL_KIND_SYNCED,
  type WalRecord,
  type WalStats,
  WalWriter,
} from './wal.js';

export class StorageEngine {
  readonly dataDir: string;
  /**
   * The previous run did not shut down cleanly and the machine rebooted since (or the boot id is
   * unknown): async-mode logs may have lost writes they acknowledged.
   */
  readonly powerLossSuspected: boolean;
  /** The broker's small durable key-value area (dedup state, group offsets, topic metadata). */
  readonly kv: KeyValueArea;
  private readonly options: ResolvedOptions;
  private readonly store: StateStore;
  private readonly executor: IoExecutor;
  private readonly bootId: string;
  private readonly logs = new Map<string, PartitionLog>();
  /** What the memory-mode logs hold, all together. */
  private readonly memoryAccount = new MemoryAccount();
  private readonly opening = new Set<string>();
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  /** Sync mode's shared write-ahead file (null when the option is off). */
  private readonly wal: WalWriter | null;
  /** WAL records of earlier runs for logs not opened yet (replayed by openLog). */
  private readonly pendingReplay: Map<number, WalRecord[]>;
  /** WAL files of earlier runs: deleted once no log has records in them left to replay. */
  private recoveredWalFiles: { path: string; sequence: number }[];
  private readonly scrubber: Scrubber;
  /** Bytes of segment files read by the opens of logs since the engine opened. */
  private recoveryScannedBytes = 0;
  private checkpointRun: Promise<void> | null = null;
  private lastCheckpointAt = Date.now();
  private lastStateFlushAt = Date.now();
  private fsyncObserver: ((durationMs: number) => void) | null = null;

  private constructor(
    options: ResolvedOptions,
    store: StateStore,
    executor: IoExecutor,
    bootId: string,
    suspected: boolean,
    recoveredWal: RecoveredWal,
  ) {
    this.options = options;
    this.wal = options.sharedWal
      ? new WalWriter({
          executor,
          directory: walDirectory(options.dataDir),
          firstSequence: recoveredWal.nextSequence,
          windowBytesMax: options.walWindowBytesMax,
          onSync: (durationMs) => this.fsyncObserver?.(durationMs),
        })
      : null;
    this.pendingReplay = recoveredWal.records;
    this.recoveredWalFiles = recoveredWal.files;
    this.dataDir = options.dataDir;
    this.store = store;
    this.executor = executor;
    this.bootId = bootId;
    this.powerLossSuspected = suspected;
    this.kv = new KeyValueArea(store);
    this.scrubber = new Scrubber({
      bytesPerSecond: options.scrubBytesPerSecond,
      delayMs: options.scrubDelayMs,
    });
    // Half the interval: a write waits at most one period to be picked up, then one fsync.
    this.timer = setInterval(() => this.background(), Math.max(1, options.flushIntervalMs / 2));
    this.timer.unref();
  }

  static async open(options: StorageEngineOptions): Promise<StorageEngine> {
    const resolved: ResolvedOptions = { ...DEFAULTS, ...options };
    assert(resolved.flushIntervalMs > 0, 'flushIntervalMs must be positive');
    assert(resolved.stateFlushIntervalMs >= 0, 'stateFlushIntervalMs must not be negative');
    assert(resolved.segmentBytesMax >= 1024, 'segmentBytesMax must be at least 1024');
    await fs.mkdir(path.join(resolved.dataDir, 'logs'), { recursive: true });
    const store = new StateStore(resolved.dataDir);
    // Tests plug a fault-injecting file system in under the same routing as production.
    const backend = resolved.fileSystem
      ? inProcessBackend(resolved.fileSystem)
      : nodeBackend(resolved.ioThreads);
    const executor = new IoExecutor(backend, {
      threads: resolved.ioThreads,
      smallWriteBytesMax: resolved.smallWriteBytesMax,
      smallWriteStallMs: resolved.smallWriteStallMs,
    });
    // Read even with sharedWal off: files of a run that had it on still hold durable writes. In
    // this thread: nothing else waits yet, and the pool's workers take tens of ms to boot.
    const startup = resolved.fileSystem
      ? executor
      : new IoExecutor(inProcessBackend(nodeFileSystem), {
          threads: resolved.ioThreads,
          smallWriteBytesMax: resolved.smallWriteBytesMax,
          smallWriteStallMs: resolved.smallWriteStallMs,
        });
    const recoveredWal = await recoverWal(startup, walDirectory(resolved.dataDir));
    const bootId = await readBootId(resolved.bootIdPath);
    const previous = store.nodeRecord();
    const suspected =
      previous !== undefined && !previous.cleanShutdown && (bootId === '' || previous.bootId !== bootId);
    store.putNodeRecord({ bootId, cleanShutdown: false });
    await store.durable();
    return new StorageEngine(resolved, store, executor, bootId, suspected, recoveredWal);
  }

  /**
   * Opens (recovering) or creates the log of a group. Throws StorageError CorruptLog, naming the
   * file and byte offset, when a frame before the tail is bad: rebuild that replica from peers.
   */
  async openLog(groupId: string, options: PartitionLogOptions): Promise<PartitionLog> {
    this.assertOpen();
    if (this.logs.has(groupId) || this.opening.has(groupId)) {
      throw new StorageError('AlreadyOpen', `log ${groupId} is already open`);
    }
    this.opening.add(groupId);
    try {
      const logId = await this.store.logIdFor(groupId);
      const directory = this.logDirectory(logId);
      // WAL records of an older generation were replaced by a snapshot: never replayed.
      const generation = this.store.logStart(logId)?.generation ?? 0;
      const walRecords = (this.pendingReplay.get(logId) ?? []).filter(
        (record) => record.generation === generation,
      );
      const recovered = await recoverLog({
        store: this.store,
        executor: this.executor,
        logId,
        directory,
        mode: options.mode,
        indexIntervalBytes: this.options.indexIntervalBytes,
        powerLossSuspected: this.powerLossSuspected,
        walCoveredFrom: walCoveredFrom(walRecords),
      });
      const log = new PartitionLog(this.logContext(groupId, logId, directory, options), options, recovered);
      if (options.mode !== 'memory') await log.replayWal(walRecords);
      // Replayed and synced into the segment files: the old WAL files no longer matter to this log.
      this.pendingReplay.delete(logId);
      this.logs.set(groupId, log);
      this.scrubber.add(log, recovered.unverified);
      this.recoveryScannedBytes += recovered.scannedBytes;
      return log;
    } finally {
      this.opening.delete(groupId);
    }
  }

  private logContext(
    groupId: string,
    logId: number,
    directory: string,
    options: PartitionLogOptions,
  ): LogContext {
    return {
      store: this.store,
      executor: this.executor,
      logId,
      groupId,
      directory,
      cacheBytesMax: options.cacheBytesMax ?? this.options.cacheBytesMax,
      loadBytesMin: this.options.loadBytesMin,
      indexIntervalBytes: this.options.indexIntervalBytes,
      memoryAccount: this.memoryAccount,
      memoryChunkBytesMax: this.options.memoryChunkBytesMax,
      segmentBytesMax: this.options.segmentBytesMax,
      taskBytesMax: this.options.taskBytesMax,
      wal: this.wal,
      walDirectBytesMin: this.options.walDirectBytesMin,
      onFsync: (durationMs) => this.fsyncObserver?.(durationMs),
    };
  }

  /**
   * Metrics: called after each log write task that fdatasynced, and after each WAL window's
   * fdatasync (sync mode), with the time spent in it.
   */
  observeFsync(observer: (durationMs: number) => void): void {
    this.fsyncObserver = observer;
  }

  private logDirectory(logId: number): string {
    return path.join(this.dataDir, 'logs', String(logId));
  }

  /** Closes a log and removes its files and state. Works on a log that is not open too. */
  async dropLog(groupId: string): Promise<void> {
    this.assertOpen();
    const log = this.logs.get(groupId);
    if (log !== undefined) {
      await log.close();
      this.logs.delete(groupId);
    }
    const logId = this.store.findLogId(groupId);
    if (logId === undefined) return;
    this.pendingReplay.delete(logId);
    this.store.removeLog(groupId, logId);
    await this.store.durable();
    const directory = this.logDirectory(logId);
    await this.executor.steps({
      kind: 'steps',
      steps: [
        { kind: 'removeDirectory', path: directory },
        { kind: 'syncDirectory', path: path.dirname(directory) },
      ],
    });
  }

  /**
   * For a log that refused to open (CorruptLog): moves its segment files aside, to
   * `<dataDir>/corrupt/<logId>-<ms>` for inspection, and restarts it empty at its snapshot (lmdb
   * keeps the snapshot, hard state and membership) with the lost-tail flag set. The next openLog
   * then returns an empty log with `mayHaveLostTail`: its replica must rejoin as recovering and
   * catch up from its peers. Returns where the files went (null: the log had no files).
   */
  async discardLog(groupId: string): Promise<string | null> {
    this.assertOpen();
    assert(!this.opening.has(groupId), `discardLog(${groupId}): the log is opening`);
    // Open: it failed (the scrub found corruption) or its replica is being rebuilt; close it first.
    const open = this.logs.get(groupId);
    if (open !== undefined) {
      this.logs.delete(groupId);
      await open.close();
    }
    const logId = this.store.findLogId(groupId);
    if (logId === undefined) return null;
    const snapshot = this.store.snapshot(logId);
    const index = snapshot?.metadata.index ?? 0;
    const generation = (this.store.logStart(logId)?.generation ?? 0) + 1;
    // State first: should we crash before the move, the new generation makes recovery delete
    // the old files instead of scanning them again.
    this.store.putLogStart(logId, {
      firstIndex: index + 1,
      prevTerm: snapshot?.metadata.term ?? 0,
      generation,
    });
    this.store.putApplied(logId, index);
    this.store.putLostTail(logId, true);
    this.store.removeSegmentIndexes(logId);
    await this.store.durable();
    const aside = path.join(this.dataDir, 'corrupt', `${logId}-${Date.now()}`);
    await fs.mkdir(path.dirname(aside), { recursive: true });
    try {
      await fs.rename(this.logDirectory(logId), aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    return aside;
  }

  /**
   * One driver turn: every log's writes. Each is visible to reads at once; each log's writes
   * become durable (onPersisted) in submission order, per the log's mode.
   */
  write(writes: readonly LogWrite[]): void {
    this.assertOpen();
    for (const write of writes) write.log.submit(write);
    for (const write of writes) write.log.kick();
  }

  /** Test aid: the logs open now. */
  openLogs(): PartitionLog[] {
    return [...this.logs.values()];
  }

  /** Where I/O tasks ran: small writes on the event loop, fdatasyncs on libuv's threadpool. */
  ioStats(): IoExecutorStats {
    return { ...this.executor.stats };
  }

  /**
   * Bytes the memory-mode logs hold in process memory: their chunks at full size, plus a fixed
   * bookkeeping cost per entry (memory-chunks.ts). Kept up to date by every append and cut.
   */
  memoryModeBytes(): number {
    return this.memoryAccount.bytes;
  }

  /** Test aid: resolves once the background scrub has verified every file queued so far. */
  scrubIdle(): Promise<void> {
    return this.scrubber.idle();
  }

  /**
   * Bytes of segment files that log opens read (past their recovery point), and that the
   * background scrub verified, since the engine opened.
   */
  recoveryStats(): { scannedBytes: number; scrubbedBytes: number } {
    return { scannedBytes: this.recoveryScannedBytes, scrubbedBytes: this.scrubber.verifiedBytes };
  }

  /** Counters of the shared WAL (null when it is off): `syncs` is one per window. */
  walStats(): WalStats | null {
    return this.wal === null ? null : { ...this.wal.stats };
  }

  private background(): void {
    const nowMs = Date.now();
    const flushState = nowMs - this.lastStateFlushAt >= this.options.stateFlushIntervalMs;
    if (flushState) this.lastStateFlushAt = nowMs;
    for (const log of this.logs.values()) {
      if (log.mode === 'async') log.syncIfDirty();
      if (flushState) log.flushState();
    }
    if (this.wal !== null && this.checkpointRun === null) {
      const sinceMs = nowMs - this.lastCheckpointAt;
      const bytes = this.wal.currentBytes;
      const recoveredDeletable = this.recoveredWalFiles.length > 0 && this.pendingReplay.size === 0;
      const due =
        bytes >= this.options.walBytesMax ||
        (sinceMs >= this.options.walCheckpointIntervalMs && (bytes > 0 || recoveredDeletable));
      if (due) {
        this.checkpointRun = this.checkpoint(this.wal).finally(() => {
          this.checkpointRun = null;
          this.lastCheckpointAt = Date.now();
        });
      }
    }
  }

  /**
   * Rolls the WAL to a new file, has every sync-mode log fdatasync its segment file behind what it
   * handed the WAL, then deletes the WAL files before the new one: every record in them is now in
   * a synced segment. Off the ack path: appends go on into the new file meanwhile.
   */
  private async checkpoint(wal: WalWriter): Promise<void> {
    const sealed = wal.roll() ?? [];
    const synced = await Promise.all([...this.logs.values()].map((log) => log.checkpoint()));
    // A failed log never syncs: its records stay in the WAL, replayed when it opens next time.
    if (!synced.every(Boolean)) return;
    const files = [...sealed];
    if (this.pendingReplay.size === 0) {
      files.push(...this.recoveredWalFiles);
      this.recoveredWalFiles = [];
    }
    try {
      await wal.deleteFiles(files);
    } catch {
      // The files stay; a later checkpoint or the next open deals with them (replay is idempotent).
    }
  }

  /** Flushes and syncs every log, marks a clean shutdown, and stops the pool. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.scrubber.stop();
    await this.checkpointRun;
    const logs = [...this.logs.values()];
    await Promise.all(logs.map((log) => log.close()));
    this.logs.clear();
    if (this.wal !== null) {
      await this.wal.idle();
      // Every open log synced its segment files: the WAL of this run is covered, unless a log
      // failed (its records must stay) or records of an earlier run wait for logs not opened.
      const failed = logs.some((log) => log.failed !== null);
      if (this.pendingReplay.size === 0 && !failed) {
        await this.wal.closeAndDelete();
        await this.wal.deleteFiles(this.recoveredWalFiles);
      } else {
        await this.wal.closeFiles();
      }
    }
    this.store.putNodeRecord({ bootId: this.bootId, cleanShutdown: true });
    await this.store.close();
    await this.executor.close();
  }

  /**
   * Tests: stop as a crash would, without syncing logs or marking a clean shutdown (lmdb is
   * closed, which keeps what it committed, as a process crash does).
   */
  async abandon(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.scrubber.stop();
    await this.checkpointRun;
    await Promise.all([...this.logs.values()].map((log) => log.idle()));
    this.logs.clear();
    if (this.wal !== null) {
      await this.wal.idle();
      // Best effort: after an injected crash the file layer refuses every call.
      await this.wal.closeFiles().catch(() => {});
    }
    await this.store.close();
    await this.executor.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new StorageError('Closed', 'the storage engine is closed');
  }
}

async function readBootId(bootIdPath: string): Promise<string> {
  try {
    return (await fs.readFile(bootIdPath, 'utf8')).trim();
  } catch {
    return ''; // not Linux: every unclean shutdown counts as a possible power loss
  }
}

function walDirectory(dataDir: string): string {
  return path.join(dataDir, 'wal');
}

/**
 * Where the oldest frame that replay may rewrite was written: the first frame record after the
 * log's last "synced" record (segment bytes before it were synced). Null when there is none.
 */
function walCoveredFrom(records: readonly WalRecord[]): { sequence: number; position: number } | null {
  let first: WalRecord | null = null;
  for (const record of records) {
    if (record.kind === WAL_KIND_SYNCED) first = null;
    else first ??= record;
  }
  return first === null ? null : { sequence: first.segmentSequence, position: first.position };
}
