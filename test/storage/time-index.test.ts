// The time index (time-index.ts): a lookup of time T gives an offset with every record below it
// earlier than T and the first record at or after T at or above it, near enough to read on from;
// across many segments, non-monotonic timestamps, reopen, crash, prefix truncation, the unwritten
// tail, memory-mode chunks and entries whose timestamp storage was not told.

import { afterEach, describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import { crc32c } from '../../src/storage/crc32c.js';
import {
  decodeFrameEntries,
  encodeFrame,
  encodeFramePrefix,
  FRAME_HEADER_BYTES,
  FRAME_MAGIC,
  FRAME_VERSION,
  FRAME_VERSION_UNTIMED,
  frameRecordRanges,
  type RecordRange,
  readVerifiedFrame,
  recordRangeAt,
  summarizeFrame,
  TERM_RUN_BYTES,
  TIMESTAMP_UNKNOWN,
} from '../../src/storage/frame.js';
import { type PartitionLog, type PersistenceMode, StorageEngine } from '../../src/storage/index.js';
import { entryProblem, makeEntries, removeDir, TestLog, tempDir } from './helpers.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) removeDir(dir);
});

/**
 * Entry i holds one record, offset i - 1, at time 10 * i, but every seventh entry is 400 ms late
 * and every eleventh 300 ms early: timestamps go back and forth.
 */
function timestampOf(index: number): number {
  if (index % 7 === 3) return 10 * index - 400;
  if (index % 11 === 5) return 10 * index + 300;
  return 10 * index;
}

/** Entries of a later term (a new leader's, replacing a cut suffix) are 1.5 s later. */
function describeTimed(entry: Entry): RecordRange | null {
  const maxTimestampMs = timestampOf(entry.index) + (entry.term - 1) * 1500;
  return { baseOffset: entry.index - 1, recordCount: 1, maxTimestampMs };
}

const ENTRY_BYTES = 100;
const ENTRIES = 400;
/** Times to look up: before, inside and after the log, with and without an exact hit. */
const TIMES = [-1000, 0, 5, 10, 17, 1200, 1205, 1999, 2000, 2001, 3333, 3999, 4000, 4001, 4300, 4301, 9999];

async function openEngine(dir: string) {
  return StorageEngine.open({
    dataDir: dir,
    ioThreads: 2,
    segmentBytesMax: 4096,
    cacheBytesMax: 2048,
    indexIntervalBytes: 1024,
    memoryChunkBytesMax: 4096,
  });
}

async function writeLog(t: TestLog, first = 1, count = ENTRIES): Promise<void> {
  for (let i = first; i < first + count; i += 5) await t.write(makeEntries(i, 5, 1, ENTRY_BYTES));
}

/** The first retained offset whose record is at or after `timestampMs`, by brute force; null if none. */
async function expectedOffset(log: PartitionLog, timestampMs: number): Promise<number | null> {
  for (let index = log.firstIndex(); index <= log.lastIndex(); ) {
    for (const entry of await log.readEntries(index, log.lastIndex() + 1, Number.MAX_SAFE_INTEGER)) {
      const range = describeTimed(entry)!;
      if (range.maxTimestampMs! >= timestampMs) return range.baseOffset;
      index = entry.index + 1;
    }
  }
  return null;
}

/**
 * Checks the lookup of `timestampMs` against the brute-force answer, reading records on from it
 * as the broker does; returns how many records that read passed before the answer.
 */
async function checkLookup(log: PartitionLog, timestampMs: number, startOffset: number): Promise<number> {
  const expected = await expectedOffset(log, timestampMs);
  const found = log.offsetForTime(timestampMs);
  if (expected === null) {
    // Nothing retained reaches it: the index may only point at the entries it was unsure of.
    if (found !== null) expect(await scanFrom(log, timestampMs, Math.max(found, startOffset))).toBeNull();
    return 0;
  }
  expect(found, `lookup of ${timestampMs}`).not.toBeNull();
  const from = Math.max(found!, startOffset);
  expect(from, `lookup of ${timestampMs} passed the answer`).toBeLessThanOrEqual(expected);
  expect(await scanFrom(log, timestampMs, from)).toBe(expected);
  return expected - from;
}

async function scanFrom(log: PartitionLog, timestampMs: number, fromOffset: number): Promise<number | null> {
  let offset = fromOffset;
  while (offset < log.lastIndex()) {
    const entries = await log.readRecords(offset, { maxBytes: 4096 });
    if (entries.length === 0) return null;
    for (const entry of entries) {
      const range = describeTimed(entry)!;
      if (range.baseOffset >= offset && range.maxTimestampMs! >= timestampMs) return range.baseOffset;
      offset = range.baseOffset + 1;
    }
  }
  return null;
}

async function checkAll(log: PartitionLog, startOffset = 0): Promise<number> {
  let passedMax = 0;
  for (const time of [...TIMES, 5000, 5500, 5999])
    passedMax = Math.max(passedMax, await checkLookup(log, time, startOffset));
  for (let index = 1; index <= log.lastIndex(); index += 13)
    passedMax = Math.max(passedMax, await checkLookup(log, timestampOf(index), startOffset));
  return passedMax;
}

describe('time index', () => {
  for (const mode of ['sync', 'async'] as PersistenceMode[]) {
    it(`${mode}: finds the first record at or after a time across many segments, after a clean reopen and after a crash`, async () => {
      const dir = tempDir('time-index');
      dirs.push(dir);
      let engine = await openEngine(dir);
      let t = await new TestLog(engine).open('g', { mode, describeEntry: describeTimed });
      await writeLog(t);
      expect(t.log.segmentSummaries().length).toBeGreaterThan(8);
      // Sparse: a lookup reads on at most about one index interval (1024 B) of ~130 B entries.
      expect(await checkAll(t.log)).toBeLessThanOrEqual(12);

      await engine.close(); // every segment's index, timestamps with it, goes to lmdb
      engine = await openEngine(dir);
      t = await new TestLog(engine).open('g', { mode, describeEntry: describeTimed });
      expect(engine.recoveryStats().scannedBytes).toBe(0);
      expect(await checkAll(t.log)).toBeLessThanOrEqual(12);

      await writeLog(t, ENTRIES + 1, 50);
      await engine.abandon(); // a crash: the last segment is scanned, the others come from lmdb
      engine = await openEngine(dir);
      t = await new TestLog(engine).open('g', { mode, describeEntry: describeTimed });
      expect(engine.recoveryStats().scannedBytes).toBeGreaterThan(0);
      expect(t.log.lastIndex()).toBe(ENTRIES + 50);
      expect(await checkAll(t.log)).toBeLessThanOrEqual(12);
      await engine.close();
    });
  }

  it('after prefix truncation, lookups start no lower than what is retained', async () => {
    const dir = tempDir('time-index-compact');
    dirs.push(dir);
    let engine = await openEngine(dir);
    let t = await new TestLog(engine).open('g', { mode: 'async', describeEntry: describeTimed });
    await writeLog(t);
    const before = t.log.segmentSummaries().length;
    await t.log.createSnapshot(203, { voters: [1], learners: [] }, new Uint8Array(0));
    await t.log.compact(203);
    await t.log.idle();
    expect(t.log.segmentSummaries().length).toBeLessThan(before);
    // Offsets 203 and up are retained (entry 204 on).
    await checkAll(t.log, 203);
    await engine.close();
    engine = await openEngine(dir);
    t = await new TestLog(engine).open('g', { mode: 'async', describeEntry: describeTimed });
    await checkAll(t.log, 203);
    await engine.close();
  });

  it('sees the tail that is submitted but not written yet, and a cut suffix no longer', async () => {
    const dir = tempDir('time-index-tail');
    dirs.push(dir);
    const engine = await openEngine(dir);
    const t = await new TestLog(engine).open('g', { mode: 'sync', describeEntry: describeTimed });
    await writeLog(t, 1, 100);
    const durable = t.write(makeEntries(101, 20, 1, ENTRY_BYTES));
    expect(t.log.offsetForTime(timestampOf(110))).toBeLessThanOrEqual(109);
    await checkAll(t.log);
    await durable;
    // A new leader's entries replace 111..120 with later ones (term 2), at once in memory; the
    // segment file still holds the old ones until the cut runs in the log's chain.
    const replaced = makeEntries(111, 10, 2, ENTRY_BYTES);
    const cut = t.write(replaced);
    expect(t.log.offsetForTime(timestampOf(116) + 1500)).toBeLessThanOrEqual(115);
    await checkAll(t.log);
    await cut;
    await checkAll(t.log);
    await engine.close();
  });

  it('memory mode: chunks and entries', async () => {
    const dir = tempDir('time-index-memory');
    dirs.push(dir);
    const engine = await openEngine(dir);
    const t = await new TestLog(engine).open('g', { mode: 'memory', describeEntry: describeTimed });
    await writeLog(t);
    expect(t.log.segmentSummaries().length).toBeGreaterThan(8);
    // Exact to a chunk: a lookup reads on through at most the entries of one chunk.
    expect(await checkAll(t.log)).toBeLessThan(t.log.lastIndex() / 8);
    await t.log.createSnapshot(203, { voters: [1], learners: [] }, new Uint8Array(0));
    await t.log.compact(203);
    await checkAll(t.log, 203);
    await engine.close();
  });

  it('entries without a timestamp are read, never skipped', async () => {
    const dir = tempDir('time-index-unknown');
    dirs.push(dir);
    let engine = await openEngine(dir);
    // As frames written before the time index read: a range without a timestamp.
    const untimed = (entry: Entry): RecordRange => ({ baseOffset: entry.index - 1, recordCount: 1 });
    let t = await new TestLog(engine).open('g', { mode: 'async', describeEntry: untimed });
    await writeLog(t, 1, 100);
    await engine.close();
    engine = await openEngine(dir);
    t = await new TestLog(engine).open('g', { mode: 'async', describeEntry: describeTimed });
    await writeLog(t, 101, 100);
    expect(t.log.offsetForTime(timestampOf(150))).toBe(0);
    await checkAll(t.log);
    await engine.close();
  });
});

/** A frame as version 1 wrote it (20-byte entry rows, no timestamps): one term, one record each. */
function versionOneFrame(entries: readonly Entry[]): Uint8Array {
  const rows = 20;
  const tableAt = FRAME_HEADER_BYTES + TERM_RUN_BYTES;
  const dataAt = tableAt + entries.length * rows;
  const frameBytes = dataAt + entries.reduce((sum, entry) => sum + entry.data.length, 0);
  const bytes = new Uint8Array(frameBytes);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, FRAME_MAGIC, true);
  view.setUint32(8, frameBytes, true);
  view.setUint16(12, FRAME_VERSION_UNTIMED, true);
  view.setUint16(14, 1, true);
  view.setFloat64(16, entries[0]!.index, true);
  view.setUint32(24, entries.length, true);
  view.setFloat64(FRAME_HEADER_BYTES, entries[0]!.term, true);
  view.setUint32(FRAME_HEADER_BYTES + 8, entries.length, true);
  let at = dataAt;
  entries.forEach((entry, i) => {
    const rowAt = tableAt + i * rows;
    view.setUint32(rowAt, entry.type, true);
    view.setUint32(rowAt + 4, entry.data.length, true);
    view.setFloat64(rowAt + 8, entry.index - 1, true);
    view.setUint32(rowAt + 16, 1, true);
    bytes.set(entry.data, at);
    at += entry.data.length;
  });
  view.setUint32(4, crc32c(bytes, 8, frameBytes), true);
  return bytes;
}

describe('frames written before the time index (version 1)', () => {
  it('are read as before, their timestamps unknown, and a prefix of one is copied as version 2', () => {
    const entries = makeEntries(11, 4, 3, 40);
    const frame = versionOneFrame(entries);
    const header = readVerifiedFrame(frame, 0, frame.length)!;
    expect(header).not.toBeNull();
    expect(header.version).toBe(FRAME_VERSION_UNTIMED);
    expect(summarizeFrame(frame, 0, header)).toMatchObject({
      firstOffset: 10,
      nextOffset: 14,
      maxTimestampMs: TIMESTAMP_UNKNOWN,
    });
    const decoded: Entry[] = [];
    decodeFrameEntries(frame, 0, header, 11, 15, decoded);
    expect(decoded.map((entry) => [entry.index, entry.term, entryProblem(entry)])).toEqual(
      entries.map((entry) => [entry.index, 3, null]),
    );
    expect(recordRangeAt(frameRecordRanges(frame, 0, header), 2)).toEqual({
      baseOffset: 12,
      recordCount: 1,
      maxTimestampMs: TIMESTAMP_UNKNOWN,
    });
    const prefix = encodeFramePrefix(frame, 0, header, 2);
    const prefixHeader = readVerifiedFrame(prefix, 0, prefix.length)!;
    expect(prefixHeader.version).toBe(FRAME_VERSION);
    expect(summarizeFrame(prefix, 0, prefixHeader)).toMatchObject({ firstOffset: 10, nextOffset: 12 });
    expect(summarizeFrame(prefix, 0, prefixHeader).maxTimestampMs).toBe(TIMESTAMP_UNKNOWN);
  });

  it('a version 2 frame keeps each entry timestamp, and none for entries without records', () => {
    const entries = [...makeEntries(1, 3, 1, 40), { index: 4, term: 1, type: 0, data: new Uint8Array(0) }];
    const ranges = entries.map((entry) => (entry.data.length > 0 ? describeTimed(entry) : null));
    const frame = encodeFrame(entries, 0, entries.length, ranges);
    expect(frame.maxTimestampMs).toBe(Math.max(timestampOf(1), timestampOf(2), timestampOf(3)));
    const header = readVerifiedFrame(frame.bytes, 0, frame.frameBytes)!;
    const recordRanges = frameRecordRanges(frame.bytes, 0, header);
    expect(recordRangeAt(recordRanges, 1)).toEqual(describeTimed(entries[1]!));
    expect(recordRangeAt(recordRanges, 3)).toBeNull();
    expect(summarizeFrame(frame.bytes, 0, header).maxTimestampMs).toBe(frame.maxTimestampMs);
  });
});
