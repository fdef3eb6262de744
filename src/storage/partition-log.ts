// One Raft group's log on this node: the synchronous LogStorage the core reads (a bounded cache of
// recent entries and an in-memory term index), the submission of writes (reflected in reads at
// once, made durable per the log's mode by a serial chain of I/O tasks, one per batch window), and
// async reads by Raft index and by record offset that never load a whole segment.

import { assert, RaftError } from '../raft/errors.js';
import { limitBytes } from '../raft/storage.js';
import { type ConfState, type Entry, entryBytes, type HardState, type Snapshot } from '../raft/types.js';
import { EntryCache } from './entry-cache.js';
import { StorageError } from './errors.js';
import {
  type DescribeEntry,
  decodeFrameEntries,
  FRAME_HEADER_BYTES,
  frameRecordRanges,
  type RecordRange,
  readFrameHeader,
  TERM_RUN_BYTES,
} from './frame.js';
import type { IoExecutor } from './io-executor.js';
import { LogWriter, type SegmentSummary, type WriterContext } from './log-writer.js';
import { type MemoryAccount, type MemoryAppendPlan, MemoryChunks } from './memory-chunks.js';
import type { Segment } from './segment.js';
import type { LogStart, StoredSnapshot } from './state-store.js';
import { TermIndex } from './term-index.js';
import { WAL_KIND_SYNCED, type WalRecord } from './wal.js';

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

interface PendingCompletion {
  persistId: number;
  /** The I/O op whose completion makes this write durable (0: none). */
  ioSeq: number;
  waitingForState: boolean;
}

const FRAME_DATA_BYTES_TARGET = 16 * 1024 * 1024;

export class PartitionLog {
  readonly groupId: string;
  readonly mode: PersistenceMode;
  private lostTail: boolean;
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
  private hard: HardState;
  private storedTerm: number;
  private storedVote: number;
  private hardStateDirty = false;
  private conf: ConfState;
  private appliedIndex: number;
  private appliedDirty = false;

  /** Recent entries, [cache.first, lastIndex]: in memory mode, every entry. */
  private readonly cache: EntryCache;
  /** Memory mode: where the cache's entries' data lives; retention drops whole chunks. */
  private readonly chunks: MemoryChunks | null;
  // The last range loaded from disk for entries(): loaded[i] has index loadedFirst + i.
  private loaded: Entry[] = [];
  private loadedFirst = 0;
  private loadInFlight = false;
  /** Bumped by every cut, reset and compaction, so a load that raced one is discarded. */
  private layoutVersion = 0;

  private readonly completions: PendingCompletion[] = [];
  private completionHead = 0;
  private drainScheduled = false;
  private failure: StorageError | null = null;
  private closed = false;

  constructor(context: LogContext, options: PartitionLogOptions, recovered: RecoveredLog) {
    this.context = context;
    this.options = options;
    this.groupId = context.groupId;
    this.mode = options.mode;
    this.lostTail = recovered.mayHaveLostTail;
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
    this.hard = recovered.hardState;
    this.storedTerm = recovered.hardState.term;
    this.storedVote = recovered.hardState.vote;
    this.conf = recovered.confState;
    this.appliedIndex = recovered.applied;
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
    const loadedEnd = this.loadedFirst + this.loaded.length;
    if (lo >= this.loadedFirst && lo < loadedEnd) {
      return limitBytes(
        this.loaded,
        lo - this.loadedFirst,
        Math.min(hi, loadedEnd) - this.loadedFirst,
        maxBytes,
      );
    }
    this.startLoad(lo, Math.min(hi, this.cache.first), maxBytes);
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
    return this.lostTail;
  }

  /** The replica caught up with its group after a lost tail (the core left `recovering`). */
  markCaughtUp(): void {
    if (!this.lostTail) return;
    this.lostTail = false;
    this.context.store.putLostTail(this.context.logId, false);
  }

  /**
   * Hard state and membership to build the RawNode with. The stored commit index is clamped to
   * the last stored entry unless the tail may be lost: commit is written lazily (it can always be
   * learned again), so it may run ahead of entries that a crash cut short.
   */
  initialState(): { hardState: HardState; confState: ConfState } {
    const commit = this.lostTail ? this.hard.commit : Math.min(this.hard.commit, this.lastIndexValue);
    return {
      hardState: { term: this.hard.term, vote: this.hard.vote, commit },
      confState: { voters: [...this.conf.voters], learners: [...this.conf.learners] },
    };
  }

  /** The application's last applied index, as last set (stored lazily). */
  applied(): number {
    return this.appliedIndex;
  }

  setApplied(index: number): void {
    assert(Number.isSafeInteger(index) && index >= 0, `setApplied(${index}): not an index`);
    this.appliedIndex = index;
    this.appliedDirty = true;
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
    this.layoutVersion++;
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
    if (write.hardState !== null) waitForState = this.updateHardState(write.hardState) || waitForState;
    if (write.confState) {
      this.conf = { voters: [...write.confState.voters], learners: [...write.confState.learners] };
      this.context.store.putConfState(this.context.logId, this.conf);
      waitForState = true;
    }
    if (write.persistId !== 0) this.trackCompletion(write.persistId, waitForState);
  }

  /** Starts the I/O queued by submit(); the engine calls it once per log per turn. */
  kick(): void {
    this.writer?.kick();
  }

  private updateHardState(hardState: HardState): boolean {
    this.hard = { term: hardState.term, vote: hardState.vote, commit: hardState.commit };
    if (hardState.term === this.storedTerm && hardState.vote === this.storedVote) {
      this.hardStateDirty = true; // commit only: written lazily by flushState()
      return false;
    }
    this.storedTerm = hardState.term;
    this.storedVote = hardState.vote;
    this.context.store.putHardState(this.context.logId, this.hard);
    this.hardStateDirty = false;
    return true;
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
    this.layoutVersion++;
    this.cache.truncateFrom(index);
    const loadedEnd = this.loadedFirst + this.loaded.length;
    if (loadedEnd > index) this.loaded.length = Math.max(0, index - this.loadedFirst);
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
    this.loaded = [];
    this.layoutVersion++;
    this.context.store.putSnapshot(this.context.logId, snapshot);
    this.context.store.putLogStart(this.context.logId, this.currentStart());
    this.writer?.enqueueReset(this.generation, index + 1, this.context.store.durable());
  }

  private currentStart(): LogStart {
    return { firstIndex: this.firstIndexValue, prevTerm: this.prevTerm, generation: this.generation };
  }

  // ---- WAL replay (open) --------------------------------------------------------------------

  /**
   * Opening: brings the log to what the frames the shared WAL holds for it (its current
   * generation, in write order) say it was, over what the segment files kept, then syncs the
   * segment file. The frames are first played on a model (each one a Raft append: cut at its first
   * index, then append), which gives the log's final entries from the oldest frame's index on.
   * The log then keeps its longest prefix that agrees in terms (same index and term: same entry),
   * is cut there, and gets the model's entries after it: one cut and one append at most, and none
   * when the segments kept everything (a process crash). What lies past the model's end was never
   * reported durable, and may be a stale suffix whose cut never reached the disk: it is cut too.
   * Returns the number of entries rewritten.
   */
  async replayWal(records: readonly WalRecord[]): Promise<number> {
    if (this.writer === null || records.length === 0) return 0;
    const model = playRecords(records);
    const end = model.base + model.terms.length - 1;
    let from = Math.max(model.base, this.firstIndexValue);
    // The log below the model's base is older than every frame, unless a cut whose frame never
    // reached the WAL made it shorter (or a higher term before it shows such a cut): then the
    // frames describe entries that cut replaced, and were never committed. Leave the log as it is.
    const applies =
      end >= from &&
      this.lastIndexValue >= from - 1 &&
      this.term(from - 1) <= model.terms[from - model.base]!;
    let rewritten = 0;
    if (applies) {
      while (from <= Math.min(end, this.lastIndexValue) && this.term(from) === model.terms[from - model.base])
        from++;
      if (from <= this.lastIndexValue) {
        this.cutInMemory(from);
        this.writer.enqueueCut(from);
      }
      rewritten = Math.max(0, end - from + 1);
      for (let index = from; index <= end; ) {
        const recordNumber = model.recordOf[index - model.base]!;
        let runEnd = index;
        while (runEnd < end && model.recordOf[runEnd + 1 - model.base] === recordNumber) runEnd++;
        this.appendFromFrame(records[recordNumber]!.frame, index, runEnd);
        index = runEnd + 1;
      }
    } else if (this.lastIndexValue > end && end + 1 >= this.firstIndexValue) {
      // Nothing to play after the last synced point (or only frames a durable cut replaced): what
      // lies past it was never reported durable.
      this.cutInMemory(end + 1);
      this.writer.enqueueCut(end + 1);
    }
    // Synced even when nothing changed: after a process crash the segments may hold every entry
    // only in the page cache, and the old WAL files go once every log has replayed.
    this.writer.enqueueSync();
    this.writer.kick();
    await this.writer.idle();
    if (this.failure !== null) throw this.failure;
    return rewritten;
  }

  /** Appends entries [lo, hi] of a verified frame, with the record ranges the frame carries. */
  private appendFromFrame(frame: Uint8Array, lo: number, hi: number): void {
    // The entries are views into the WAL file's bytes: the cache copies what it keeps
    // (entry-cache.ts), so they do not pin the file in memory.
    const header = readFrameHeader(frame, 0, frame.length)!;
    const entries: Entry[] = [];
    decodeFrameEntries(frame, 0, header, lo, hi + 1, entries);
    const ranges = frameRecordRanges(frame, 0, header);
    const describe = (entry: Entry): RecordRange | null => {
      const i = entry.index - header.firstIndex;
      const baseOffset = ranges[2 * i]!;
      return baseOffset < 0 ? null : { baseOffset, recordCount: ranges[2 * i + 1]! };
    };
    this.appendEntries(entries, describe);
  }

  /** Sync mode with the WAL: syncs the segment file behind the WAL (see LogWriter.checkpoint). */
  checkpoint(): Promise<boolean> {
    if (this.writer === null || this.failure !== null || this.closed)
      return Promise.resolve(this.failure === null);
    return this.writer.checkpoint();
  }

  // ---- completions -------------------------------------------------------------------------

  private trackCompletion(persistId: number, waitForState: boolean): void {
    const pending: PendingCompletion = {
      persistId,
      ioSeq: this.writer?.lastQueuedSeq ?? 0,
      waitingForState: waitForState,
    };
    this.completions.push(pending);
    if (waitForState) {
      this.context.store.durable().then(
        () => {
          pending.waitingForState = false;
          this.drainCompletions();
        },
        (error: unknown) =>
          this.fail(new StorageError('IoFailed', `lmdb flush failed: ${String(error)}`, { cause: error })),
      );
    } else if (!this.drainScheduled) {
      this.drainScheduled = true;
      queueMicrotask(() => {
        this.drainScheduled = false;
        this.drainCompletions();
      });
    }
  }

  private drainCompletions(): void {
    if (this.failure !== null) return;
    const doneSeq = this.writer?.completedSeq ?? Number.POSITIVE_INFINITY;
    const onPersisted = this.options.onPersisted;
    while (this.completionHead < this.completions.length) {
      const head = this.completions[this.completionHead]!;
      if (head.waitingForState || head.ioSeq > doneSeq) break;
      this.completionHead++;
      onPersisted?.(head.persistId);
    }
    // Emptied (the usual case): forget the drained ones now, or they would outlive young GCs.
    if (this.completionHead === this.completions.length) {
      this.completions.length = 0;
      this.completionHead = 0;
    } else if (this.completionHead > 1024 && this.completionHead * 2 > this.completions.length) {
      this.completions.splice(0, this.completionHead);
      this.completionHead = 0;
    }
  }

  private afterBatch(): void {
    this.drainCompletions();
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
    if (this.loadedFirst < index) {
      this.loaded = this.loaded.slice(Math.min(this.loaded.length, index - this.loadedFirst));
      this.loadedFirst = index;
    }
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

  private startLoad(lo: number, hi: number, maxBytes: number): void {
    if (this.loadInFlight) return;
    this.loadInFlight = true;
    const version = this.layoutVersion;
    const bytes = Math.max(maxBytes, this.context.loadBytesMin);
    this.readFromDisk(lo, hi, bytes).then(
      (entries) => {
        this.loadInFlight = false;
        if (version === this.layoutVersion && entries.length > 0) {
          this.loaded = entries;
          this.loadedFirst = lo;
        }
        this.options.onEntriesAvailable?.();
      },
      (error: unknown) => {
        this.loadInFlight = false;
        // Compacted meanwhile: the retry gets the RaftError from entries() itself.
        if (error instanceof RaftError) this.options.onEntriesAvailable?.();
        else this.fail(toStorageError(error));
      },
    );
  }

  /** Entries in [lo, hi) up to maxBytes (at least one), from memory or disk. */
  async readEntries(lo: number, hi: number, maxBytes: number): Promise<Entry[]> {
    this.checkRange(lo, hi);
    if (lo >= this.cache.first) return this.cache.slice(lo, hi, maxBytes);
    return this.readFromDisk(lo, Math.min(hi, this.cache.first), maxBytes);
  }

  private async readFromDisk(lo: number, hi: number, maxBytes: number): Promise<Entry[]> {
    const writer = this.writer;
    assert(writer !== null, `entries ${lo}..${hi} missing from a memory-mode cache`);
    return writer.withSegments(async (segments) => {
      const out: Entry[] = [];
      let next = lo;
      let bytesLeft = maxBytes;
      // Segment after segment until the range or the byte budget is used up.
      while (next < hi && (out.length === 0 || bytesLeft > 0)) {
        const segment = findSegmentForIndex(segments, next);
        if (segment === null) {
          if (out.length > 0) break;
          throw new RaftError('Compacted', `entries(${lo}, ${hi}): no segment holds ${next}`);
        }
        const bytes = await this.readFrames(
          segment,
          segment.positionForIndex(next),
          Math.max(1, bytesLeft),
          next,
        );
        const before = out.length;
        for (let at = 0; at < bytes.length; ) {
          const header = readFrameHeader(bytes, at, bytes.length)!;
          decodeFrameEntries(bytes, at, header, next, hi, out);
          at += header.frameBytes;
        }
        if (out.length === before) break;
        for (let i = before; i < out.length; i++) bytesLeft -= entryBytes(out[i]!);
        next = out[out.length - 1]!.index + 1;
      }
      return out.length === 0 ? out : limitBytes(out, 0, out.length, maxBytes);
    });
  }

  /** Reads whole verified frames of `segment` from `position`; throws CorruptRead. */
  private async readFrames(
    segment: Segment,
    position: number,
    maxBytes: number,
    skipBelowIndex: number,
  ): Promise<Uint8Array> {
    const result = await this.context.executor.read({
      kind: 'read',
      path: segment.path,
      position,
      endPosition: segment.endPosition,
      maxBytes,
      skipBelowIndex,
    });
    if (result.corruptAt >= 0) {
      this.writer?.forgetIndexes().catch(() => {});
      throw new StorageError(
        'CorruptRead',
        `${segment.path}: frame at byte ${result.corruptAt} fails its CRC`,
        {
          file: segment.path,
          offsetBytes: result.corruptAt,
        },
      );
    }
    return result.bytes;
  }

  /**
   * Entries holding records from `fromOffset` on (the first may start before it), up to maxBytes
   * (at least one) and not past `maxIndex` (e.g. the commit index). Entries without records are
   * skipped. Empty when no record at or after fromOffset is stored.
   */
  async readRecords(fromOffset: number, options: { maxBytes: number; maxIndex?: number }): Promise<Entry[]> {
    if (this.closed) throw new StorageError('Closed', `log ${this.groupId} is closed`);
    const maxIndex = Math.min(options.maxIndex ?? this.lastIndexValue, this.lastIndexValue);
    const writer = this.writer;
    const cached = this.cache.recordsFrom({
      fromOffset,
      maxBytes: options.maxBytes,
      maxIndex,
      wholeLog: writer === null,
    });
    if (cached !== null || writer === null) return cached ?? [];
    const maxBytes = options.maxBytes;
    return writer.withSegments(async (segments) => {
      for (let s = startSegmentForOffset(segments, fromOffset); s < segments.length; s++) {
        const segment = segments[s]!;
        if (segment.baseIndex > maxIndex) break;
        const position = segment.positionForOffset(fromOffset);
        const bytes = await this.readFrames(segment, position, maxBytes + this.context.indexIntervalBytes, 0);
        const out = this.recordEntriesOf(bytes, fromOffset, maxIndex, maxBytes);
        if (out.length > 0) return out;
      }
      return [];
    });
  }

  private recordEntriesOf(
    bytes: Uint8Array,
    fromOffset: number,
    maxIndex: number,
    maxBytes: number,
  ): Entry[] {
    const out: Entry[] = [];
    let total = 0;
    let at = 0;
    while (at < bytes.length) {
      const header = readFrameHeader(bytes, at, bytes.length)!;
      const ranges = frameRecordRanges(bytes, at, header);
      const frameEntries: Entry[] = [];
      decodeFrameEntries(bytes, at, header, this.firstIndexValue, maxIndex + 1, frameEntries);
      for (const entry of frameEntries) {
        const i = entry.index - header.firstIndex;
        const baseOffset = ranges[2 * i]!;
        if (baseOffset < 0 || baseOffset + ranges[2 * i + 1]! <= fromOffset) continue;
        total += entryBytes(entry);
        if (total > maxBytes && out.length > 0) return out;
        out.push(entry);
      }
      at += header.frameBytes;
    }
    return out;
  }

  // ---- scrub -------------------------------------------------------------------------------

  /**
   * The background scrub: reads and verifies `segment` up to `endPosition` (a file the open took
   * from its stored index). Bad bytes fail the log with CorruptLog, as the open would have.
   */
  async verifySegment(segment: Segment, endPosition: number): Promise<number> {
    const writer = this.writer;
    if (writer === null || this.closed || this.failure !== null) return 0;
    return writer.withSegments(async (segments) => {
      // Gone (compaction) or cut since: nothing left to verify, or a cut rewrote it.
      if (!segments.includes(segment) || segment.endPosition < endPosition) return 0;
      const scan = await this.context.executor.scan({
        kind: 'scan',
        path: segment.path,
        baseIndex: segment.baseIndex,
        indexIntervalBytes: this.context.indexIntervalBytes,
        indexedSizeBytes: -1,
        endPosition,
      });
      if (scan.corruptAt >= 0 && scan.corruptAt < endPosition) {
        const error = new StorageError(
          'CorruptLog',
          `${segment.path}: corrupt frame at byte ${scan.corruptAt} (found by the background scrub)`,
          { file: segment.path, offsetBytes: scan.corruptAt },
        );
        await writer.forgetIndexes();
        this.fail(error);
      }
      return endPosition;
    });
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /** Writes lazily kept state (commit index, applied index) to lmdb; the engine calls it. */
  flushState(): void {
    if (this.hardStateDirty) {
      this.context.store.putHardState(this.context.logId, this.hard);
      this.hardStateDirty = false;
    }
    if (this.appliedDirty) {
      this.context.store.putApplied(this.context.logId, this.appliedIndex);
      this.appliedDirty = false;
    }
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
    await this.writer?.closeFiles();
  }

  get failed(): StorageError | null {
    return this.failure;
  }

  /** Bytes of this log's segment files (0 in memory mode); for metrics. */
  diskBytes(): number {
    return this.writer?.diskBytes() ?? 0;
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
    return this.writer.segmentSummaries().filter((segment) => segment.lastIndex >= this.firstIndexValue);
  }

  /** Test and bench aid: resolves when every queued I/O is done. */
  async idle(): Promise<void> {
    await this.writer?.idle();
  }
}

/**
 * Plays a log's WAL records (frames are Raft appends, in write order) on a model of the log from
 * the lowest first index among them: per index, the term and the record that holds the entry in
 * the end. A record that the segment files were synced through L starts the model afresh after L:
 * what came before it is in the segments.
 */
function playRecords(records: readonly WalRecord[]): { base: number; terms: number[]; recordOf: number[] } {
  let base = -1;
  const terms: number[] = [];
  const recordOf: number[] = [];
  for (let k = 0; k < records.length; k++) {
    const record = records[k]!;
    if (record.kind === WAL_KIND_SYNCED) {
      base = record.syncedLastIndex + 1;
      terms.length = 0;
      recordOf.length = 0;
      continue;
    }
    const frame = record.frame;
    const header = readFrameHeader(frame, 0, frame.length);
    assert(header !== null, `WAL frame ${k} has no header`);
    // An append past the model's end does not follow from the records before it (writes of this
    // log that bypassed the WAL, in another mode): the model starts again from it.
    if (base < 0 || header.firstIndex < base || header.firstIndex > base + terms.length)
      base = header.firstIndex;
    terms.length = header.firstIndex - base;
    recordOf.length = header.firstIndex - base;
    const view = new DataView(frame.buffer, frame.byteOffset, frame.length);
    for (let r = 0; r < header.termRunCount; r++) {
      const runAt = FRAME_HEADER_BYTES + r * TERM_RUN_BYTES;
      const term = view.getFloat64(runAt, true);
      const count = view.getUint32(runAt + 8, true);
      for (let i = 0; i < count; i++) {
        terms.push(term);
        recordOf.push(k);
      }
    }
  }
  return { base, terms, recordOf };
}

function findSegmentForIndex(segments: readonly Segment[], index: number): Segment | null {
  for (let i = segments.length - 1; i >= 0; i--) {
    const segment = segments[i]!;
    if (segment.baseIndex <= index) return segment.lastIndex >= index ? segment : null;
  }
  return null;
}

function startSegmentForOffset(segments: readonly Segment[], offset: number): number {
  let start = 0;
  for (let i = 0; i < segments.length; i++) {
    const first = segments[i]!.firstOffset;
    if (first >= 0 && first <= offset) start = i;
  }
  return start;
}

function toStorageError(error: unknown): StorageError {
  if (error instanceof StorageError) return error;
  return new StorageError('IoFailed', `read failed: ${String(error)}`, { cause: error });
}
