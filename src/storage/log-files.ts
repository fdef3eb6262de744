// The segment files of one log: the list, creating and rolling files, the stored index of each
// sealed file (its recovery point, see docs/storage.md), and what changes files in place (a suffix
// cut, a reset for a snapshot, compaction), which never runs while a reader is in a file. The
// write path (log-writer.ts) appends through it; the readers (log-reader.ts) read through it.

import { assert } from '../raft/errors.js';
import type { IoExecutor } from './io-executor.js';
import type { FdRef, IoStep, StepsResult } from './io-ops.js';
import { Segment } from './segment.js';
import type { StateStore } from './state-store.js';

export interface LogFilesContext {
  executor: IoExecutor;
  store: StateStore;
  logId: number;
  /** The log's directory of segment files. */
  directory: string;
  indexIntervalBytes: number;
  /**
   * The segment files may hold frames that are durable only in the WAL: a cut copying a frame's
   * prefix syncs the file it cuts first (a durable copy after unsynced frames would leave a gap).
   */
  syncBeforeCut: boolean;
}

/** One segment file as retention sees it. */
export interface SegmentSummary {
  baseIndex: number;
  /** Last index that completed writes put in the file (baseIndex - 1 when empty). */
  lastIndex: number;
  /** Bytes that completed writes filled. */
  sizeBytes: number;
}

export type LayoutChange =
  | { kind: 'cut'; index: number }
  | { kind: 'reset'; generation: number; firstIndex: number }
  | { kind: 'compact'; index: number };

/** Adds an 'open' step for `segment`; returns the reference later steps use for its descriptor. */
export function openStep(
  steps: IoStep[],
  opened: { segment: Segment; slot: number }[],
  segment: Segment,
): FdRef {
  const slot = opened.length;
  opened.push({ segment, slot });
  steps.push({ kind: 'open', path: segment.path, slot });
  return -(slot + 1);
}

export class LogFiles {
  generation: number;
  private segmentList: Segment[];
  private readonly context: LogFilesContext;
  /** Creation sequence of the next segment file. */
  private nextSequence = 1;
  private readsInFlight = 0;
  private readsDrained: (() => void) | null = null;
  private changing: Promise<void> | null = null;
  /** A read or the scrub found a bad frame: no index is stored again in this run. */
  private corruptionFound = false;

  constructor(context: LogFilesContext, segments: Segment[], generation: number) {
    this.context = context;
    this.segmentList = segments;
    this.generation = generation;
    for (const segment of segments) this.nextSequence = Math.max(this.nextSequence, segment.sequence + 1);
  }

  get segments(): readonly Segment[] {
    return this.segmentList;
  }

  /** The segment written next, or null when the log has no file. */
  active(): Segment | null {
    return this.segmentList.length > 0 ? this.segmentList[this.segmentList.length - 1]! : null;
  }

  newSegment(baseIndex: number): Segment {
    return new Segment(this.context.directory, {
      generation: this.generation,
      baseIndex,
      sequence: this.nextSequence++,
    });
  }

  /** A segment created by a completed task joins the list. */
  added(segment: Segment): void {
    this.segmentList.push(segment);
  }

  // ---- stored indexes (the recovery point) --------------------------------------------------

  /**
   * Stores the index of a segment that is synced and will not be appended to (it rolled, or the
   * log closes cleanly), so that a restart need not read it. Not awaited: until lmdb has it, a
   * restart reads the file, as it would without it.
   */
  sealed(segment: Segment): void {
    if (this.corruptionFound) return;
    this.context.store.putSegmentIndex(this.context.logId, segment.indexRecord());
    segment.indexStored = true;
  }

  /** A clean close, the last segment synced: its index is stored too. */
  closedClean(): void {
    const last = this.active();
    if (last !== null) this.sealed(last);
  }

  /**
   * Corruption was found in this log: forget every stored index (durably), so that the next open
   * reads every file and finds it there too.
   */
  forgetIndexes(): Promise<void> {
    this.corruptionFound = true;
    return this.dropIndexes(this.segmentList, true);
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

  // ---- readers -----------------------------------------------------------------------------

  /** Runs a read against the segment list, never while a cut, reset or compaction runs. */
  async withSegments<T>(read: (segments: readonly Segment[]) => Promise<T>): Promise<T> {
    while (this.changing !== null) await this.changing;
    this.readsInFlight++;
    try {
      return await read(this.segmentList);
    } finally {
      this.readsInFlight--;
      if (this.readsInFlight === 0 && this.readsDrained !== null) {
        const drained = this.readsDrained;
        this.readsDrained = null;
        drained();
      }
    }
  }

  // ---- changes in place --------------------------------------------------------------------

  /** Runs a cut, reset or compaction once no reader is in a file; the last index left on disk. */
  async change(change: LayoutChange, diskLastIndex: number): Promise<number> {
    let release: () => void = () => {};
    this.changing = new Promise((resolve) => {
      release = resolve;
    });
    try {
      while (this.readsInFlight > 0) {
        await new Promise<void>((resolve) => {
          this.readsDrained = resolve;
        });
      }
      if (change.kind === 'cut') {
        await this.cut(change.index);
        return Math.min(diskLastIndex, change.index - 1);
      }
      if (change.kind === 'reset') {
        await this.reset(change.generation);
        return change.firstIndex - 1;
      }
      await this.compact(change.index);
      return diskLastIndex;
    } finally {
      this.changing = null;
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
  private async cut(index: number): Promise<void> {
    const keep = this.segmentList.filter((segment) => segment.baseIndex < index);
    const removed = this.segmentList.filter((segment) => segment.baseIndex >= index);
    const target = keep.length > 0 ? keep[keep.length - 1]! : null;
    const cutsTarget = target !== null && target.lastIndex >= index;
    // A stored index that outlived this cut would describe bytes that are no longer there. The
    // target is written next even when the cut leaves it whole.
    await this.dropIndexes(target !== null ? [target, ...removed] : removed, true);
    const steps: IoStep[] = [];
    const opened: { segment: Segment; slot: number }[] = [];
    if (cutsTarget) {
      const fd = target.fd >= 0 ? target.fd : openStep(steps, opened, target);
      if (this.context.syncBeforeCut) steps.push({ kind: 'sync', fd });
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
    this.segmentList = keep;
    if (cutsTarget) {
      assert(result.cut !== null, 'cut step returned no result');
      await this.afterCut(target, index, result.cut);
    }
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
        maxTimestampMs: cut.copyMaxTimestampMs,
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
      this.segmentList.pop();
    }
    this.segmentList.push(copy);
  }

  private async reset(generation: number): Promise<void> {
    // Not awaited: the new generation makes recovery ignore these indexes anyway.
    await this.dropIndexes(this.segmentList, false);
    const steps: IoStep[] = [];
    this.removeSteps(steps, this.segmentList);
    steps.push({ kind: 'syncDirectory', path: this.context.directory });
    await this.context.executor.steps({ kind: 'steps', steps });
    this.segmentList = [];
    this.generation = generation;
  }

  private async compact(index: number): Promise<void> {
    let count = 0;
    while (count < this.segmentList.length && this.segmentList[count]!.lastIndex <= index) count++;
    if (count === 0) return;
    const removed = this.segmentList.slice(0, count);
    // Not awaited: recovery drops an index whose file is gone.
    await this.dropIndexes(removed, false);
    const steps: IoStep[] = [];
    this.removeSteps(steps, removed);
    steps.push({ kind: 'syncDirectory', path: this.context.directory });
    await this.context.executor.steps({ kind: 'steps', steps });
    for (const segment of removed) segment.fd = -1;
    this.segmentList = this.segmentList.slice(count);
  }

  // ---- views -------------------------------------------------------------------------------

  /**
   * The segment files as completed writes left them, oldest first; the last one is the one
   * written next (the active segment). For retention, which cuts whole closed segments.
   */
  summaries(): SegmentSummary[] {
    return this.segmentList.map((segment) => ({
      baseIndex: segment.baseIndex,
      lastIndex: segment.lastIndex,
      sizeBytes: segment.endPosition,
    }));
  }

  /** Bytes of segment files that completed writes filled. */
  diskBytes(): number {
    let bytes = 0;
    for (const segment of this.segmentList) bytes += segment.endPosition;
    return bytes;
  }

  /** Closes open descriptors (after the writer is idle). */
  async closeFiles(): Promise<void> {
    const steps: IoStep[] = [];
    for (const segment of this.segmentList) {
      if (segment.fd >= 0) steps.push({ kind: 'close', fd: segment.fd });
    }
    if (steps.length > 0) await this.context.executor.steps({ kind: 'steps', steps });
    for (const segment of this.segmentList) segment.fd = -1;
  }
}
