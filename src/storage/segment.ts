// One segment file of a log as the event loop knows it: its place in the log, how far completed
// writes reach, its term runs, and a sparse in-memory index (one point per indexIntervalBytes) from
// Raft index and from record offset to a frame position. A sealed segment's index is stored in lmdb
// (a SegmentIndexRecord) so that a restart need not read the file (docs/storage.md: "Indexes").

import path from 'node:path';
import type { SegmentIndexRecord } from './state-store.js';

const SEGMENT_SUFFIX = '.seg';
const INDEX_DIGITS = 20;

/**
 * `<generation>-<baseIndex, 20 digits>-<sequence>.seg`. The sequence orders segments by creation:
 * recovery replays them in that order, a segment overriding the log from its base index on (how a
 * copy-on-write cut that a crash interrupted resolves; see log-writer.ts runCut).
 */
export function segmentFileName(generation: number, baseIndex: number, sequence: number): string {
  return `${generation}-${String(baseIndex).padStart(INDEX_DIGITS, '0')}-${sequence}${SEGMENT_SUFFIX}`;
}

export interface SegmentName {
  generation: number;
  baseIndex: number;
  sequence: number;
}

export function parseSegmentFileName(name: string): SegmentName | null {
  const match = /^(\d+)-(\d{20})-(\d+)\.seg$/.exec(name);
  if (match === null) return null;
  return { generation: Number(match[1]), baseIndex: Number(match[2]), sequence: Number(match[3]) };
}

export class Segment {
  readonly baseIndex: number;
  readonly sequence: number;
  readonly path: string;
  /** Last index in the file as far as completed writes go (baseIndex - 1 when empty). */
  lastIndex: number;
  /** Bytes of the file that completed writes filled; reads never go past it. */
  endPosition: number;
  /** Offset of the first record in the file, or -1 when it holds none yet. */
  firstOffset = -1;
  private firstOffsetPosition = -1;
  /** Open descriptor while this is the segment being written, else -1. */
  fd = -1;
  /** lmdb holds a SegmentIndexRecord of this file: a cut of it must remove that first. */
  indexStored = false;
  readonly generation: number;
  /** Term changes in the file: [startIndex, term] per run, flattened. */
  private termRuns: number[] = [];
  // Sparse points, parallel arrays sorted by position. pointOffsets[i] is the first record offset
  // at or after pointPositions[i], or -1 when unknown (then offset lookups skip the point).
  private readonly pointIndexes: number[] = [];
  private readonly pointPositions: number[] = [];
  private readonly pointOffsets: number[] = [];

  constructor(directory: string, name: SegmentName) {
    this.baseIndex = name.baseIndex;
    this.sequence = name.sequence;
    this.generation = name.generation;
    this.path = path.join(directory, segmentFileName(name.generation, name.baseIndex, name.sequence));
    const baseIndex = name.baseIndex;
    this.lastIndex = baseIndex - 1;
    this.endPosition = 0;
  }

  get fileName(): string {
    return path.basename(this.path);
  }

  /** Records a frame that a completed write put at `position`. */
  addFrame(
    frame: {
      readonly firstIndex: number;
      readonly entryCount: number;
      readonly firstOffset: number;
      readonly frameBytes: number;
      readonly termRuns: readonly number[];
    },
    position: number,
    indexIntervalBytes: number,
  ): void {
    const points = this.pointPositions.length;
    const lastPoint = points > 0 ? this.pointPositions[points - 1]! : -Infinity;
    if (position - lastPoint >= indexIntervalBytes) {
      this.pointIndexes.push(frame.firstIndex);
      this.pointPositions.push(position);
      this.pointOffsets.push(frame.firstOffset);
    }
    if (this.firstOffset < 0 && frame.firstOffset >= 0) {
      this.firstOffset = frame.firstOffset;
      this.firstOffsetPosition = position;
    }
    this.addTermRuns(frame.termRuns);
    this.lastIndex = frame.firstIndex + frame.entryCount - 1;
    this.endPosition = position + frame.frameBytes;
  }

  private addTermRuns(runs: readonly number[]): void {
    for (let i = 0; i < runs.length; i += 2) {
      if (this.termRuns.length > 0 && this.termRuns.at(-1) === runs[i + 1]) continue;
      this.termRuns.push(runs[i]!, runs[i + 1]!);
    }
  }

  /** Term runs of entries [lo, hi) of this file, flattened [startIndex, term]. */
  termRunsBetween(lo: number, hi: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.termRuns.length; i += 2) {
      const next = i + 2 < this.termRuns.length ? this.termRuns[i + 2]! : Number.POSITIVE_INFINITY;
      if (next <= lo || this.termRuns[i]! >= hi) continue;
      out.push(Math.max(lo, this.termRuns[i]!), this.termRuns[i + 1]!);
    }
    return out;
  }

  /** What lmdb keeps of this file once it is synced and no longer appended to. */
  indexRecord(): SegmentIndexRecord {
    const count = this.pointIndexes.length;
    const points = new Float64Array(count * 3);
    for (let i = 0; i < count; i++) {
      points[3 * i] = this.pointIndexes[i]!;
      points[3 * i + 1] = this.pointPositions[i]!;
      points[3 * i + 2] = this.pointOffsets[i]!;
    }
    return {
      generation: this.generation,
      baseIndex: this.baseIndex,
      sequence: this.sequence,
      sizeBytes: this.endPosition,
      lastIndex: this.lastIndex,
      firstOffset: this.firstOffset,
      firstOffsetPosition: this.firstOffsetPosition,
      points: new Uint8Array(points.buffer),
      termRuns: [...this.termRuns],
    };
  }

  /** Loads a recovery scan's points (flattened [index, position, offset] triples) and term runs. */
  loadPoints(
    points: readonly number[],
    firstOffset: number,
    firstOffsetPosition: number,
    termRuns: readonly number[],
  ): void {
    this.addTermRuns(termRuns);
    for (let i = 0; i < points.length; i += 3) {
      this.pointIndexes.push(points[i]!);
      this.pointPositions.push(points[i + 1]!);
      this.pointOffsets.push(points[i + 2]!);
    }
    this.firstOffset = firstOffset;
    this.firstOffsetPosition = firstOffsetPosition;
  }

  /** A frame boundary at or before the frame holding `index`. */
  positionForIndex(index: number): number {
    let lo = 0;
    let hi = this.pointIndexes.length - 1;
    let found = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.pointIndexes[mid]! <= index) {
        found = this.pointPositions[mid]!;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  /** A frame boundary at or before the frame holding record `offset`. */
  positionForOffset(offset: number): number {
    let found = 0;
    for (let i = this.pointOffsets.length - 1; i >= 0; i--) {
      const pointOffset = this.pointOffsets[i]!;
      if (pointOffset >= 0 && pointOffset <= offset) {
        found = this.pointPositions[i]!;
        break;
      }
    }
    return found;
  }

  /**
   * The log was cut inside this file: it now ends at `endPosition` with `lastIndex`. Points at or
   * past the new end go; a re-encoded prefix frame starts at a position that was a frame boundary
   * already, so the remaining points stay valid.
   */
  cutTo(endPosition: number, lastIndex: number): void {
    while (this.pointPositions.length > 0 && this.pointPositions.at(-1)! >= endPosition) {
      this.pointIndexes.pop();
      this.pointPositions.pop();
      this.pointOffsets.pop();
    }
    if (this.firstOffsetPosition >= endPosition) {
      this.firstOffset = -1;
      this.firstOffsetPosition = -1;
    }
    this.termRuns = this.termRunsBetween(this.baseIndex, lastIndex + 1);
    this.endPosition = endPosition;
    this.lastIndex = lastIndex;
  }
}
