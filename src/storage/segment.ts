// One segment file of a log as the event loop knows it: its place in the log, how far completed
// writes reach, its term runs, and a sparse in-memory index (one point per indexIntervalBytes) from
// Raft index, from record offset and from record timestamp to a frame position. A sealed segment's index is stored in lmdb
// (a SegmentIndexRecord) so that a restart need not read the file (docs/storage.md: "Indexes").

import path from 'node:path';
import { TIMESTAMP_NONE, TIMESTAMP_UNKNOWN } from './frame.js';
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
  // The time index: pointMaxTimestamps[i] is the largest record timestamp in the frames from
  // pointPositions[i] up to the next point (TIMESTAMP_NONE: no records, TIMESTAMP_UNKNOWN: frames
  // written before the time index). A cut may leave it too high, never too low.
  private readonly pointMaxTimestamps: number[] = [];
  /** The largest record timestamp in the file, as the points say. */
  maxTimestampMs = TIMESTAMP_NONE;

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
      readonly maxTimestampMs: number;
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
      this.pointMaxTimestamps.push(frame.maxTimestampMs);
    } else if (frame.maxTimestampMs > this.pointMaxTimestamps[points - 1]!) {
      this.pointMaxTimestamps[points - 1] = frame.maxTimestampMs;
    }
    if (frame.maxTimestampMs > this.maxTimestampMs) this.maxTimestampMs = frame.maxTimestampMs;
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
      pointMaxTimestamps: new Uint8Array(Float64Array.from(this.pointMaxTimestamps).buffer),
      termRuns: [...this.termRuns],
    };
  }

  /**
   * Loads a recovery scan's points (flattened [index, position, offset] triples), their largest
   * timestamps (one per point; null: unknown, from an index stored before the time index) and
   * term runs.
   */
  loadPoints(
    points: readonly number[],
    pointMaxTimestamps: ArrayLike<number> | null,
    firstOffset: number,
    firstOffsetPosition: number,
    termRuns: readonly number[],
  ): void {
    this.addTermRuns(termRuns);
    for (let i = 0; i < points.length; i += 3) {
      this.pointIndexes.push(points[i]!);
      this.pointPositions.push(points[i + 1]!);
      this.pointOffsets.push(points[i + 2]!);
      const timestampMs = pointMaxTimestamps === null ? TIMESTAMP_UNKNOWN : pointMaxTimestamps[i / 3]!;
      this.pointMaxTimestamps.push(timestampMs);
      if (timestampMs > this.maxTimestampMs) this.maxTimestampMs = timestampMs;
    }
    this.firstOffset = firstOffset;
    this.firstOffsetPosition = firstOffsetPosition;
  }

  /**
   * The time index: an offset at or below the first record of this file whose timestamp is at
   * least `timestampMs`, such that every record of the file below it is earlier; null when no
   * record of the file reaches it. Exact to the sparse point (the caller reads on from there).
   * Points past `indexMax` are not looked at (their frames may be about to be cut).
   */
  offsetForTime(timestampMs: number, indexMax: number): number | null {
    if (this.maxTimestampMs < timestampMs) return null;
    let knownOffset = this.firstOffset;
    for (let i = 0; i < this.pointMaxTimestamps.length && this.pointIndexes[i]! <= indexMax; i++) {
      const pointOffset = this.pointOffsets[i]!;
      // A point's offset is -1 when its first frame holds no records: the last known one is a
      // lower bound (offsets grow with position).
      if (pointOffset >= 0) knownOffset = pointOffset;
      if (this.pointMaxTimestamps[i]! >= timestampMs) return Math.max(knownOffset, 0);
    }
    return null;
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
      this.pointMaxTimestamps.pop();
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
