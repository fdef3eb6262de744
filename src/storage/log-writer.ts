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
import type { FdRef, IoStep, StepsResult } from './io-ops.js';
import { Segment } from './segment.js';
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

/** One segment file as retention sees it. */
export interface SegmentSummary {
  baseIndex: number;
  /** Last index that completed writes put in the file (baseIndex - 1 when empty). */
  lastIndex: number;
  /** Bytes that completed writes filled. */
  sizeBytes: number;
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
  private segments: Segment[];
  private generation: number;
  /** Last index the completed tasks put on disk. */
  private diskLastIndex: number;
  private ops: Op[] = [];
  private opsHead = 0;
  /** Lowest index a queued cut or reset will remove (Infinity: none queued). */
  private lowestQueuedCut = Number.POSITIVE_INFINITY;
  private pumping = false;
  private idleWaiters: (() => void)[] = [];
  private failure: StorageError | null = null;
  private dirty = false;
  private syncQueued = false;
  private readsInFlight = 0;
  private readsDrained: (() => void) | null = null;
  private destructive: Promise<void> | null = null;
  /** Creation sequence of the next segment file. */
  private nextSequence = 1;
  /** Written batches whose WAL records (or "synced" record) are not durable yet, chained in order. */
  private pendingDurable: Promise<void> | null = null;
  /** Frames went to the WAL since the last checkpoint sync: the segment file is behind it. */
  private walDirty = false;
  /** A read or the scrub found a bad frame: no index is stored again in this run. */
  private corruptionFound = false;
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
    this.segments = segments;
    for (const segment of segments) this.nextSequence = Math.max(this.nextSequence, segment.sequence + 1);
    this.diskLastIndex = diskLastIndex;
    this.generation = generation;
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
    let active = this.segments.length > 0 ? this.segments[this.segments.length - 1]! : null;
    let activeFd: FdRef = 0;
    assert(active === null || !active.indexStored, `append to ${active?.path}, whose index is stored`);
    if (active !== null) activeFd = active.fd >= 0 ? active.fd : this.openStep(steps, opened, active);
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
        active = this.newSegment(op.frame.firstIndex);
        created.push(active);
        activeFd = this.openStep(steps, opened, active);
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
    for (const segment of created) this.segments.push(segment);
    for (const { segment, frame, position: at } of placements) {
      segment.addFrame(frame, at, this.context.indexIntervalBytes);
      this.diskLastIndex = frame.firstIndex + frame.entryCount - 1;
    }
    for (const segment of closed) {
      segment.fd = -1;
      this.storeIndex(segment); // synced and sealed: its recovery point
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
        { logId: this.context.logId, generation: this.generation },
        { syncedLastIndex: this.diskLastIndex },
      );
      return { durable };
    }
    return { durable: walDurable };
  }

  /**
   * Stores the index of a segment that is synced and will not be appended to (it rolled, or the
   * log closes cleanly), so that a restart need not read it. Not awaited: until lmdb has it, a
   * restart reads the file, as it would without it.
   */
  private storeIndex(segment: Segment): void {
    if (this.corruptionFound) return;
    this.context.store.putSegmentIndex(this.context.logId, segment.indexRecord());
    segment.indexStored = true;
  }

  /** Removes the stored indexes of segments about to change or go; durably, if `durable`. */
  private async dropIndexes(segments: readonly Segment[], durable: boolean): Promise<void> {
    let removed = false;
    for (const segment of segments) {
      if (!segment.indexStored) continue;
      this.context.store.removeSegmentIndex(this.context.logId, segment.sequence);
      segment.indexStored = false;
      removed = true;
    }
    if (removed && durable) await this.context.store.durable();
  }

  /**
   * Corruption was found in this log: forget every stored index (durably), so that the next open
   * reads every file and finds it there too.
   */
  forgetIndexes(): Promise<void> {
    this.corruptionFound = true;
    return this.dropIndexes(this.segments, true);
  }

  /**
   * A clean close: the last segment is synced and no write follows in this run, so its index is
   * stored too. The next open then reads no file of this log at all.
   */
  markClean(): void {
    const last = this.segments[this.segments.length - 1];
    if (last !== undefined && this.failure === null && !this.dirty) this.storeIndex(last);
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
    return wal.append({ logId: this.context.logId, generation: this.generation }, frames);
  }

  private newSegment(baseIndex: number): Segment {
    return new Segment(this.context.directory, {
      generation: this.generation,
      baseIndex,
      sequence: this.nextSequence++,
    });
  }

  private openStep(steps: IoStep[], opened: { segment: Segment; slot: number }[], segment: Segment): FdRef {
    const slot = opened.length;
    opened.push({ segment, slot });
    steps.push({ kind: 'open', path: segment.path, slot });
    return -(slot + 1);
  }

  // ---- cuts, resets, compaction ------------------------------------------------------------

  private async runDestructive(op: DestructiveOp): Promise<void> {
    if (op.kind !== 'cut') await op.gate;
    let release: () => void = () => {};
    this.destructive = new Promise((resolve) => {
      release = resolve;
    });
    try {
      while (this.readsInFlight > 0) {
        await new Promise<void>((resolve) => {
          this.readsDrained = resolve;
        });
      }
      if (op.kind === 'cut') await this.runCut(op.index);
      else if (op.kind === 'reset') await this.runReset(op.generation, op.firstIndex);
      else await this.runCompact(op.index);
    } finally {
      this.destructive = null;
      release();
    }
  }

  private removeSteps(steps: IoStep[], segments: readonly Segment[]): void {
    for (const segment of segments) {
      if (segment.fd >= 0) steps.push({ kind: 'close', fd: segment.fd });
      steps.push({ kind: 'unlink', path: segment.path });
    }
  }

  /**
   * Cuts the log at `index`: later segments go; the segment holding `index` is truncated at the
   * frame that holds it. A cut inside a frame first copies that frame's earlier entries into a new
   * segment (see io-ops.ts cutFile), which becomes the one written next.
   */
  private async runCut(index: number): Promise<void> {
    const keep = this.segments.filter((segment) => segment.baseIndex < index);
    const removed = this.segments.filter((segment) => segment.baseIndex >= index);
    const target = keep.length > 0 ? keep[keep.length - 1]! : null;
    const cutsTarget = target !== null && target.lastIndex >= index;
    // A stored index that outlived this cut would describe bytes that are no longer there.
    // The target is written next even when the cut leaves it whole.
    await this.dropIndexes(target !== null ? [target, ...removed] : removed, true);
    const steps: IoStep[] = [];
    const opened: { segment: Segment; slot: number }[] = [];
    if (cutsTarget) {
      const fd = target.fd >= 0 ? target.fd : this.openStep(steps, opened, target);
      // With the WAL the target's frames may not be synced yet; the copy below becomes durable at
      // once, and a durable copy after an unsynced target would leave a gap on power loss.
      if (this.mode === 'sync' && this.context.wal !== null) steps.push({ kind: 'sync', fd });
      const hintPosition = target.positionForIndex(index);
      // The copy's base index is the first index of the frame holding `index`: the worker names it.
      const copy = {
        directory: this.context.directory,
        generation: this.generation,
        sequence: this.nextSequence++,
      };
      steps.push({
        kind: 'cut',
        fd,
        path: target.path,
        hintPosition,
        endPosition: target.endPosition,
        index,
        copy,
      });
    }
    this.removeSteps(steps, removed);
    if (removed.length > 0) steps.push({ kind: 'syncDirectory', path: this.context.directory });
    if (steps.length === 0) return;
    const result = await this.context.executor.steps({ kind: 'steps', steps });
    for (const { segment, slot } of opened) segment.fd = result.fds[slot]!;
    for (const segment of removed) segment.fd = -1;
    this.segments = keep;
    if (cutsTarget) {
      assert(result.cut !== null, 'cut step returned no result');
      await this.afterCut(target, index, result.cut);
    }
    this.diskLastIndex = Math.min(this.diskLastIndex, index - 1);
  }

  private async afterCut(
    target: Segment,
    index: number,
    cut: NonNullable<StepsResult['cut']>,
  ): Promise<void> {
    const copied = cut.copyFd >= 0;
    const copyTermRuns = copied ? target.termRunsBetween(cut.copyFirstIndex, index) : [];
    target.cutTo(cut.endPosition, copied ? cut.copyFirstIndex - 1 : index - 1);
    if (!copied) return;
    const copy = new Segment(this.context.directory, {
      generation: this.generation,
      baseIndex: cut.copyFirstIndex,
      sequence: cut.copySequence,
    });
    copy.fd = cut.copyFd;
    copy.addFrame(
      {
        firstIndex: cut.copyFirstIndex,
        entryCount: index - cut.copyFirstIndex,
        firstOffset: cut.copyFirstOffset,
        frameBytes: cut.copyBytes,
        termRuns: copyTermRuns,
      },
      0,
      this.context.indexIntervalBytes,
    );
    if (target.endPosition === 0) {
      // The copy holds all that was left of the target: the empty file goes.
      const steps: IoStep[] = [];
      this.removeSteps(steps, [target]);
      steps.push({ kind: 'syncDirectory', path: this.context.directory });
      await this.context.executor.steps({ kind: 'steps', steps });
      target.fd = -1;
      this.segments.pop();
    }
    this.segments.push(copy);
  }

  private async runReset(generation: number, firstIndex: number): Promise<void> {
    // Not awaited: the new generation makes recovery ignore these indexes anyway.
    await this.dropIndexes(this.segments, false);
    const steps: IoStep[] = [];
    this.removeSteps(steps, this.segments);
    steps.push({ kind: 'syncDirectory', path: this.context.directory });
    await this.context.executor.steps({ kind: 'steps', steps });
    this.segments = [];
    this.generation = generation;
    this.diskLastIndex = firstIndex - 1;
  }

  private async runCompact(index: number): Promise<void> {
    let count = 0;
    while (count < this.segments.length && this.segments[count]!.lastIndex <= index) count++;
    if (count === 0) return;
    const removed = this.segments.slice(0, count);
    // Not awaited: recovery drops an index whose file is gone.
    await this.dropIndexes(removed, false);
    const steps: IoStep[] = [];
    this.removeSteps(steps, removed);
    steps.push({ kind: 'syncDirectory', path: this.context.directory });
    await this.context.executor.steps({ kind: 'steps', steps });
    for (const segment of removed) segment.fd = -1;
    this.segments = this.segments.slice(count);
  }

  /**
   * The segment files as completed writes left them, oldest first; the last one is the one
   * written next (the active segment). For retention, which cuts whole closed segments.
   */
  segmentSummaries(): SegmentSummary[] {
    return this.segments.map((segment) => ({
      baseIndex: segment.baseIndex,
      lastIndex: segment.lastIndex,
      sizeBytes: segment.endPosition,
    }));
  }

  // ---- readers -----------------------------------------------------------------------------

  /** Runs a read against the segment list, never while a cut, reset or compaction runs. */
  async withSegments<T>(read: (segments: readonly Segment[]) => Promise<T>): Promise<T> {
    while (this.destructive !== null) await this.destructive;
    this.readsInFlight++;
    try {
      return await read(this.segments);
    } finally {
      this.readsInFlight--;
      if (this.readsInFlight === 0 && this.readsDrained !== null) {
        const drained = this.readsDrained;
        this.readsDrained = null;
        drained();
      }
    }
  }

  /** Closes open descriptors (after idle()). */
  /** Bytes of segment files that completed writes filled. */
  diskBytes(): number {
    let bytes = 0;
    for (const segment of this.segments) bytes += segment.endPosition;
    return bytes;
  }

  async closeFiles(): Promise<void> {
    const steps: IoStep[] = [];
    for (const segment of this.segments) {
      if (segment.fd >= 0) steps.push({ kind: 'close', fd: segment.fd });
    }
    if (steps.length > 0) await this.context.executor.steps({ kind: 'steps', steps });
    for (const segment of this.segments) segment.fd = -1;
  }
}
