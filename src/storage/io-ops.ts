// The I/O tasks that run off the event loop: a log's ordered write steps (one task per log per
// batch window, ending in at most one fdatasync per file), reads of whole verified frames, and the
// recovery scan of a segment. Plain data in and out, so a task can cross to a worker thread.

import path from 'node:path';
import { assert } from '../raft/errors.js';
import type { SyncFileSystem } from './file-system.js';
import {
  encodeFramePrefix,
  FRAME_HEADER_BYTES,
  FRAME_MAGIC,
  readFrameHeader,
  readVerifiedFrame,
  summarizeFrame,
  TIMESTAMP_NONE,
} from './frame.js';
import { segmentFileName } from './segment.js';
import { scanWalFile, type WalScanResult, type WalScanTask } from './wal.js';

/** A descriptor, or -(slot + 1) for a file this task opens in an earlier 'open' step. */
export type FdRef = number;

export type IoStep =
  | { kind: 'open'; path: string; slot: number }
  | { kind: 'write'; fd: FdRef; position: number; buffers: Uint8Array[] }
  | {
      kind: 'cut';
      fd: FdRef;
      path: string;
      hintPosition: number;
      endPosition: number;
      index: number;
      /** Where to copy the entries before `index` when it falls inside a frame; null: it may not. */
      copy: CopyTarget | null;
    }
  | { kind: 'truncate'; fd: FdRef; lengthBytes: number }
  | { kind: 'sync'; fd: FdRef }
  | { kind: 'close'; fd: FdRef }
  | { kind: 'unlink'; path: string }
  | { kind: 'syncDirectory'; path: string }
  | { kind: 'makeDirectory'; path: string }
  | { kind: 'removeDirectory'; path: string };

/** The new segment a cut inside a frame copies into; its base index is that frame's first index. */
export interface CopyTarget {
  directory: string;
  generation: number;
  sequence: number;
}

/**
 * Where a cut left the file (its new end: the start of the frame holding the cut index) and, for a
 * cut inside a frame, the new segment file holding that frame's entries before the cut.
 */
export interface CutResult {
  endPosition: number;
  /** Descriptor of the copy file, or -1 when the cut fell on a frame boundary. */
  copyFd: number;
  copyBytes: number;
  copyFirstIndex: number;
  copyFirstOffset: number;
  /** Largest record timestamp in the copy (for the time index). */
  copyMaxTimestampMs: number;
  copySequence: number;
}

export interface StepsTask {
  kind: 'steps';
  steps: IoStep[];
}

export interface StepsResult {
  /** Descriptors opened by 'open' steps, by slot. */
  fds: number[];
  cut: CutResult | null;
  /** Time spent in this task's file fdatasyncs ('sync' steps), in ms (for the fsync metric). */
  syncMs: number;
}

export interface ReadTask {
  kind: 'read';
  path: string;
  position: number;
  /** Read no further than this (the end of what completed writes put in the file). */
  endPosition: number;
  /** Stop after the frame that reaches this many bytes (at least one whole frame is read). */
  maxBytes: number;
  /** Frames wholly below this index are walked past (header only) and not returned. */
  skipBelowIndex: number;
}

export interface ReadResult {
  /** Whole, CRC-verified frames starting at the task's position. */
  bytes: Uint8Array;
  /** Position of a frame that failed verification, or -1. */
  corruptAt: number;
}

export interface ScanTask {
  kind: 'scan';
  path: string;
  baseIndex: number;
  indexIntervalBytes: number;
  /**
   * lmdb holds an index of this file when it had this many bytes (-1: none): if it still has
   * them, the file is not read and the result says `indexed`.
   */
  indexedSizeBytes: number;
  /** Scan no further than this byte position (-1: the whole file); the background scrub's limit. */
  endPosition: number;
}

/** What recovery learns from one segment file. */
export interface ScanResult {
  fileBytes: number;
  /** The file still has the size of its stored index and was not read (the rest is unset). */
  indexed: boolean;
  /** End of the last whole, verified frame in sequence. */
  validEnd: number;
  /** Position of the first frame that failed its checks, or -1. */
  corruptAt: number;
  /** Position of a verified frame found after corruptAt (corruption before the tail), or -1. */
  validAfterCorrupt: number;
  lastIndex: number;
  firstOffset: number;
  /** Position of the frame holding firstOffset, or -1. */
  firstOffsetPosition: number;
  nextOffset: number;
  /** Sparse index: [raftIndex, position, recordOffset] per point, flattened. */
  points: number[];
  /** Largest record timestamp per point (null: unknown, an index stored before the time index). */
  pointMaxTimestamps: number[] | null;
  /** Term changes: [startIndex, term] per run, flattened. */
  termRuns: number[];
}

export interface ListTask {
  kind: 'list';
  path: string;
}

/** The step lists of several logs in one task: one message to a worker, not one per log. */
export interface MultiStepsTask {
  kind: 'multi';
  parts: StepsTask[];
}

/** Per part: its result, or the message of the error that stopped it (the other parts go on). */
export type MultiStepsResult = ({ ok: true; result: StepsResult } | { ok: false; error: string })[];

export type IoTask = StepsTask | ReadTask | ScanTask | ListTask | MultiStepsTask | WalScanTask;

export function runIoTask(
  fileSystem: SyncFileSystem,
  task: IoTask,
): StepsResult | ReadResult | ScanResult | string[] | MultiStepsResult | WalScanResult {
  switch (task.kind) {
    case 'multi':
      return task.parts.map((part) => {
        try {
          return { ok: true as const, result: runSteps(fileSystem, part.steps) };
        } catch (error) {
          return {
            ok: false as const,
            error: error instanceof Error ? (error.stack ?? error.message) : String(error),
          };
        }
      });
    case 'list':
      return fileSystem.listDirectory(task.path);
    case 'steps':
      return runSteps(fileSystem, task.steps);
    case 'read':
      return readFrames(fileSystem, task);
    case 'scan':
      return scanSegment(fileSystem, task);
    case 'walScan':
      return scanWalFile(fileSystem, task);
  }
}

export function runSteps(fileSystem: SyncFileSystem, steps: readonly IoStep[]): StepsResult {
  const result: StepsResult = { fds: [], cut: null, syncMs: 0 };
  const fd = (ref: FdRef): number => (ref >= 0 ? ref : result.fds[-ref - 1]!);
  for (const step of steps) {
    switch (step.kind) {
      case 'open':
        result.fds[step.slot] = fileSystem.openReadWrite(step.path);
        break;
      case 'write':
        fileSystem.writeAll(fd(step.fd), step.buffers, step.position);
        break;
      case 'cut':
        result.cut = cutFile(fileSystem, fd(step.fd), step);
        break;
      case 'truncate':
        fileSystem.truncate(fd(step.fd), step.lengthBytes);
        break;
      case 'sync': {
        const started = performance.now();
        fileSystem.syncData(fd(step.fd));
        result.syncMs += performance.now() - started;
        break;
      }
      case 'close':
        fileSystem.close(fd(step.fd));
        break;
      case 'unlink':
        fileSystem.unlink(step.path);
        break;
      case 'syncDirectory':
        fileSystem.syncDirectory(step.path);
        break;
      case 'makeDirectory':
        fileSystem.makeDirectory(step.path);
        break;
      case 'removeDirectory':
        fileSystem.removeDirectory(step.path);
        break;
    }
  }
  return result;
}

/** Reads exactly `length` bytes at `position`, or fewer only at the end of the file. */
function readAt(fileSystem: SyncFileSystem, fd: number, length: number, position: number): Uint8Array {
  const bytes = new Uint8Array(new ArrayBuffer(length));
  let got = 0;
  while (got < length) {
    const n = fileSystem.read(fd, bytes, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got === length ? bytes : bytes.subarray(0, got);
}

/**
 * Cuts the log at `index` inside this file: finds the frame holding it (walking headers from a
 * frame boundary at or before it) and truncates the file there. When `index` falls inside that
 * frame, the entries before it are first copied, as one frame, into a new file (copy-on-write)
 * that is synced and named durably BEFORE the truncation: a crash at any point leaves either the
 * old frame or its durable copy, never neither (recovery replays segments in creation order).
 */
function cutFile(
  fileSystem: SyncFileSystem,
  fd: number,
  step: { path: string; hintPosition: number; endPosition: number; index: number; copy: CopyTarget | null },
): CutResult {
  let position = step.hintPosition;
  while (position < step.endPosition) {
    const head = readAt(fileSystem, fd, FRAME_HEADER_BYTES, position);
    const header = readFrameHeader(head, 0, step.endPosition - position);
    assert(header !== null, `cut: no frame header at ${step.path}:${position}`);
    if (step.index > header.firstIndex + header.entryCount - 1) {
      position += header.frameBytes;
      continue;
    }
    const cut: CutResult = {
      endPosition: position,
      copyFd: -1,
      copyBytes: 0,
      copyFirstIndex: 0,
      copyFirstOffset: -1,
      copyMaxTimestampMs: TIMESTAMP_NONE,
      copySequence: 0,
    };
    if (step.index > header.firstIndex) {
      const copy = step.copy;
      assert(copy !== null, `cut: index ${step.index} inside the frame at ${step.path}:${position}`);
      const copyPath = path.join(
        copy.directory,
        segmentFileName(copy.generation, header.firstIndex, copy.sequence),
      );
      const frame = readAt(fileSystem, fd, header.frameBytes, position);
      const verified = readVerifiedFrame(frame, 0, frame.length);
      assert(verified !== null, `cut: frame at ${step.path}:${position} fails its CRC`);
      const prefix = encodeFramePrefix(frame, 0, verified, step.index - header.firstIndex);
      const prefixHeader = readVerifiedFrame(prefix, 0, prefix.length)!;
      cut.copyFd = fileSystem.openReadWrite(copyPath);
      fileSystem.writeAll(cut.copyFd, [prefix], 0);
      fileSystem.syncData(cut.copyFd);
      fileSystem.syncDirectory(copy.directory);
      cut.copySequence = copy.sequence;
      cut.copyBytes = prefix.length;
      cut.copyFirstIndex = header.firstIndex;
      const copySummary = summarizeFrame(prefix, 0, prefixHeader);
      cut.copyFirstOffset = copySummary.firstOffset;
      cut.copyMaxTimestampMs = copySummary.maxTimestampMs;
    }
    fileSystem.truncate(fd, position);
    return cut;
  }
  assert(position === step.endPosition, `cut: walked past the end of ${step.path}`);
  return {
    endPosition: position,
    copyFd: -1,
    copyBytes: 0,
    copyFirstIndex: 0,
    copyFirstOffset: -1,
    copyMaxTimestampMs: TIMESTAMP_NONE,
    copySequence: 0,
  };
}

function readFrames(fileSystem: SyncFileSystem, task: ReadTask): ReadResult {
  const fd = fileSystem.openReadOnly(task.path);
  try {
    const chunkBytes = Math.max(task.maxBytes, 64 * 1024);
    let base = task.position; // file position of bytes[0]
    let bytes = readAt(fileSystem, fd, Math.min(task.endPosition - base, chunkBytes), base);
    let at = 0;
    let startAt = -1;
    while (base + at < task.endPosition) {
      const header =
        bytes.length - at >= FRAME_HEADER_BYTES ? readFrameHeader(bytes, at, task.endPosition - base) : null;
      if (header === null && bytes.length - at >= FRAME_HEADER_BYTES)
        return corruptRead(bytes, startAt, at, base);
      if (header !== null && header.firstIndex + header.entryCount <= task.skipBelowIndex) {
        at += header.frameBytes; // wholly before the range: walk past it unchecked, it is not returned
        continue;
      }
      if (header === null || at + header.frameBytes > bytes.length) {
        if (startAt >= 0) break; // return the whole frames we have
        base += at; // read again from this frame, all of it
        bytes = readAt(
          fileSystem,
          fd,
          Math.min(task.endPosition - base, Math.max(chunkBytes, header?.frameBytes ?? 0)),
          base,
        );
        at = 0;
        continue;
      }
      if (readVerifiedFrame(bytes, at, at + header.frameBytes) === null)
        return corruptRead(bytes, startAt, at, base);
      if (startAt < 0) startAt = at;
      at += header.frameBytes;
      if (at - startAt >= task.maxBytes) break;
    }
    return { bytes: startAt < 0 ? new Uint8Array(0) : bytes.subarray(startAt, at), corruptAt: -1 };
  } finally {
    fileSystem.close(fd);
  }
}

function corruptRead(bytes: Uint8Array, startAt: number, at: number, base: number): ReadResult {
  return { bytes: startAt < 0 ? new Uint8Array(0) : bytes.subarray(startAt, at), corruptAt: base + at };
}

const SCAN_CHUNK_BYTES = 4 * 1024 * 1024;

/** Walks a segment's frames in sequence, verifying each, and builds its sparse index. */
function scanSegment(fileSystem: SyncFileSystem, task: ScanTask): ScanResult {
  const fd = fileSystem.openReadOnly(task.path);
  try {
    const fileSize = fileSystem.sizeBytes(fd);
    const fileBytes = task.endPosition >= 0 ? Math.min(task.endPosition, fileSize) : fileSize;
    const result: ScanResult = {
      fileBytes: fileSize,
      indexed: fileSize === task.indexedSizeBytes,
      validEnd: 0,
      corruptAt: -1,
      validAfterCorrupt: -1,
      lastIndex: task.baseIndex - 1,
      firstOffset: -1,
      firstOffsetPosition: -1,
      nextOffset: -1,
      points: [],
      pointMaxTimestamps: [],
      termRuns: [],
    };
    let chunk: Uint8Array = new Uint8Array(0);
    let chunkStart = 0;
    let position = 0;
    let lastPoint = -Infinity;
    if (result.indexed) return result;
    while (position < fileBytes) {
      if (position + FRAME_HEADER_BYTES > chunkStart + chunk.length) {
        chunkStart = position;
        chunk = readAt(fileSystem, fd, Math.min(SCAN_CHUNK_BYTES, fileBytes - position), position);
      }
      const head = readFrameHeader(chunk, position - chunkStart, fileBytes - chunkStart);
      if (head !== null && position + head.frameBytes > chunkStart + chunk.length) {
        chunkStart = position;
        chunk = readAt(
          fileSystem,
          fd,
          Math.max(head.frameBytes, Math.min(SCAN_CHUNK_BYTES, fileBytes - position)),
          position,
        );
      }
      const at = position - chunkStart;
      const header = head === null ? null : readVerifiedFrame(chunk, at, chunk.length);
      if (header === null || header.firstIndex !== result.lastIndex + 1) {
        result.corruptAt = position;
        result.validAfterCorrupt = findVerifiedFrameAfter(fileSystem, fd, position + 1, fileBytes);
        break;
      }
      const summary = summarizeFrame(chunk, at, header);
      if (summary.firstOffset >= 0) {
        if (result.firstOffset < 0) {
          result.firstOffset = summary.firstOffset;
          result.firstOffsetPosition = position;
        }
        result.nextOffset = summary.nextOffset;
      }
      if (position - lastPoint >= task.indexIntervalBytes) {
        result.points.push(
          header.firstIndex,
          position,
          summary.firstOffset >= 0 ? summary.firstOffset : result.nextOffset,
        );
        result.pointMaxTimestamps!.push(summary.maxTimestampMs);
        lastPoint = position;
      } else {
        const last = result.pointMaxTimestamps!.length - 1;
        if (summary.maxTimestampMs > result.pointMaxTimestamps![last]!)
          result.pointMaxTimestamps![last] = summary.maxTimestampMs;
      }
      let runStart = header.firstIndex;
      for (let r = 0; r < summary.termRuns.length; r += 2) {
        const term = summary.termRuns[r]!;
        const runs = result.termRuns;
        if (runs.length === 0 || runs[runs.length - 1] !== term) runs.push(runStart, term);
        runStart += summary.termRuns[r + 1]!;
      }
      result.lastIndex += header.entryCount;
      position += header.frameBytes;
      result.validEnd = position;
    }
    return result;
  } finally {
    fileSystem.close(fd);
  }
}

/** Searches [from, fileBytes) for any whole frame that passes its CRC; its position, or -1. */
function findVerifiedFrameAfter(
  fileSystem: SyncFileSystem,
  fd: number,
  from: number,
  fileBytes: number,
): number {
  const magic0 = FRAME_MAGIC & 0xff;
  let chunkStart = from;
  while (chunkStart < fileBytes) {
    const chunk = readAt(fileSystem, fd, Math.min(SCAN_CHUNK_BYTES, fileBytes - chunkStart), chunkStart);
    for (let i = 0; i + 4 <= chunk.length; i++) {
      if (chunk[i] !== magic0) continue;
      const candidate = chunkStart + i;
      const head = readAt(fileSystem, fd, FRAME_HEADER_BYTES, candidate);
      const header = readFrameHeader(head, 0, fileBytes - candidate);
      if (header === null) continue;
      const frame = readAt(fileSystem, fd, header.frameBytes, candidate);
      if (readVerifiedFrame(frame, 0, frame.length) !== null) return candidate;
    }
    chunkStart += Math.max(1, chunk.length - 3);
  }
  return -1;
}
