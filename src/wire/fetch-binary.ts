// The binary fetch answer: `GET .../records` with `accept: application/vnd.raftlog.batches` is
// answered with the partition's stored record batches as they are, so a node serves a record for
// the cost of copying its bytes (no object per record, no JSON), as Kafka's fetch does. The SDK's
// consumer asks for it; the JSON answer stays the default. Described in docs/api.md.
//
// Layout (little-endian):
//   u16 version (1)        u16 reserved (0)        u32 batchCount
//   f64 offset             the first record answered
//   f64 nextOffset         records at or past it are not part of the answer
//   f64 highWatermark      f64 logStartOffset
//   batchCount times: u32 byteLength, then one record batch as stored:
//     u8 kind (1)  u8 version (1)  u16 flags (bit 0: producer, bit 1: append time)
//     f64 baseOffset  u32 recordCount
//     [append time] f64      [producer] u16 idBytes, id, u32 epoch, u32 sequence
//     records: f64 timestampMs, i32 keyBytes (-1: none), key, u32 valueBytes, value,
//              u16 headerCount, then per header u16 nameBytes, name, i32 valueBytes (-1: null), value
// The first batch may hold records before `offset` and the last records from `nextOffset` on: a
// reader skips them.

export const FETCH_BINARY_CONTENT_TYPE = 'application/vnd.raftlog.batches';

const VERSION = 1;
const ANSWER_HEADER_BYTES = 40;
const BATCH_KIND_RECORDS = 1;
const BATCH_VERSION = 1;
const FLAG_PRODUCER = 1;
const FLAG_APPEND_TIME = 2;
const BATCH_HEADER_BYTES = 16;

export interface FetchBatchesAnswer {
  batches: readonly Uint8Array[];
  offset: number;
  nextOffset: number;
  highWatermark: number;
  logStartOffset: number;
}

/**
 * The body of a binary fetch answer as pieces to write in order: the header and each batch's
 * length in one small buffer, the batches themselves as they are (no copy), and its byte length.
 */
export function fetchBinaryParts(answer: FetchBatchesAnswer): { parts: Uint8Array[]; byteLength: number } {
  const count = answer.batches.length;
  const head = Buffer.allocUnsafe(ANSWER_HEADER_BYTES + 4 * count);
  head.writeUInt16LE(VERSION, 0);
  head.writeUInt16LE(0, 2);
  head.writeUInt32LE(count, 4);
  head.writeDoubleLE(answer.offset, 8);
  head.writeDoubleLE(answer.nextOffset, 16);
  head.writeDoubleLE(answer.highWatermark, 24);
  head.writeDoubleLE(answer.logStartOffset, 32);
  const parts: Uint8Array[] = [];
  let byteLength = ANSWER_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const batch = answer.batches[i]!;
    const at = ANSWER_HEADER_BYTES + 4 * i;
    head.writeUInt32LE(batch.length, at);
    // The header and the first length go out as one piece; later lengths right before their batch.
    parts.push(i === 0 ? head.subarray(0, at + 4) : head.subarray(at, at + 4), batch);
    byteLength += 4 + batch.length;
  }
  if (count === 0) parts.push(head);
  return { parts, byteLength };
}

/** The whole body of a binary fetch answer in one buffer. */
export function encodeFetchBinary(answer: FetchBatchesAnswer): Buffer {
  const { parts, byteLength } = fetchBinaryParts(answer);
  return Buffer.concat(parts, byteLength);
}

/** A record of a binary answer, in the shape the SDK hands to applications. */
export interface DecodedRecord {
  topic: string;
  partition: number;
  offset: number;
  key: string | Uint8Array | null;
  value: string | Uint8Array;
  headers: Record<string, string | null> | null;
  timestamp: number;
}

export interface DecodedFetch {
  records: DecodedRecord[];
  nextOffset: number;
  highWatermark: number;
  logStartOffset: number;
}

export class FetchBinaryFormatError extends Error {
  constructor(message: string) {
    super(`binary fetch answer: ${message}`);
    this.name = 'FetchBinaryFormatError';
  }
}

/**
 * Decodes a binary answer into records of [offset, nextOffset). Keys and values are text (UTF-8,
 * invalid bytes as U+FFFD, as the JSON answer gives them) or, with `bytes`, copies of the bytes;
 * header values are always text, a repeated header name keeps its last value.
 */
export function decodeFetchBinary(
  body: Uint8Array,
  topic: string,
  partition: number,
  bytes: boolean,
): DecodedFetch {
  const buffer = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  need(buffer, 0, ANSWER_HEADER_BYTES);
  const version = view.getUint16(0, true);
  if (version !== VERSION) throw new FetchBinaryFormatError(`unknown version ${version}`);
  const batchCount = view.getUint32(4, true);
  const offset = view.getFloat64(8, true);
  const nextOffset = view.getFloat64(16, true);
  const answer: DecodedFetch = {
    records: [],
    nextOffset,
    highWatermark: view.getFloat64(24, true),
    logStartOffset: view.getFloat64(32, true),
  };
  const reader = new RecordReader(buffer, view, topic, partition, bytes, answer.records);
  let at = ANSWER_HEADER_BYTES;
  for (let b = 0; b < batchCount; b++) {
    need(buffer, at, 4);
    const end = at + 4 + view.getUint32(at, true);
    need(buffer, at + 4, end - at - 4);
    reader.batch(at + 4, end, offset, nextOffset);
    at = end;
  }
  if (at !== buffer.length)
    throw new FetchBinaryFormatError(`${buffer.length - at} bytes past the last batch`);
  return answer;
}

function need(buffer: Uint8Array, at: number, count: number): void {
  if (count < 0 || at + count > buffer.length)
    throw new FetchBinaryFormatError(`field past the end at byte ${at}`);
}

class RecordReader {
  constructor(
    private readonly buffer: Buffer,
    private readonly view: DataView,
    private readonly topic: string,
    private readonly partition: number,
    private readonly bytes: boolean,
    private readonly out: DecodedRecord[],
  ) {}

  /** The records of the batch at [start, end) whose offsets are in [from, to). */
  batch(start: number, end: number, from: number, to: number): void {
    const { buffer, view } = this;
    need(buffer, start, BATCH_HEADER_BYTES);
    if (buffer[start] !== BATCH_KIND_RECORDS || buffer[start + 1] !== BATCH_VERSION)
      throw new FetchBinaryFormatError(`unknown batch kind ${buffer[start]} version ${buffer[start + 1]}`);
    const flags = view.getUint16(start + 2, true);
    const baseOffset = view.getFloat64(start + 4, true);
    const count = view.getUint32(start + 12, true);
    let at = start + BATCH_HEADER_BYTES;
    if (flags & FLAG_APPEND_TIME) at += 8;
    if (flags & FLAG_PRODUCER) {
      need(buffer, at, 2);
      at += 2 + view.getUint16(at, true) + 8;
    }
    for (let i = 0; i < count && baseOffset + i < to; i++) {
      at = this.record(at, end, baseOffset + i, baseOffset + i >= from);
    }
  }

  /** Reads one record at `at`, keeping it when `keep`; where the next one starts. */
  private record(at: number, end: number, offset: number, keep: boolean): number {
    const { buffer, view } = this;
    if (at + 12 > end) throw new FetchBinaryFormatError(`record ${offset} past its batch`);
    const timestamp = view.getFloat64(at, true);
    const keyBytes = view.getInt32(at + 8, true);
    at += 12;
    const keyStart = at;
    if (keyBytes >= 0) at += keyBytes;
    if (at + 4 > end) throw new FetchBinaryFormatError(`record ${offset} past its batch`);
    const valueBytes = view.getUint32(at, true);
    const valueStart = at + 4;
    at = valueStart + valueBytes;
    if (at + 2 > end) throw new FetchBinaryFormatError(`record ${offset} past its batch`);
    const headerCount = view.getUint16(at, true);
    at += 2;
    let headers: Record<string, string | null> | null = null;
    if (headerCount > 0) {
      headers = {};
      for (let h = 0; h < headerCount; h++) {
        if (at + 2 > end) throw new FetchBinaryFormatError(`record ${offset} past its batch`);
        const nameEnd = at + 2 + view.getUint16(at, true);
        if (nameEnd + 4 > end) throw new FetchBinaryFormatError(`record ${offset} past its batch`);
        const name = buffer.toString('utf8', at + 2, nameEnd);
        const length = view.getInt32(nameEnd, true);
        at = nameEnd + 4 + (length >= 0 ? length : 0);
        if (at > end) throw new FetchBinaryFormatError(`record ${offset} past its batch`);
        headers[name] = length >= 0 ? buffer.toString('utf8', nameEnd + 4, at) : null;
      }
    }
    if (keep) {
      this.out.push({
        topic: this.topic,
        partition: this.partition,
        offset,
        key: keyBytes >= 0 ? this.field(keyStart, keyStart + keyBytes) : null,
        value: this.field(valueStart, valueStart + valueBytes),
        headers,
        timestamp,
      });
    }
    return at;
  }

  private field(start: number, end: number): string | Uint8Array {
    return this.bytes
      ? Buffer.from(this.buffer.subarray(start, end))
      : this.buffer.toString('utf8', start, end);
  }
}
