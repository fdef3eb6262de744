// Opening a log after a restart: its Raft state from lmdb, and its segment files scanned (in the
// I/O pool) frame by frame, except those whose stored index (their recovery point) still matches
// the file: a sealed segment, or the last one after a clean close. A torn or corrupt tail is cut
// back to the last whole frame; a bad frame with good frames after it, or in any segment but the
// last, is corruption: refuse to open. Files taken from their index are verified later, by the
// engine's background scrub.

import path from 'node:path';
import type { ConfState } from '../raft/types.js';
import { StorageError } from './errors.js';
import type { IoExecutor } from './io-executor.js';
import type { IoStep, ScanResult } from './io-ops.js';
import type { PersistenceMode, RecoveredLog } from './partition-log.js';
import { parseSegmentFileName, Segment } from './segment.js';
import type { LogStart, SegmentIndexRecord, StateStore, StoredSnapshot } from './state-store.js';

export interface RecoveryInput {
  store: StateStore;
  executor: IoExecutor;
  logId: number;
  directory: string;
  mode: PersistenceMode;
  indexIntervalBytes: number;
  /** The node may have lost power since async-mode writes it acknowledged. */
  powerLossSuspected: boolean;
  /**
   * Where the oldest frame the shared WAL still holds for this log was written (segment sequence,
   * byte position), or null. Segment bytes from there on may never have been synced, and the WAL
   * replay rewrites them: a bad frame there is a torn write, not corruption.
   */
  walCoveredFrom?: { sequence: number; position: number } | null;
}

const EMPTY_CONF: ConfState = { voters: [], learners: [] };

export async function recoverLog(input: RecoveryInput): Promise<RecoveredLog> {
  const { store, logId } = input;
  const snapshot: StoredSnapshot = store.snapshot(logId) ?? {
    metadata: { index: 0, term: 0, confState: EMPTY_CONF },
    data: new Uint8Array(0),
  };
  const storedStart = store.logStart(logId);
  const start: LogStart = storedStart ?? {
    firstIndex: snapshot.metadata.index + 1,
    prevTerm: snapshot.metadata.term,
    generation: 0,
  };
  const hardState = store.hardState(logId);
  const base = { snapshot, hardState, confState: store.confState(logId), applied: store.applied(logId) };
  if (input.mode === 'memory') {
    // Entries never survive a restart here; files left by an earlier mode go too.
    await input.executor.steps({
      kind: 'steps',
      steps: [{ kind: 'removeDirectory', path: input.directory }],
    });
    const memoryStart = {
      firstIndex: snapshot.metadata.index + 1,
      prevTerm: snapshot.metadata.term,
      generation: start.generation,
    };
    const hadState = hardState.term > 0 || hardState.commit > snapshot.metadata.index;
    return {
      ...base,
      segments: [],
      unverified: [],
      start: memoryStart,
      lastIndex: snapshot.metadata.index,
      termRuns: [],
      mayHaveLostTail: hadState,
      scannedBytes: 0,
    };
  }
  const { segments, cutUncovered, unverified, scannedBytes } = await recoverSegments(input, start);
  const lastIndex =
    segments.length > 0 ? segments[segments.length - 1]!.segment.lastIndex : start.firstIndex - 1;
  const mayHaveLostTail =
    (input.mode === 'async' && input.powerLossSuspected) || cutUncovered || store.lostTail(logId);
  if (mayHaveLostTail) store.putLostTail(logId, true);
  return {
    ...base,
    segments: segments.map((s) => s.segment),
    unverified,
    start,
    lastIndex: Math.max(lastIndex, start.firstIndex - 1),
    termRuns: segments.flatMap((s) => s.scan.termRuns),
    mayHaveLostTail,
    scannedBytes,
  };
}

interface ScannedSegment {
  segment: Segment;
  scan: ScanResult;
}

async function recoverSegments(
  input: RecoveryInput,
  start: LogStart,
): Promise<{
  segments: ScannedSegment[];
  cutUncovered: boolean;
  unverified: { segment: Segment; endPosition: number }[];
  /** Bytes of the files read (those past the log's recovery point). */
  scannedBytes: number;
}> {
  const { executor, directory } = input;
  await executor.steps({
    kind: 'steps',
    steps: [
      { kind: 'makeDirectory', path: directory },
      { kind: 'syncDirectory', path: path.dirname(directory) },
    ],
  });
  const names = await executor.list(directory);
  const cleanup: IoStep[] = [];
  const found: Segment[] = [];
  for (const name of names) {
    const parsed = parseSegmentFileName(name);
    if (parsed === null) continue;
    if (parsed.generation !== start.generation)
      cleanup.push({ kind: 'unlink', path: path.join(directory, name) });
    else found.push(new Segment(directory, parsed));
  }
  found.sort((a, b) => a.sequence - b.sequence);
  const indexes = input.store.segmentIndexesOf(input.logId);
  const usable = found.map((segment) => {
    const record = indexes.get(segment.sequence);
    const matches =
      record !== undefined &&
      record.generation === start.generation &&
      record.baseIndex === segment.baseIndex;
    return matches ? record : null;
  });
  const scans = await Promise.all(
    found.map((segment, i) =>
      executor.scan({
        kind: 'scan',
        path: segment.path,
        baseIndex: segment.baseIndex,
        indexIntervalBytes: input.indexIntervalBytes,
        indexedSizeBytes: usable[i]?.sizeBytes ?? -1,
        endPosition: -1,
      }),
    ),
  );
  const scanned: ScannedSegment[] = found.map((segment, i) => {
    const scan = scans[i]!;
    if (!scan.indexed) return { segment, scan };
    segment.indexStored = true;
    return { segment, scan: scanFromIndex(usable[i]!, scan.fileBytes) };
  });
  // An index whose file is gone, or that no longer matches its file, is stale.
  for (const [sequence] of indexes) {
    if (!scanned.some((s) => s.segment.sequence === sequence && s.segment.indexStored))
      input.store.removeSegmentIndex(input.logId, sequence);
  }
  const cutUncovered = checkTail(scanned, cleanup, input.walCoveredFrom ?? null);
  const live = await replayOverrides(input, scanned, cleanup);
  const kept = dropCompacted(live, start.firstIndex, cleanup);
  checkChain(kept, start.firstIndex);
  const unverified: { segment: Segment; endPosition: number }[] = [];
  for (const { segment, scan } of kept) {
    segment.loadPoints(
      scan.points,
      scan.pointMaxTimestamps,
      scan.firstOffset,
      scan.firstOffsetPosition,
      scan.termRuns,
    );
    segment.lastIndex = scan.lastIndex;
    segment.endPosition = scan.validEnd;
    if (scan.indexed) unverified.push({ segment, endPosition: scan.validEnd });
  }
  for (const { segment } of scanned) {
    if (segment.indexStored && !kept.some((k) => k.segment === segment)) {
      input.store.removeSegmentIndex(input.logId, segment.sequence);
      segment.indexStored = false;
    }
  }
  const active = kept[kept.length - 1]?.segment;
  if (active?.indexStored) {
    // Written to from now on: its index must be gone (durably) before its size can change.
    input.store.removeSegmentIndex(input.logId, active.sequence);
    active.indexStored = false;
    await input.store.durable();
  }
  if (cutUncovered) {
    // Durable before the cut: a crash after it must not forget that the tail was lost.
    input.store.putLostTail(input.logId, true);
    await input.store.durable();
  }
  if (cleanup.length > 0) {
    cleanup.push({ kind: 'syncDirectory', path: directory });
    await executor.steps({ kind: 'steps', steps: cleanup });
  }
  let scannedBytes = 0;
  for (const { scan } of scanned) if (!scan.indexed) scannedBytes += scan.fileBytes;
  return { segments: kept, cutUncovered, unverified, scannedBytes };
}

/** What a scan found in a file, as its stored index says; the file itself is not read. */
function scanFromIndex(record: SegmentIndexRecord, fileBytes: number): ScanResult {
  const points = new Float64Array(record.points.buffer, record.points.byteOffset, record.points.length / 8);
  return {
    fileBytes,
    indexed: true,
    validEnd: record.sizeBytes,
    corruptAt: -1,
    validAfterCorrupt: -1,
    lastIndex: record.lastIndex,
    firstOffset: record.firstOffset,
    firstOffsetPosition: record.firstOffsetPosition,
    nextOffset: -1,
    points: Array.from(points),
    // Absent in an index stored before the time index: unknown, which lookups read through.
    pointMaxTimestamps: record.pointMaxTimestamps
      ? Array.from(
          new Float64Array(
            record.pointMaxTimestamps.buffer,
            record.pointMaxTimestamps.byteOffset,
            record.pointMaxTimestamps.length / 8,
          ),
        )
      : null,
    termRuns: [...record.termRuns],
  };
}

/**
 * Replays segments in creation order, each overriding the log from its base index on. Only a
 * copy-on-write cut that a crash interrupted leaves overlaps: the older files are then cut back.
 */
async function replayOverrides(
  input: RecoveryInput,
  scanned: readonly ScannedSegment[],
  cleanup: IoStep[],
): Promise<ScannedSegment[]> {
  const live: ScannedSegment[] = [];
  for (const next of scanned) {
    const base = next.segment.baseIndex;
    while (live.length > 0 && live[live.length - 1]!.segment.baseIndex >= base) {
      cleanup.push({ kind: 'unlink', path: live.pop()!.segment.path });
    }
    const previous = live[live.length - 1];
    if (previous !== undefined && previous.scan.lastIndex >= base) await cutScanned(input, previous, base);
    live.push(next);
  }
  return live;
}

/** Truncates a scanned segment at the frame starting at `index` (an interrupted cut's point). */
async function cutScanned(input: RecoveryInput, entry: ScannedSegment, index: number): Promise<void> {
  const { segment, scan } = entry;
  if (segment.indexStored) {
    input.store.removeSegmentIndex(input.logId, segment.sequence);
    segment.indexStored = false;
    await input.store.durable();
  }
  const steps: IoStep[] = [
    { kind: 'open', path: segment.path, slot: 0 },
    {
      kind: 'cut',
      fd: -1,
      path: segment.path,
      hintPosition: 0,
      endPosition: scan.validEnd,
      index,
      copy: null,
    },
    { kind: 'sync', fd: -1 },
    { kind: 'close', fd: -1 },
  ];
  const result = await input.executor.steps({ kind: 'steps', steps });
  const endPosition = result.cut!.endPosition;
  scan.validEnd = endPosition;
  scan.lastIndex = index - 1;
  const points: number[] = [];
  for (let i = 0; i < scan.points.length; i += 3) {
    if (scan.points[i + 1]! < endPosition)
      points.push(scan.points[i]!, scan.points[i + 1]!, scan.points[i + 2]!);
  }
  scan.points = points;
  if (scan.pointMaxTimestamps !== null) scan.pointMaxTimestamps.length = points.length / 3;
  const runs: number[] = [];
  for (let i = 0; i < scan.termRuns.length; i += 2) {
    if (scan.termRuns[i]! < index) runs.push(scan.termRuns[i]!, scan.termRuns[i + 1]!);
  }
  scan.termRuns = runs;
  if (scan.firstOffsetPosition >= endPosition) {
    scan.firstOffset = -1;
    scan.firstOffsetPosition = -1;
  }
}

/**
 * Cuts a torn or corrupt tail; refuses corruption before it. Returns true when it cut bytes that
 * the WAL does not cover: those may have been reported durable (synced frames that rotted, or an
 * async write the OS lost), so the replica must not vote or ack as if it still held them.
 */
function checkTail(
  scanned: ScannedSegment[],
  cleanup: IoStep[],
  walCoveredFrom: { sequence: number; position: number } | null,
): boolean {
  let cutUncovered = false;
  for (let i = 0; i < scanned.length; i++) {
    const { segment, scan } = scanned[i]!;
    if (scan.corruptAt < 0) continue;
    const isLast = i === scanned.length - 1;
    // Unsynced pages may reach the disk in any order: a bad frame with whole ones after it is
    // only a torn write where the WAL covers it (earlier segments were synced when they rolled).
    const walCovers =
      walCoveredFrom !== null &&
      (segment.sequence > walCoveredFrom.sequence ||
        (segment.sequence === walCoveredFrom.sequence && scan.corruptAt >= walCoveredFrom.position));
    if (!isLast || (scan.validAfterCorrupt >= 0 && !walCovers)) {
      const why = isLast ? `a whole frame follows at byte ${scan.validAfterCorrupt}` : 'segments follow it';
      throw new StorageError(
        'CorruptLog',
        `${segment.path}: corrupt frame at byte ${scan.corruptAt} before the tail (${why})`,
        { file: segment.path, offsetBytes: scan.corruptAt },
      );
    }
    cleanup.push(...truncateSteps(segment.path, scan.validEnd));
    if (!walCovers) cutUncovered = true;
  }
  const last = scanned[scanned.length - 1];
  if (last !== undefined && last.scan.validEnd === 0) {
    // A segment rolled and never written (or torn whole): nothing in it to keep.
    scanned.pop();
    cleanup.push({ kind: 'unlink', path: last.segment.path });
  }
  return cutUncovered;
}

function truncateSteps(filePath: string, lengthBytes: number): IoStep[] {
  return [
    { kind: 'open', path: filePath, slot: 0 },
    { kind: 'truncate', fd: -1, lengthBytes },
    { kind: 'sync', fd: -1 },
    { kind: 'close', fd: -1 },
  ];
}

/** Segments wholly below the log start are leftovers of an interrupted compaction. */
function dropCompacted(scanned: ScannedSegment[], firstIndex: number, cleanup: IoStep[]): ScannedSegment[] {
  const kept: ScannedSegment[] = [];
  for (const entry of scanned) {
    if (entry.scan.lastIndex < firstIndex) cleanup.push({ kind: 'unlink', path: entry.segment.path });
    else kept.push(entry);
  }
  return kept;
}

/** Segments must cover the log from its start without gaps. */
function checkChain(kept: readonly ScannedSegment[], firstIndex: number): void {
  let expected = -1;
  for (const { segment, scan } of kept) {
    const gap = expected < 0 ? segment.baseIndex > firstIndex : segment.baseIndex !== expected;
    if (gap) {
      throw new StorageError(
        'CorruptLog',
        `${segment.path}: starts at index ${segment.baseIndex}, expected ${expected < 0 ? firstIndex : expected}`,
        { file: segment.path, offsetBytes: 0 },
      );
    }
    expected = scan.lastIndex + 1;
  }
}
