// One Raft group's log on this node: the synchronous LogStorage the core reads (a bounded cache of
// recent entries and an in-memory term index), the submission of writes (reflected in reads at
// once, made durable per the log's mode by a serial chain of I/O tasks, one per batch window), and
// async reads by Raft index and by record offset that never load a whole segment.

import { assert, RaftError } from '../raft/errors.js';
import type { ConfState, Entry, HardState, Snapshot } from '../raft/types.js';
import { Completions } from './completions.js';
import { EntryCache } from './entry-cache.js';
import { StorageError } from './errors.js';
import type { DescribeEntry } from './frame.js';
import type { SegmentSummary } from './log-files.js';
import { LogReader } from './log-reader.js';
import type {
  LogContext,
  LogWrite,
  PartitionLogOptions,
  PersistenceMode,
  RecoveredLog,
} from './log-types.js';
import { LogWriter } from './log-writer.js';
import { type MemoryAppendPlan, MemoryChunks } from './memory-chunks.js';
import { RaftState } from './raft-state.js';
import type { Segment } from './segment.js';
import type { LogStart } from './state-store.js';
import { TermIndex } from './term-index.js';
import { diskOffsetForTime, memoryOffsetForTime } from './time-index.js';
import type { WalRecord } from './wal.js';
import { planWalReplay } from './wal-replay.js';

export type {
  LogContext,
  LogWrite,
  PartitionLogOptions,
  PersistenceMode,
  RecoveredLog,
} from './log-types.js';

const FRAME_DATA_BYTES_TARGET = 16 * 1024 * 1024;

export class PartitionLog {
  readonly groupId: string;
  readonly mode: PersistenceMode;
  private readonly context: LogContext;
  private readonly options: PartitionLogOptions;
  private readonly writer: LogWriter | null;
  private readonly terms = new TermIndex();

  // Invariant: firstIndex - 1 <= lastIndex; term(firstIndex - 1) === prevTerm.
  private firstIndexValue: number;
  private prevTerm: number;
  private lastIndexValue: number;
  private generation: number;
  private snap: Snapshot;
  /** Hard state, membership, applied index, lost-tail flag: kept in lmdb. */
  private readonly state: RaftState;

  /** Recent entries, [cache.first, lastIndex]: in memory mode, every entry. */
  private readonly cache: EntryCache;
  /** Memory mode: where the cache's entries' data lives; retention drops whole chunks. */
  private readonly chunks: MemoryChunks | null;
  /** Reads that go to the segment files (null in memory mode). */
  private readonly reader: LogReader | null;

  /** Writes waiting to be reported durable, in submission order. */
  private readonly completions: Completions;
  private failure: StorageError | null = null;
  private closed = false;

  constructor(context: LogContext, options: PartitionLogOptions, recovered: RecoveredLog) {
    this.context = context;
    this.options = options;
    this.groupId = context.groupId;
    this.mode = options.mode;
    this.state = new RaftState(context.store, context.logId, recovered);
    this.firstIndexValue = recovered.start.firstIndex;
    this.prevTerm = recovered.start.prevTerm;
    this.generation = recovered.start.generation;
    this.lastIndexValue = recovered.lastIndex;
    this.chunks =
      this.mode === 'memory'
        ? new MemoryChunks({ account: context.memoryAccount, chunkBytesMax: context.memoryChunkBytesMax })
        : null;
    this.cache = new EntryCache(recovered.lastIndex + 1, this.chunks);
    this.snap = { metadata: recovered.snapshot.metadata, data: recovered.snapshot.data };
    const runs = recovered.termRuns;
    for (let i = 0; i < runs.length; i += 2) {
      const nextStart = i + 2 < runs.length ? runs[i + 2]! : Number.POSITIVE_INFINITY;
      if (nextStart <= this.firstIndexValue) continue; // the run ends below the log start
      this.terms.append(Math.max(runs[i]!, this.firstIndexValue), runs[i + 1]!);
    }
    this.writer =
      this.mode === 'memory'
        ? null
        : new LogWriter(context, this.mode, recovered.segments, recovered.lastIndex, this.generation, {
            onBatchDone: () => this.afterBatch(),
            onFailure: (error) => this.fail(error),
          });
    this.completions = new Completions({
      completedSeq: () => this.writer?.completedSeq ?? Number.POSITIVE_INFINITY,
      stateDurable: () => context.store.durable(),
      onPersisted: options.onPersisted,
      onFailure: (error) => this.fail(error),
      failed: () => this.failure !== null,
    });
    this.reader =
      this.writer === null
        ? null
        : new LogReader(context, this.writer.files, {
            firstIndex: () => this.firstIndexValue,
            cacheFirst: () => this.cache.first,
            onEntriesAvailable: () => this.options.onEntriesAvailable?.(),
            onFailure: (error) => this.fail(error),
          });
  }

  // ---- LogStorage (synchronous) ------------------------------------------------------------

  firstIndex(): number {
    return this.firstIndexValue;
  }

  lastIndex(): number {
    return this.lastIndexValue;
  }

  term(index: number): number {
    if (index === this.firstIndexValue - 1) return this.prevTerm;
    if (index < this.firstIndexValue - 1) {
      throw new RaftError('Compacted', `term(${index}): compacted below ${this.firstIndexValue}`);
    }
    if (index > this.lastIndexValue) {
      throw new RaftError('Unavailable', `term(${index}): past last index ${this.lastIndexValue}`);
    }
    return this.terms.term(index);
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    this.checkRange(lo, hi);
    if (lo >= this.cache.first) return this.cache.slice(lo, hi, maxBytes);
    const reader = this.reader;
    assert(reader !== null, `entries ${lo}..${hi} missing from a memory-mode cache`);
    const loaded = reader.loadedSlice(lo, hi, maxBytes);
    if (loaded !== null) return loaded;
    reader.startLoad(lo, Math.min(hi, this.cache.first), maxBytes);
    throw new RaftError('EntriesPending', `entries(${lo}, ${hi}): loading from disk`);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  // ---- state -------------------------------------------------------------------------------

  /**
   * The node may have lost writes this log acknowledged (memory mode after a restart, or async
   * mode after a suspected power loss): start its RawNode with `recovering: true`. Sticky across
   * restarts until markCaughtUp().
   */
  get mayHaveLostTail(): boolean {
    return this.state.mayHaveLostTail;
  }

  /** The replica caught up with its group after a lost tail (the core left `recovering`). */
  markCaughtUp(): void {
    this.state.markCaughtUp();
  }

  /** Hard state and membership to build the RawNode with (see RaftState.initialState). */
  initialState(): { hardState: HardState; confState: ConfState } {
    return this.state.initialState(this.lastIndexValue);
  }

  /** The application's last applied index, as last set (stored lazily). */
  applied(): number {
    return this.state.applied;
  }

  setApplied(index: number): void {
    assert(Number.isSafeInteger(index) && index >= 0, `setApplied(${index}): not an index`);
    this.state.setApplied(index);
  }

  /** Records a snapshot of the state machine at `index`; resolves once it is durable. */
  async createSnapshot(index: number, confState: ConfState, data: Uint8Array): Promise<void> {
    this.assertWritable();
    if (index <= this.snap.metadata.index) return;
    assert(index <= this.lastIndexValue, `createSnapshot(${index}) past last index ${this.lastIndexValue}`);
    const metadata = {
      index,
      term: this.term(index),
      confState: { voters: [...confState.voters], learners: [...confState.learners] },
    };
    this.snap = { metadata, data };
    this.context.store.putSnapshot(this.context.logId, this.snap);
    await this.context.store.durable();
  }

  /**
   * Prefix truncation: entries up to `index` go (a snapshot must cover them). The log start moves
   * at once; whole segment files below it are deleted after the new start is durable. Resolves once
   * the new start is durable (the deletion follows in the log's I/O chain).
   */
  async compact(index: number): Promise<void> {
    this.assertWritable();
    if (index < this.firstIndexValue) return;
    assert(index <= this.snap.metadata.index, `compact(${index}) above snapshot ${this.snap.metadata.index}`);
    assert(index <= this.lastIndexValue, `compact(${index}) past last index ${this.lastIndexValue}`);
    this.prevTerm = this.term(index);
    this.firstIndexValue = index + 1;
    this.terms.compactBelow(this.firstIndexValue);
    this.dropCacheBelow(this.firstIndexValue);
    this.context.store.putLogStart(this.context.logId, this.currentStart());
    const durable = this.context.store.durable();
    this.writer?.enqueueCompact(index, durable);
    this.writer?.kick();
    // Resolves with the new start durable; the files go in the log's chain, behind its writes.
    await durable;
  }

  // ---- writes ------------------------------------------------------------------------------

  /** Applies one write in memory now and queues its I/O; the engine kicks the writer after. */
  submit(write: LogWrite): void {
    this.assertWritable();
    let waitForState = false;
    if (write.snapshot !== null) {
      this.installSnapshot(write.snapshot);
      waitForState = true;
    }
    if (write.entries.length > 0) this.appendEntries(write.entries);
    if (write.hardState !== null) waitForState = this.state.setHardState(write.hardState) || waitForState;
    if (write.confState) {
      this.state.setConfState(write.confState);
      waitForState = true;
    }
    if (write.persistId !== 0)
      this.completions.track(write.persistId, this.writer?.lastQueuedSeq ?? 0, waitForState);
  }

  /** Starts the I/O queued by submit(); the engine calls it once per log per turn. */
  kick(): void {
    this.writer?.kick();
  }

  private appendEntries(
    entries: readonly Entry[],
    describe: DescribeEntry | undefined = this.options.describeEntry,
  ): void {
    let start = 0;
    if (entries[0]!.index < this.firstIndexValue) start = this.firstIndexValue - entries[0]!.index;
    if (start >= entries.length) return;
    const first = entries[start]!.index;
    assert(first <= this.lastIndexValue + 1, `append: gap between ${this.lastIndexValue} and ${first}`);
    if (first <= this.lastIndexValue) {
      this.cutInMemory(first);
      this.writer?.enqueueCut(first);
    }
    let frameStart = start;
    let frameDataBytes = 0;
    let ranges: ({ baseOffset: number; recordCount: number } | null)[] = [];
    for (let i = start; i < entries.length; i++) {
      const entry = entries[i]!;
      const range = describe ? describe(entry) : null;
      this.cache.push(entry, range);
      this.terms.append(entry.index, entry.term);
      ranges.push(range);
      frameDataBytes += entry.data.length;
      if (frameDataBytes >= FRAME_DATA_BYTES_TARGET || i === entries.length - 1) {
        this.writer?.enqueueAppend(entries, frameStart, i + 1, ranges);
        frameStart = i + 1;
        frameDataBytes = 0;
        ranges = [];
      }
    }
    this.lastIndexValue = entries[entries.length - 1]!.index;
    this.evictCache();
  }

  private cutInMemory(index: number): void {
    this.cache.truncateFrom(index);
    this.reader?.cutFrom(index);
    this.terms.truncateFrom(index);
    this.lastIndexValue = index - 1;
  }

  private installSnapshot(snapshot: Snapshot): void {
    const { index, term } = snapshot.metadata;
    assert(
      index > this.snap.metadata.index,
      `snapshot ${index} is not newer than ${this.snap.metadata.index}`,
    );
    this.snap = snapshot;
    this.generation++;
    this.firstIndexValue = index + 1;
    this.prevTerm = term;
    this.lastIndexValue = index;
    this.terms.clear();
    this.cache.clear(index + 1);
    this.reader?.dropBelow(index + 1, true);
    this.context.store.putSnapshot(this.context.logId, snapshot);
    this.context.store.putLogStart(this.context.logId, this.currentStart());
    this.writer?.enqueueReset(this.generation, index + 1, this.context.store.durable());
  }

  private currentStart(): LogStart {
    return { firstIndex: this.firstIndexValue, prevTerm: this.prevTerm, generation: this.generation };
  }

  // ---- WAL replay (open) --------------------------------------------------------------------

  /**
   * Opening a sync-mode log: brings it to what the frames the shared WAL holds for it (its current
   * generation, in write order) say it was, over what the segment files kept (see wal-replay.ts),
   * through the normal write path, then syncs the segment file. Returns the entries rewritten.
   */
  async replayWal(records: readonly WalRecord[]): Promise<number> {
    if (this.writer === null || records.length === 0) return 0;
    const plan = planWalReplay(records, this);
    if (plan.cutFrom !== null) {
      this.cutInMemory(plan.cutFrom);
      this.writer.enqueueCut(plan.cutFrom);
    }
    for (const { entries, describe } of plan.appends) this.appendEntries(entries, describe);
    // Synced even when nothing changed: after a process crash the segments may hold every entry
    // only in the page cache, and the old WAL files go once every log has replayed.
    this.writer.enqueueSync();
    this.writer.kick();
    await this.writer.idle();
    if (this.failure !== null) throw this.failure;
    return plan.rewritten;
  }

  /** Sync mode with the WAL: syncs the segment file behind the WAL (see LogWriter.checkpoint). */
  checkpoint(): Promise<boolean> {
    if (this.writer === null || this.failure !== null || this.closed)
      return Promise.resolve(this.failure === null);
    return this.writer.checkpoint();
  }

  // ---- completions -------------------------------------------------------------------------

  private afterBatch(): void {
    this.completions.drain();
    this.evictCache();
  }

  private fail(error: StorageError): void {
    if (this.failure !== null) return;
    this.failure = error;
    this.options.onError?.(error);
  }

  private assertWritable(): void {
    if (this.closed) throw new StorageError('Closed', `log ${this.groupId} is closed`);
    if (this.failure !== null) throw this.failure;
  }

  // ---- cache -------------------------------------------------------------------------------

  private evictCache(): void {
    if (this.writer === null) return; // memory mode: the cache is the log
    this.cache.evict({ budgetBytes: this.context.cacheBytesMax, indexMax: this.writer.evictableUpTo() });
  }

  private dropCacheBelow(index: number): void {
    this.cache.dropBelow(index);
    this.reader?.dropBelow(index);
  }

  // ---- reads -------------------------------------------------------------------------------

  private checkRange(lo: number, hi: number): void {
    if (lo < this.firstIndexValue) {
      throw new RaftError('Compacted', `entries(${lo}, ${hi}): compacted below ${this.firstIndexValue}`);
    }
    if (hi > this.lastIndexValue + 1) {
      throw new RaftError('Unavailable', `entries(${lo}, ${hi}): past last index ${this.lastIndexValue}`);
    }
    assert(lo < hi, `entries(${lo}, ${hi}): empty range`);
  }

  /** Entries in [lo, hi) up to maxBytes (at least one), from memory or disk. */
  async readEntries(lo: number, hi: number, maxBytes: number): Promise<Entry[]> {
    this.checkRange(lo, hi);
    if (lo >= this.cache.first) return this.cache.slice(lo, hi, maxBytes);
    assert(this.reader !== null, `entries ${lo}..${hi} missing from a memory-mode cache`);
    return this.reader.readEntries(lo, Math.min(hi, this.cache.first), maxBytes);
  }

  /**
   * Entries holding records from `fromOffset` on (the first may start before it), up to maxBytes
   * (at least one) and not past `maxIndex` (e.g. the commit index). Entries without records are
   * skipped. Empty when no record at or after fromOffset is stored.
   */
  async readRecords(fromOffset: number, options: { maxBytes: number; maxIndex?: number }): Promise<Entry[]> {
    if (this.closed) throw new StorageError('Closed', `log ${this.groupId} is closed`);
    const maxIndex = Math.min(options.maxIndex ?? this.lastIndexValue, this.lastIndexValue);
    const cached = this.cache.recordsFrom({
      fromOffset,
      maxBytes: options.maxBytes,
      maxIndex,
      wholeLog: this.reader === null,
    });
    if (cached !== null || this.reader === null) return cached ?? [];
    return this.reader.readRecords(fromOffset, maxIndex, options.maxBytes);
  }

  /**
   * The time index: an offset at or below the first stored record with a timestamp at least
   * `timestampMs`, every stored record below it earlier; null when none reaches it (time-index.ts).
   */
  offsetForTime(timestampMs: number): number | null {
    if (this.chunks !== null) return memoryOffsetForTime(this.chunks, this.cache, timestampMs);
    const writer = this.writer!;
    const trustedLastIndex = Math.min(writer.filesTrustedUpTo(), this.lastIndexValue);
    const { generation, cache } = this;
    const index = { segments: writer.files.segments, generation, firstIndex: this.firstIndexValue, cache };
    return diskOffsetForTime({ ...index, trustedLastIndex }, timestampMs);
  }

  // ---- scrub -------------------------------------------------------------------------------

  /**
   * The background scrub: reads and verifies `segment` up to `endPosition` (a file the open took
   * from its stored index). Bad bytes fail the log with CorruptLog, as the open would have.
   */
  async verifySegment(segment: Segment, endPosition: number): Promise<number> {
    if (this.reader === null || this.closed || this.failure !== null) return 0;
    const { bytes, corruption } = await this.reader.verifySegment(segment, endPosition);
    if (corruption !== null) this.fail(corruption);
    return bytes;
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /** Writes lazily kept state (commit index, applied index) to lmdb; the engine calls it. */
  flushState(): void {
    this.state.flush();
  }

  /** Async mode: queues an fdatasync when writes since the last one are not yet synced. */
  syncIfDirty(): void {
    if (this.failure === null && !this.closed) this.writer?.syncIfDirty();
  }

  /** Flushes and syncs everything, then closes the log's files. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.failure === null) {
      this.writer?.enqueueSync();
      this.writer?.kick();
    }
    await this.writer?.idle();
    if (this.failure === null) this.writer?.markClean();
    this.flushState();
    this.closed = true;
    // Memory mode: the entries go with the log (the node's count of memory-mode bytes with them).
    if (this.chunks !== null) this.cache.clear(this.lastIndexValue + 1);
    await this.writer?.files.closeFiles();
  }

  get failed(): StorageError | null {
    return this.failure;
  }

  /** Bytes of this log's segment files (0 in memory mode); for metrics. */
  diskBytes(): number {
    return this.writer?.files.diskBytes() ?? 0;
  }

  /** Bytes of memory this log's entries hold in memory mode (its chunks), 0 in the others. */
  memoryBytes(): number {
    return this.chunks?.heldBytes ?? 0;
  }

  /**
   * What appending an entry of `dataBytes`, after the entries planned in `after`, would add to
   * memoryBytes() (null but in memory mode). See MemoryChunks.planAppend.
   */
  planMemoryAppend(dataBytes: number, after: MemoryAppendPlan | null): MemoryAppendPlan | null {
    return this.chunks?.planAppend(dataBytes, after) ?? null;
  }

  /**
   * Segment files holding entries at or above the log start, oldest first; the last is the active
   * one. In memory mode, the in-memory chunks in the same shape. Retention picks whole closed
   * segments (chunks) from these.
   */
  segmentSummaries(): SegmentSummary[] {
    if (this.chunks !== null) return this.chunks.summaries(this.firstIndexValue);
    if (this.writer === null) return [];
    return this.writer.files.summaries().filter((segment) => segment.lastIndex >= this.firstIndexValue);
  }

  /** Test and bench aid: resolves when every queued I/O is done. */
  async idle(): Promise<void> {
    await this.writer?.idle();
  }
}
