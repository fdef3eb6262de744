// Opening a sync-mode log: what its records in the shared WAL say the log was, over what its
// segment files kept. Pure: it plans one cut and the appends that bring the log there; the log
// (partition-log.ts) applies them through its normal write path.

import { assert } from '../raft/errors.js';
import type { Entry } from '../raft/types.js';
import {
  type DescribeEntry,
  decodeFrameEntries,
  FRAME_HEADER_BYTES,
  frameRecordRanges,
  type RecordRange,
  readFrameHeader,
  recordRangeAt,
  TERM_RUN_BYTES,
} from './frame.js';
import { WAL_KIND_SYNCED, type WalRecord } from './wal.js';

/** What the plan reads of the log as recovery left it. */
export interface ReplayedLog {
  firstIndex(): number;
  lastIndex(): number;
  term(index: number): number;
}

export interface ReplayPlan {
  /** Cut the log from this index on first (null: no cut). */
  cutFrom: number | null;
  /** Then append these, in order, each with the record ranges its frame carries. */
  appends: { entries: Entry[]; describe: DescribeEntry }[];
  /** Entries rewritten. */
  rewritten: number;
}

/**
 * The frames are first played on a model (each one a Raft append: cut at its first index, then
 * append), which gives the log's final entries from the oldest frame's index on. The log then
 * keeps its longest prefix that agrees in terms (same index and term: same entry), is cut there,
 * and gets the model's entries after it: one cut and one append at most, and none when the
 * segments kept everything (a process crash). What lies past the model's end was never reported
 * durable, and may be a stale suffix whose cut never reached the disk: it is cut too.
 */
export function planWalReplay(records: readonly WalRecord[], log: ReplayedLog): ReplayPlan {
  const plan: ReplayPlan = { cutFrom: null, appends: [], rewritten: 0 };
  if (records.length === 0) return plan;
  const model = playRecords(records);
  const end = model.base + model.terms.length - 1;
  let from = Math.max(model.base, log.firstIndex());
  // The log below the model's base is older than every frame, unless a cut whose frame never
  // reached the WAL made it shorter (or a higher term before it shows such a cut): then the
  // frames describe entries that cut replaced, and were never committed. Leave the log as it is.
  const applies =
    end >= from && log.lastIndex() >= from - 1 && log.term(from - 1) <= model.terms[from - model.base]!;
  if (applies) {
    while (from <= Math.min(end, log.lastIndex()) && log.term(from) === model.terms[from - model.base])
      from++;
    if (from <= log.lastIndex()) plan.cutFrom = from;
    plan.rewritten = Math.max(0, end - from + 1);
    for (let index = from; index <= end; ) {
      const recordNumber = model.recordOf[index - model.base]!;
      let runEnd = index;
      while (runEnd < end && model.recordOf[runEnd + 1 - model.base] === recordNumber) runEnd++;
      plan.appends.push(entriesOfFrame(records[recordNumber]!.frame, index, runEnd));
      index = runEnd + 1;
    }
  } else if (log.lastIndex() > end && end + 1 >= log.firstIndex()) {
    // Nothing to play after the last synced point (or only frames a durable cut replaced): what
    // lies past it was never reported durable.
    plan.cutFrom = end + 1;
  }
  return plan;
}

/** Entries [lo, hi] of a verified frame, with the record ranges the frame carries. */
function entriesOfFrame(
  frame: Uint8Array,
  lo: number,
  hi: number,
): { entries: Entry[]; describe: DescribeEntry } {
  // The entries are views into the WAL file's bytes: the cache copies what it keeps
  // (entry-cache.ts), so they do not pin the file in memory.
  const header = readFrameHeader(frame, 0, frame.length)!;
  const entries: Entry[] = [];
  decodeFrameEntries(frame, 0, header, lo, hi + 1, entries);
  const ranges = frameRecordRanges(frame, 0, header);
  const describe = (entry: Entry): RecordRange | null =>
    recordRangeAt(ranges, entry.index - header.firstIndex);
  return { entries, describe };
}

/**
 * Plays a log's WAL records (frames are Raft appends, in write order) on a model of the log from
 * the lowest first index among them: per index, the term and the record that holds the entry in
 * the end. A record that the segment files were synced through L starts the model afresh after L:
 * what came before it is in the segments.
 */
function playRecords(records: readonly WalRecord[]): { base: number; terms: number[]; recordOf: number[] } {
  let base = -1;
  const terms: number[] = [];
  const recordOf: number[] = [];
  for (let k = 0; k < records.length; k++) {
    const record = records[k]!;
    if (record.kind === WAL_KIND_SYNCED) {
      base = record.syncedLastIndex + 1;
      terms.length = 0;
      recordOf.length = 0;
      continue;
    }
    const frame = record.frame;
    const header = readFrameHeader(frame, 0, frame.length);
    assert(header !== null, `WAL frame ${k} has no header`);
    // An append past the model's end does not follow from the records before it (writes of this
    // log that bypassed the WAL, in another mode): the model starts again from it.
    if (base < 0 || header.firstIndex < base || header.firstIndex > base + terms.length)
      base = header.firstIndex;
    terms.length = header.firstIndex - base;
    recordOf.length = header.firstIndex - base;
    const view = new DataView(frame.buffer, frame.byteOffset, frame.length);
    for (let r = 0; r < header.termRunCount; r++) {
      const runAt = FRAME_HEADER_BYTES + r * TERM_RUN_BYTES;
      const term = view.getFloat64(runAt, true);
      const count = view.getUint32(runAt + 8, true);
      for (let i = 0; i < count; i++) {
        terms.push(term);
        recordOf.push(k);
      }
    }
  }
  return { base, terms, recordOf };
}
