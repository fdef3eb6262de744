// The reads of one log that go to its segment files: by Raft index (the core's entries() on a
// cache miss loads in the background; fetch awaits), by record offset, and the background
// scrub's verification of a file. Reads go from a sparse-index point and return whole frames
// verified by CRC in the worker; they never load a whole segment, and never run during a cut.

import { assert, RaftError } from '../raft/errors.js';
import { limitBytes } from '../raft/storage.js';
import { type Entry, entryBytes } from '../raft/types.js';
import { StorageError } from './errors.js';
import { decodeFrameEntries, frameRecordRanges, RANGE_STRIDE, readFrameHeader } from './frame.js';
import type { IoExecutor } from './io-executor.js';
import type { LogFiles } from './log-files.js';
import { ReadAhead } from './read-ahead.js';
import type { Segment } from './segment.js';

export interface ReaderContext {
  executor: IoExecutor;
  indexIntervalBytes: number;
  /** Bytes read from disk at least, per load for entries() (and per read ahead of a catch-up). */
  loadBytesMin: number;
}

export interface ReaderHooks {
  /** The log's first index now (entries below it are compacted). */
  firstIndex(): number;
  /** Entries at or above this index are in the entry cache: a read ahead stops there. */
  cacheFirst(): number;
  /** A load that entries() started finished: the caller may retry. */
  onEntriesAvailable(): void;
  /** A background load failed with an I/O error or corruption. */
  onFailure(error: StorageError): void;
}

export class LogReader {
  /** What entries() reads below the cache: the range in hand and the one loaded ahead of it. */
  private readonly ahead: ReadAhead;

  constructor(
    private readonly context: ReaderContext,
    private readonly files: LogFiles,
    private readonly hooks: ReaderHooks,
  ) {
    this.ahead = new ReadAhead({
      loadBytes: context.loadBytesMin,
      read: (lo, hi, maxBytes) => this.readEntries(lo, hi, maxBytes),
      readAheadEnd: () => hooks.cacheFirst(),
      onLoaded: () => hooks.onEntriesAvailable(),
      onFailure: (error) => {
        // Compacted meanwhile: the retry gets the RaftError from entries() itself.
        if (error instanceof RaftError) hooks.onEntriesAvailable();
        else hooks.onFailure(toStorageError(error));
      },
    });
  }

  // ---- the loaded ranges, for the synchronous entries() --------------------------------------

  /** Entries [lo, hi) from the loaded ranges, or null when they do not hold lo. */
  loadedSlice(lo: number, hi: number, maxBytes: number): Entry[] | null {
    return this.ahead.slice(lo, hi, maxBytes);
  }

  /** Loads [lo, hi) in the background (one load at a time); hooks.onEntriesAvailable after. */
  startLoad(lo: number, hi: number, maxBytes: number): void {
    this.ahead.load(lo, hi, maxBytes);
  }

  /** The log was cut from `index` on. */
  cutFrom(index: number): void {
    this.ahead.cutFrom(index);
  }

  /** Entries below `index` are gone (compaction); `reset`: all of them (a snapshot install). */
  dropBelow(index: number, reset = false): void {
    this.ahead.dropBelow(index, reset);
  }

  // ---- reads by index and by offset ----------------------------------------------------------

  /** Entries in [lo, hi) up to maxBytes (at least one), from the segment files. */
  async readEntries(lo: number, hi: number, maxBytes: number): Promise<Entry[]> {
    return this.files.withSegments(async (segments) => {
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

  /** Entries with records from `fromOffset` on, not past maxIndex, up to maxBytes (at least one). */
  async readRecords(fromOffset: number, maxIndex: number, maxBytes: number): Promise<Entry[]> {
    return this.files.withSegments(async (segments) => {
      for (let s = startSegmentForOffset(segments, fromOffset); s < segments.length; s++) {
        const segment = segments[s]!;
        if (segment.baseIndex > maxIndex) break;
        // The sparse point is at or before the record's frame, but the frames between may be
        // more than one read holds, and a read returns whole frames only: a follower catching up
        // writes thousands of entries as one frame, which a read of maxBytes stops short of. So
        // read on from where the last read ended until the record's frame is in hand.
        let position = segment.positionForOffset(fromOffset);
        while (position < segment.endPosition) {
          const bytes = await this.readFrames(
            segment,
            position,
            maxBytes + this.context.indexIntervalBytes,
            0,
          );
          if (bytes.length === 0) break;
          const found = this.recordEntriesOf(bytes, fromOffset, maxIndex, maxBytes);
          if (found.entries.length > 0) return found.entries;
          if (found.pastMaxIndex) return [];
          position += bytes.length;
        }
      }
      return [];
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
      // The next open must read the files again, and refuse the log there.
      this.files.forgetIndexes().catch(() => {});
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
   * The entries of `bytes` (whole frames) holding records from `fromOffset` on, none past
   * maxIndex, up to maxBytes (at least one); `pastMaxIndex`: the frames reach past maxIndex, so
   * no frame after them can hold an entry to return.
   */
  private recordEntriesOf(
    bytes: Uint8Array,
    fromOffset: number,
    maxIndex: number,
    maxBytes: number,
  ): { entries: Entry[]; pastMaxIndex: boolean } {
    const out: Entry[] = [];
    let total = 0;
    let at = 0;
    let pastMaxIndex = false;
    while (at < bytes.length) {
      const header = readFrameHeader(bytes, at, bytes.length)!;
      if (header.firstIndex + header.entryCount - 1 >= maxIndex) pastMaxIndex = true;
      const ranges = frameRecordRanges(bytes, at, header);
      const frameEntries: Entry[] = [];
      decodeFrameEntries(bytes, at, header, this.hooks.firstIndex(), maxIndex + 1, frameEntries);
      for (const entry of frameEntries) {
        const i = entry.index - header.firstIndex;
        const baseOffset = ranges[RANGE_STRIDE * i]!;
        if (baseOffset < 0 || baseOffset + ranges[RANGE_STRIDE * i + 1]! <= fromOffset) continue;
        total += entryBytes(entry);
        if (total > maxBytes && out.length > 0) return { entries: out, pastMaxIndex };
        out.push(entry);
      }
      at += header.frameBytes;
    }
    return { entries: out, pastMaxIndex };
  }

  // ---- the background scrub ------------------------------------------------------------------

  /**
   * Reads and verifies `segment` up to `endPosition` (a file the open took from its stored index).
   * Returns the bytes verified, and the CorruptLog error to fail the log with, if a frame is bad.
   */
  async verifySegment(
    segment: Segment,
    endPosition: number,
  ): Promise<{ bytes: number; corruption: StorageError | null }> {
    return this.files.withSegments(async (segments) => {
      // Gone (compaction) or cut since: nothing left to verify there.
      if (!segments.includes(segment) || segment.endPosition < endPosition)
        return { bytes: 0, corruption: null };
      const scan = await this.context.executor.scan({
        kind: 'scan',
        path: segment.path,
        baseIndex: segment.baseIndex,
        indexIntervalBytes: this.context.indexIntervalBytes,
        indexedSizeBytes: -1,
        endPosition,
      });
      if (scan.corruptAt < 0 || scan.corruptAt >= endPosition)
        return { bytes: endPosition, corruption: null };
      await this.files.forgetIndexes();
      const corruption = new StorageError(
        'CorruptLog',
        `${segment.path}: corrupt frame at byte ${scan.corruptAt} (found by the background scrub)`,
        { file: segment.path, offsetBytes: scan.corruptAt },
      );
      return { bytes: endPosition, corruption };
    });
  }
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
  assert(!(error instanceof RaftError), 'a RaftError is not an I/O failure');
  return new StorageError('IoFailed', `read failed: ${String(error)}`, { cause: error });
}
