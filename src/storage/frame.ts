// The on-disk frame: one write of one log (a batch of consecutive Raft entries), CRC32C-protected.
// Pure encode/decode over byte arrays, shared by the event-loop side and the I/O workers.
//
// Layout, little-endian (docs/storage.md has the same table):
//   0  u32  magic 'RLF1'
//   4  u32  CRC32C of bytes [8, frameBytes)
//   8  u32  frameBytes (header, term runs, entry table and data)
//   12 u16  version (2; version 1 frames, without timestamps, are still read)
//   14 u16  termRunCount
//   16 f64  firstIndex (Raft index of the first entry; an integer below 2^53)
//   24 u32  entryCount
//   28 u32  reserved (0)
//   32      termRunCount x { f64 term, u32 entryCount }
//   ..      entryCount x { u32 type, u32 dataBytes, f64 baseOffset (-1: no records), u32 recordCount,
//                          f64 maxTimestampMs (version 2 only; see RecordRange) }
//   ..      the entries' data, concatenated

import { AssertionError, assert } from '../raft/errors.js';
import type { Entry, EntryType } from '../raft/types.js';
import { ByteSlab } from './byte-slab.js';
import { crc32c } from './crc32c.js';

export const FRAME_MAGIC = 0x31464c52; // 'RLF1' read as a little-endian u32
/** Version 2 added each entry's largest record timestamp to its row (the time index). */
export const FRAME_VERSION = 2;
/** Frames written before the time index: rows without a timestamp, read as unknown. */
export const FRAME_VERSION_UNTIMED = 1;
export const FRAME_HEADER_BYTES = 32;
export const TERM_RUN_BYTES = 12;
export const ENTRY_TABLE_BYTES = 28;
const ENTRY_TABLE_BYTES_UNTIMED = 20;
/** An entry's timestamp when no record says: it may hold any time, so a time lookup must look. */
export const TIMESTAMP_UNKNOWN = Number.POSITIVE_INFINITY;
/** The largest timestamp of no records at all (entries without records, empty ranges). */
export const TIMESTAMP_NONE = Number.NEGATIVE_INFINITY;

function entryRowBytes(version: number): number {
  return version === FRAME_VERSION_UNTIMED ? ENTRY_TABLE_BYTES_UNTIMED : ENTRY_TABLE_BYTES;
}
/** No single write may be larger; a length field above it is corruption, not a huge frame. */
export const FRAME_BYTES_MAX = 256 * 1024 * 1024;

// A frame lives only until its write is done: a slab is freed soon after its last frame is written.
const FRAME_SLAB_BYTES = 64 * 1024;
/** Frames this large get their own ArrayBuffer, which a worker can take without a copy. */
const FRAME_OWN_BUFFER_BYTES_MIN = 16 * 1024;
const frameSlab = new ByteSlab({
  slabBytes: FRAME_SLAB_BYTES,
  ownBufferBytesMin: FRAME_OWN_BUFFER_BYTES_MIN,
});

/** What the driver tells storage about an entry's records, so storage can index by offset. */
export interface RecordRange {
  /** Offset of the entry's first record. */
  baseOffset: number;
  /** Number of records in the entry (> 0). */
  recordCount: number;
  /**
   * The largest record timestamp in the entry (ms since the epoch), for the time index; absent:
   * unknown (TIMESTAMP_UNKNOWN: a time lookup reads the entry rather than skip it).
   */
  maxTimestampMs?: number;
}

/** Maps an entry to its record range; null for entries without records (no-ops, conf changes). */
export type DescribeEntry = (entry: Entry) => RecordRange | null;

export interface FrameHeader {
  frameBytes: number;
  /** FRAME_VERSION, or FRAME_VERSION_UNTIMED for a frame written before the time index. */
  version: number;
  crc: number;
  termRunCount: number;
  firstIndex: number;
  entryCount: number;
}

/** A frame built for writing, with what the index needs to know about it. */
export interface EncodedFrame {
  /** Detached once handed to a worker: use frameBytes for its length. */
  bytes: Uint8Array;
  frameBytes: number;
  firstIndex: number;
  entryCount: number;
  /** Offset of the first record in the frame, or -1 when no entry has records. */
  firstOffset: number;
  /** One past the last record offset in the frame, or -1 when no entry has records. */
  nextOffset: number;
  /** Term changes in the frame: [startIndex, term] per run, flattened (for the segment's index). */
  termRuns: number[];
  /** Largest record timestamp in the frame: TIMESTAMP_NONE without records (see RecordRange). */
  maxTimestampMs: number;
}

function countTermRuns(entries: readonly Entry[], start: number, end: number): number {
  let runs = 0;
  let term = -1;
  for (let i = start; i < end; i++) {
    if (entries[i]!.term !== term) {
      runs++;
      term = entries[i]!.term;
    }
  }
  return runs;
}

/**
 * Encodes entries[start, end) (consecutive indexes) as one frame. A small frame is carved from a
 * shared slab (the executor copies it for a worker, see isSlabBuffer); a large one gets its own
 * ArrayBuffer, transferred to a worker without a copy. `ranges[i - start]` is the record range of
 * entries[i].
 */
export function encodeFrame(
  entries: readonly Entry[],
  start: number,
  end: number,
  ranges: readonly (RecordRange | null)[],
): EncodedFrame {
  assert(end > start, 'encodeFrame: no entries');
  const termRunCount = countTermRuns(entries, start, end);
  const count = end - start;
  let dataBytes = 0;
  for (let i = start; i < end; i++) dataBytes += entries[i]!.data.length;
  const tableAt = FRAME_HEADER_BYTES + termRunCount * TERM_RUN_BYTES;
  const dataAt = tableAt + count * ENTRY_TABLE_BYTES;
  const frameBytes = dataAt + dataBytes;
  assert(frameBytes <= FRAME_BYTES_MAX, `encodeFrame: ${frameBytes} bytes is over FRAME_BYTES_MAX`);
  const bytes = frameSlab.take(frameBytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, frameBytes);
  const firstIndex = entries[start]!.index;
  view.setUint32(0, FRAME_MAGIC, true);
  view.setUint32(8, frameBytes, true);
  view.setUint16(12, FRAME_VERSION, true);
  view.setUint16(14, termRunCount, true);
  view.setFloat64(16, firstIndex, true);
  view.setUint32(24, count, true);
  view.setUint32(28, 0, true); // reserved
  let runAt = FRAME_HEADER_BYTES - TERM_RUN_BYTES;
  let runTerm = -1;
  let runCount = 0;
  const termRuns: number[] = [];
  let firstOffset = -1;
  let nextOffset = -1;
  let maxTimestampMs = TIMESTAMP_NONE;
  let dataCursor = dataAt;
  for (let i = start; i < end; i++) {
    const entry = entries[i]!;
    // Per entry: the message is built only on failure.
    if (entry.index !== firstIndex + (i - start)) {
      throw new AssertionError(`encodeFrame: entry ${entry.index} out of sequence`);
    }
    if (entry.term !== runTerm) {
      if (runCount > 0) view.setUint32(runAt + 8, runCount, true);
      runAt += TERM_RUN_BYTES;
      runTerm = entry.term;
      runCount = 0;
      termRuns.push(entry.index, runTerm);
      view.setFloat64(runAt, runTerm, true);
    }
    runCount++;
    const range = ranges[i - start] ?? null;
    const rowAt = tableAt + (i - start) * ENTRY_TABLE_BYTES;
    view.setUint32(rowAt, entry.type, true);
    view.setUint32(rowAt + 4, entry.data.length, true);
    view.setFloat64(rowAt + 8, range ? range.baseOffset : -1, true);
    view.setUint32(rowAt + 16, range ? range.recordCount : 0, true);
    const timestampMs = range ? (range.maxTimestampMs ?? TIMESTAMP_UNKNOWN) : TIMESTAMP_NONE;
    view.setFloat64(rowAt + 20, timestampMs, true);
    if (range) {
      if (firstOffset < 0) firstOffset = range.baseOffset;
      nextOffset = range.baseOffset + range.recordCount;
      if (timestampMs > maxTimestampMs) maxTimestampMs = timestampMs;
    }
    bytes.set(entry.data, dataCursor);
    dataCursor += entry.data.length;
  }
  view.setUint32(runAt + 8, runCount, true);
  view.setUint32(4, crc32c(bytes, 8, frameBytes), true);
  return {
    bytes,
    frameBytes,
    firstIndex,
    entryCount: count,
    firstOffset,
    nextOffset,
    termRuns,
    maxTimestampMs,
  };
}

/**
 * Reads the header at `at` if it is structurally plausible and fits in `end`; null otherwise
 * (zeros, garbage or a frame cut short). The CRC is not checked here: see frameCrcMatches.
 */
export function readFrameHeader(bytes: Uint8Array, at: number, end: number): FrameHeader | null {
  if (end - at < FRAME_HEADER_BYTES) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, FRAME_HEADER_BYTES);
  const version = view.getUint16(12, true);
  if (view.getUint32(0, true) !== FRAME_MAGIC) return null;
  if (version !== FRAME_VERSION && version !== FRAME_VERSION_UNTIMED) return null;
  const frameBytes = view.getUint32(8, true);
  const termRunCount = view.getUint16(14, true);
  const entryCount = view.getUint32(24, true);
  const firstIndex = view.getFloat64(16, true);
  if (frameBytes > FRAME_BYTES_MAX || frameBytes > end - at) return null;
  if (entryCount === 0 || termRunCount === 0 || termRunCount > entryCount) return null;
  if (!Number.isSafeInteger(firstIndex) || firstIndex < 1) return null;
  const minimumBytes =
    FRAME_HEADER_BYTES + termRunCount * TERM_RUN_BYTES + entryCount * entryRowBytes(version);
  if (frameBytes < minimumBytes) return null;
  return { frameBytes, version, crc: view.getUint32(4, true), termRunCount, firstIndex, entryCount };
}

export function frameCrcMatches(bytes: Uint8Array, at: number, header: FrameHeader): boolean {
  return crc32c(bytes, at + 8, at + header.frameBytes) === header.crc;
}

/** Reads a header and checks its CRC: the frame at `at` is whole and intact, or null. */
export function readVerifiedFrame(bytes: Uint8Array, at: number, end: number): FrameHeader | null {
  const header = readFrameHeader(bytes, at, end);
  if (header === null || !frameCrcMatches(bytes, at, header)) return null;
  return header;
}

/** What the index keeps of a verified frame: its terms and its record offsets. */
export interface FrameSummary {
  /** Term of each run and the number of entries in it, flattened: [term, count, term, count...]. */
  termRuns: number[];
  firstOffset: number;
  nextOffset: number;
  /** Largest record timestamp: TIMESTAMP_NONE without records, TIMESTAMP_UNKNOWN in version 1. */
  maxTimestampMs: number;
}

/** Summarises a verified frame (term runs, record offsets, timestamps) without touching its data. */
export function summarizeFrame(bytes: Uint8Array, at: number, header: FrameHeader): FrameSummary {
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, header.frameBytes);
  const termRuns: number[] = [];
  let covered = 0;
  for (let r = 0; r < header.termRunCount; r++) {
    const runAt = FRAME_HEADER_BYTES + r * TERM_RUN_BYTES;
    const count = view.getUint32(runAt + 8, true);
    termRuns.push(view.getFloat64(runAt, true), count);
    covered += count;
  }
  assert(covered === header.entryCount, `frame at ${at}: term runs cover ${covered} of ${header.entryCount}`);
  const tableAt = FRAME_HEADER_BYTES + header.termRunCount * TERM_RUN_BYTES;
  const rowBytes = entryRowBytes(header.version);
  let firstOffset = -1;
  let nextOffset = -1;
  let maxTimestampMs = TIMESTAMP_NONE;
  for (let i = 0; i < header.entryCount; i++) {
    const rowAt = tableAt + i * rowBytes;
    const baseOffset = view.getFloat64(rowAt + 8, true);
    if (baseOffset < 0) continue;
    if (firstOffset < 0) firstOffset = baseOffset;
    nextOffset = baseOffset + view.getUint32(rowAt + 16, true);
    const timestampMs = rowTimestampMs(view, rowAt, header.version);
    if (timestampMs > maxTimestampMs) maxTimestampMs = timestampMs;
  }
  return { termRuns, firstOffset, nextOffset, maxTimestampMs };
}

function rowTimestampMs(view: DataView, rowAt: number, version: number): number {
  return version === FRAME_VERSION_UNTIMED ? TIMESTAMP_UNKNOWN : view.getFloat64(rowAt + 20, true);
}

/**
 * Appends to `out` the entries of a verified frame whose index is in [lo, hi), as views into
 * `bytes` (no copy). Returns the number appended.
 */
export function decodeFrameEntries(
  bytes: Uint8Array,
  at: number,
  header: FrameHeader,
  lo: number,
  hi: number,
  out: Entry[],
): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, header.frameBytes);
  const tableAt = FRAME_HEADER_BYTES + header.termRunCount * TERM_RUN_BYTES;
  const rowBytes = entryRowBytes(header.version);
  let dataCursor = at + tableAt + header.entryCount * rowBytes;
  let run = 0;
  let runLeft = view.getUint32(FRAME_HEADER_BYTES + 8, true);
  let term = view.getFloat64(FRAME_HEADER_BYTES, true);
  let added = 0;
  for (let i = 0; i < header.entryCount; i++) {
    while (runLeft === 0) {
      run++;
      runLeft = view.getUint32(FRAME_HEADER_BYTES + run * TERM_RUN_BYTES + 8, true);
      term = view.getFloat64(FRAME_HEADER_BYTES + run * TERM_RUN_BYTES, true);
    }
    runLeft--;
    const rowAt = tableAt + i * rowBytes;
    const dataBytes = view.getUint32(rowAt + 4, true);
    const index = header.firstIndex + i;
    if (index >= lo && index < hi) {
      const type = view.getUint32(rowAt, true) as EntryType;
      out.push({ term, index, type, data: bytes.subarray(dataCursor, dataCursor + dataBytes) });
      added++;
    }
    dataCursor += dataBytes;
  }
  assert(dataCursor === at + header.frameBytes, `frame at ${at}: entry data does not fill the frame`);
  return added;
}

/** Values per entry in frameRecordRanges: base offset, record count, largest timestamp. */
export const RANGE_STRIDE = 3;

/**
 * Record range of each entry of a verified frame, for reads by offset: RANGE_STRIDE values per
 * entry, [baseOffset (-1: none), recordCount, maxTimestampMs].
 */
export function frameRecordRanges(bytes: Uint8Array, at: number, header: FrameHeader): Float64Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, header.frameBytes);
  const tableAt = FRAME_HEADER_BYTES + header.termRunCount * TERM_RUN_BYTES;
  const rowBytes = entryRowBytes(header.version);
  const ranges = new Float64Array(header.entryCount * RANGE_STRIDE);
  for (let i = 0; i < header.entryCount; i++) {
    const rowAt = tableAt + i * rowBytes;
    const baseOffset = view.getFloat64(rowAt + 8, true);
    ranges[RANGE_STRIDE * i] = baseOffset;
    ranges[RANGE_STRIDE * i + 1] = view.getUint32(rowAt + 16, true);
    ranges[RANGE_STRIDE * i + 2] =
      baseOffset < 0 ? TIMESTAMP_NONE : rowTimestampMs(view, rowAt, header.version);
  }
  return ranges;
}

/** The record range of entry `i` of a frame, from frameRecordRanges' answer. */
export function recordRangeAt(ranges: Float64Array, i: number): RecordRange | null {
  const baseOffset = ranges[RANGE_STRIDE * i]!;
  if (baseOffset < 0) return null;
  return {
    baseOffset,
    recordCount: ranges[RANGE_STRIDE * i + 1]!,
    maxTimestampMs: ranges[RANGE_STRIDE * i + 2]!,
  };
}

/**
 * Re-encodes the first `keepCount` entries of a verified frame as a new frame (a log cut inside a
 * frame keeps the entries before the cut).
 */
export function encodeFramePrefix(
  bytes: Uint8Array,
  at: number,
  header: FrameHeader,
  keepCount: number,
): Uint8Array {
  assert(keepCount > 0 && keepCount < header.entryCount, `encodeFramePrefix: keep ${keepCount}`);
  const entries: Entry[] = [];
  decodeFrameEntries(bytes, at, header, header.firstIndex, header.firstIndex + keepCount, entries);
  const recordRanges = frameRecordRanges(bytes, at, header);
  const ranges: (RecordRange | null)[] = [];
  for (let i = 0; i < keepCount; i++) ranges.push(recordRangeAt(recordRanges, i));
  return encodeFrame(entries, 0, keepCount, ranges).bytes;
}
