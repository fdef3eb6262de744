// The disk side of one log: a queue of I/O operations (append a frame, cut the suffix, reset for a
// snapshot, delete compacted segments, sync) run as a serial chain of tasks in the I/O pool. While
// one task runs, the next window's operations gather; the next task takes them all (group commit).
// In sync mode its frames also go to the node's shared WAL (wal.ts), whose one fdatasync per window
// makes them durable; the segment file is fdatasynced later, by a checkpoint. Without a WAL, a sync
// task ends with ONE fdatasync of the segment file. Owns the segment list and keeps readers out of
// a file while a cut rewrites it.

import { assert } from '../raft/errors.js';
import type { Entry } from '../raft/types.js';
import { StorageError } from './errors.js';
import { type EncodedFrame, encodeFrame, type RecordRange } from './frame.js';
import type { IoExecutor } from './io-executor.js';
import type { FdRef, IoStep } from './io-ops.js';
import { LogFiles, openStep } from './log-files.js';
import type { Segment } from './segment.js';
import type { StateStore } from './state-store.js';
import type { WalFrame, WalWriter } from './wal.js';

export interface WriterContext {
  executor: IoExecutor;
  /** Where a sealed segment's index (its recovery point) is kept. */
  store: StateStore;
  /** The log's directory of segment files. */
  directory: string;
  segmentBytesMax: number;
  indexIntervalBytes: number;
  /** Bytes of frames one task writes at most (the rest waits for the next task). */
  taskBytesMax: number;
  /** An append task that ended in an fdatasync of the log's file took `durationMs` in it. */
  onFsync?: (durationMs: number) => void;
  /** Tags this log's records in the WAL. */
  logId: number;
  /** Sync mode: the node's shared write-ahead file (null: fdatasync each segment file instead). */
  wal: WalWriter | null;
  /**
   * A sync-mode task with at least this many bytes of frames fdatasyncs its segment file itself
   * rather than copying them to the WAL (bandwidth, not flushes, is then what it costs).
   */
  walDirectBytesMin: number;
}

type Op =
  | { seq: number; kind: 'append'; frame: EncodedFrame }
  | { seq: number; kind: 'cut'; index: number }
  | { seq: number; kind: 'reset'; generation: number; firstIndex: number; gate: Promise<unknown> }
  | { seq: number; kind: 'compact'; index: number; gate: Promise<unknown> }
  | { seq: number; kind: 'sync' };

type DestructiveOp = Extract<Op, { kind: 'cut' | 'reset' | 'compact' }>;

export interface WriterCallbacks {
  /** A task finished: completedSeq moved. */
  onBatchDone(): void;
  onFailure(error: StorageError): void;
}

export class LogWriter {
  /** Sequence number of the last queued operation. */
  lastQueuedSeq = 0;
  /** Every operation up to this one is done (written, and synced in sync mode). */
  completedSeq = 0;
  private readonly context: WriterContext;
  private readonly mode: 'sync' | 'async';
  private readonly callbacks: WriterCallbacks;
  /** The log's segment files; the readers go through it too. */
  readonly files: LogFiles;
  /** Last index the completed tasks put on disk. */
  private diskLastIndex: number;
  private ops: Op[] = [];
  private opsHead = 0;
  /** Lowest index a queued cut or reset will remove (Infinity: none queued). */
  private lowestQueuedCut = Number.POSITIVE_INFINITY;
  /** Index of the cut or reset running in the chain now (the files still hold what it cuts). */
  private runningCut = Number.POSITIVE_INFINITY;
  private pumping = false;
  private idleWaiters: (() => void)[] = [];
  private failure: StorageError | null = null;
  private dirty = false;
  private syncQueued = false;
  /** Written batches whose WAL records (or "synced" record) are not durable yet, chained in order. */
  private pendingDurable: Promise<void> | null = null;
  /** Frames went to the WAL since the last checkpoint sync: the segment file is behind it. */
  private walDirty = false;
  private completionWaiters: { seq: number; resolve: (done: boolean) => void }[] = [];

  constructor(
    context: WriterContext,
    mode: 'sync' | 'async',
    segments: Segment[],
    diskLastIndex: number,
    generation: number,
    callbacks: WriterCallbacks,
  ) {
    this.context = context;
    this.mode = mode;
    this.files = new LogFiles(
      { ...context, syncBeforeCut: mode === 'sync' && context.wal !== null },
      segments,
      generation,
    );
    this.diskLastIndex = diskLastIndex;
    this.callbacks = callbacks;
  }

  // ---- queueing ----------------------------------------------------------------------------

  enqueueAppend(
    entries: readonly Entry[],
    start: number,
    end: number,
    ranges: readonly (RecordRange | null)[],
  ): void {
    this.push({ seq: 0, kind: 'append', frame: encodeFrame(entries, start, end, ranges) });
  }

  enqueueCut(index: number): void {
    this.lowestQueuedCut = Math.min(this.lowestQueuedCut, index);
    this.push({ seq: 0, kind: 'cut', index });
  }

  enqueueReset(generation: number, firstIndex: number, gate: Promise<unknown>): void {
    this.lowestQueuedCut = Math.min(this.lowestQueuedCut, firstIndex);
    this.push({ seq: 0, kind: 'reset', generation, firstIndex, gate });
  }

  enqueueCompact(index: number, gate: Promise<unknown>): void {
    this.push({ seq: 0, kind: 'compact', index, gate });
  }

  enqueueSync(): void {
    this.syncQueued = true;
    this.push({ seq: 0, kind: 'sync' });
  }

  private push(op: Op): void {
    op.seq = ++this.lastQueuedSeq;
    this.ops.push(op);
  }

  /** Async mode: queue an fdatasync if completed writes are not synced yet. */
  syncIfDirty(): void {
    if (!this.dirty || this.syncQueued) return;
    this.enqueueSync();
    this.kick();
  }

  /** Highest index the cache may drop: on disk, and not about to be cut. */
  evictableUpTo(): number {
    return Math.min(this.diskLastIndex, this.lowestQueuedCut - 1);
  }

  /**
   * Highest index whose frames in the segment files are the log's own: written, and not cut in
   * memory by a cut that is queued or running (the time index trusts the files that far).
   */
  filesTrustedUpTo(): number {
    return Math.min(this.diskLastIndex, this.lowestQueuedCut - 1, this.runningCut - 1);
  }

  // ---- the chain ---------------------------------------------------------------------------

  kick(): void {
    if (this.pumping || this.opsHead >= this.ops.length || this.failure !== null) return;
    this.pumping = true;
    void this.pump();
  }

  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    if (this.pumping || this.pendingDurable !== null) return false;
    return this.opsHead >= this.ops.length || this.failure !== null;
  }

  private wakeIdle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private async pump(): Promise<void> {
    try {
      while (this.opsHead < this.ops.length && this.failure === null) {
        const batch = this.takeBatch();
        const first = batch[0]!;
        let durable: Promise<void> | null = null;
        if (first.kind === 'cut' || first.kind === 'reset' || first.kind === 'compact') {
          await this.runDestructive(first);
        } else {
          durable = (await this.runAppends(batch)).durable;
        }
        this.complete(batch[batch.length - 1]!.seq, durable);
      }
    } catch (error) {
      this.failWith(error);
    } finally {
      this.pumping = false;
      this.wakeIdle();
    }
  }

  /**
   * The batch ending at `seq` is written; `durable` (WAL mode) resolves once it is durable. The
   * next batch runs meanwhile (its frames join the next WAL window); completions stay in order,
   * and each log's WAL records resolve in the order it appended them.
   */
  private complete(seq: number, durable: Promise<void> | null): void {
    if (durable === null && this.pendingDurable === null) {
      this.advance(seq);
      return;
    }
    const tracked: Promise<void> = Promise.all([this.pendingDurable, durable]).then(
      () => {
        if (this.pendingDurable === tracked) this.pendingDurable = null;
        if (this.failure === null) this.advance(seq);
        this.wakeIdle();
      },
      (error: unknown) => {
        if (this.pendingDurable === tracked) this.pendingDurable = null;
        this.failWith(error);
        this.wakeIdle();
      },
    );
    this.pendingDurable = tracked;
  }

  private advance(seq: number): void {
    this.completedSeq = seq;
    this.callbacks.onBatchDone();
    this.wakeCompletionWaiters();
  }

  private failWith(error: unknown): void {
    if (this.failure !== null) return;
    this.failure =
      error instanceof StorageError
        ? error
        : new StorageError('IoFailed', `${this.context.directory}: ${String(error)}`, { cause: error });
    this.callbacks.onFailure(this.failure);
    this.wakeCompletionWaiters();
  }

  /**
   * Checkpoint (sync mode with the WAL): queues an fdatasync of the segment file if frames went to
   * the WAL since the last one. Resolves true once every frame this log handed the WAL before the
   * call is synced in its segment file, false if the log failed first.
   */
  checkpoint(): Promise<boolean> {
    if (this.failure !== null) return Promise.resolve(false);
    if (!this.walDirty) return Promise.resolve(true);
    this.walDirty = false;
    this.enqueueSync();
    const seq = this.lastQueuedSeq;
    this.kick();
    return new Promise((resolve) => {
      this.completionWaiters.push({ seq, resolve });
    });
  }

  private wakeCompletionWaiters(): void {
    if (this.completionWaiters.length === 0) return;
    const failed = this.failure !== null;
    const waiting: typeof this.completionWaiters = [];
    for (const waiter of this.completionWaiters) {
      if (failed) waiter.resolve(false);
      else if (waiter.seq <= this.completedSeq) waiter.resolve(true);
      else waiting.push(waiter);
    }
    this.completionWaiters = waiting;
  }

  /** A destructive op alone, or the run of appends and syncs before the next one. */
  private takeBatch(): Op[] {
    const first = this.ops[this.opsHead]!;
    if (first.kind === 'cut' || first.kind === 'reset' || first.kind === 'compact') {
      this.opsHead++;
      this.afterDequeue(first);
      return [first];
    }
    const batch: Op[] = [];
    let bytes = 0;
    while (this.opsHead < this.ops.length) {
      const op = this.ops[this.opsHead]!;
      if (op.kind !== 'append' && op.kind !== 'sync') break;
      if (op.kind === 'append') {
        if (batch.length > 0 && bytes + op.frame.frameBytes > this.context.taskBytesMax) break;
        bytes += op.frame.frameBytes;
      } else {
        this.syncQueued = false;
      }
      batch.push(op);
      this.opsHead++;
    }
    if (this.opsHead === this.ops.length) {
      this.ops = [];
      this.opsHead = 0;
    }
    return batch;
  }

  private afterDequeue(op: DestructiveOp): void {
    if (op.kind === 'compact') return;
    this.lowestQueuedCut = Number.POSITIVE_INFINITY;
    for (let i = this.opsHead; i < this.ops.length; i++) {
      const queued = this.ops[i]!;
      if (queued.kind === 'cut') this.lowestQueuedCut = Math.min(this.lowestQueuedCut, queued.index);
      if (queued.kind === 'reset') this.lowestQueuedCut = Math.min(this.lowestQueuedCut, queued.firstIndex);
    }
  }

  // ---- appends -----------------------------------------------------------------------------

  /**
   * Writes a run of appends; returns what they still wait for to be durable (WAL mode), or null
   * (wrapped: an async function would flatten a promise it returns).
   */
  private async runAppends(batch: readonly Op[]): Promise<{ durable: Promise<void> | null }> {
    const steps: IoStep[] = [];
    const placements: { segment: Segment; frame: EncodedFrame; position: number }[] = [];
    const opened: { segment: Segment; slot: number }[] = [];
    const created: Segment[] = [];
    const closed: Segment[] = [];
    let active = this.files.active();
    let activeFd: FdRef = 0;
    assert(active === null || !active.indexStored, `append to ${active?.path}, whose index is stored`);
    if (active !== null) activeFd = active.fd >= 0 ? active.fd : openStep(steps, opened, active);
    let position = active?.endPosition ?? 0;
    let write: Extract<IoStep, { kind: 'write' }> | null = null;
    let syncRequested = false;
    let frameBytes = 0;
    for (const op of batch) {
      if (op.kind !== 'append') {
        syncRequested = true;
        continue;
      }
      if (active === null || position >= this.context.segmentBytesMax) {
        if (active !== null) {
          steps.push({ kind: 'sync', fd: activeFd }, { kind: 'close', fd: activeFd });
          closed.push(active);
        }
        active = this.files.newSegment(op.frame.firstIndex);
        created.push(active);
        activeFd = openStep(steps, opened, active);
        position = 0;
        write = null;
      }
      if (write === null) {
        write = { kind: 'write', fd: activeFd, position, buffers: [] };
        steps.push(write);
      }
      write.buffers.push(op.frame.bytes);
      frameBytes += op.frame.frameBytes;
      placements.push({ segment: active, frame: op.frame, position });
      position += op.frame.frameBytes;
    }
    const wrote = placements.length > 0;
    const wal = this.mode === 'sync' && frameBytes < this.context.walDirectBytesMin ? this.context.wal : null;
    const sync = active !== null && ((this.mode === 'sync' && wrote && wal === null) || syncRequested);
    if (sync) steps.push({ kind: 'sync', fd: activeFd });
    if (created.length > 0) steps.push({ kind: 'syncDirectory', path: this.context.directory });
    if (steps.length === 0) return { durable: null };
    // The WAL copies the frames now: the segment task may transfer their buffers to a worker.
    const walDurable = wal !== null && wrote ? this.appendToWal(wal, placements) : null;
    // Should the segment task fail, the WAL's verdict no longer matters (and must not go unheard).
    walDurable?.catch(() => {});
    const result = await this.context.executor.steps({ kind: 'steps', steps });
    // Opened before closed: a segment opened in this task may have rolled (and closed) in it too.
    for (const { segment, slot } of opened) segment.fd = result.fds[slot]!;
    for (const segment of created) this.files.added(segment);
    for (const { segment, frame, position: at } of placements) {
      segment.addFrame(frame, at, this.context.indexIntervalBytes);
      this.diskLastIndex = frame.firstIndex + frame.entryCount - 1;
    }
    for (const segment of closed) {
      segment.fd = -1;
      this.files.sealed(segment); // synced and will not grow: its recovery point
    }
    if (sync) {
      this.dirty = false;
      this.context.onFsync?.(result.syncMs);
    } else if (wrote) this.dirty = true;
    if (sync && this.mode === 'sync' && this.context.wal !== null) {
      // The segment files are synced through diskLastIndex: tell the WAL, so that replay never
      // plays this log's older records over it (they may hold entries this write cut). Reported
      // durable only once that record is durable too.
      this.walDirty = false;
      const durable = this.context.wal.append(
        { logId: this.context.logId, generation: this.files.generation },
        { syncedLastIndex: this.diskLastIndex },
      );
      return { durable };
    }
    return { durable: walDurable };
  }

  /**
   * A clean close: the last segment is synced and no write follows in this run, so its index is
   * stored too. The next open then reads no file of this log at all.
   */
  markClean(): void {
    if (this.failure === null && !this.dirty) this.files.closedClean();
  }

  private appendToWal(
    wal: WalWriter,
    placements: readonly { segment: Segment; frame: EncodedFrame; position: number }[],
  ): Promise<void> {
    this.walDirty = true;
    const frames: WalFrame[] = placements.map(({ segment, frame, position }) => ({
      segmentSequence: segment.sequence,
      position,
      bytes: frame.bytes,
    }));
    return wal.append({ logId: this.context.logId, generation: this.files.generation }, frames);
  }

  // ---- cuts, resets, compaction ------------------------------------------------------------

  private async runDestructive(op: DestructiveOp): Promise<void> {
    if (op.kind !== 'cut') await op.gate;
    if (op.kind !== 'compact') this.runningCut = op.kind === 'cut' ? op.index : op.firstIndex;
    try {
      this.diskLastIndex = await this.files.change(op, this.diskLastIndex);
    } finally {
      this.runningCut = Number.POSITIVE_INFINITY;
    }
  }
}
