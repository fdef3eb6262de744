// The binary record batch: the data of one partition log entry. One produce request to one
// partition becomes one batch, so its records get contiguous offsets atomically.
//
// Layout (little-endian):
//   u8   kind (1 = records)          u8  version (1)
//   u16  flags (bit 0: producer present, bit 1: append time present)
//   f64  baseOffset                  u32 recordCount
//   [append time] f64 appendTimeMs (the leader's clock when it appended the batch)
//   [producer] u16 idBytes, id (utf8), u32 epoch, u32 baseSequence
//   records, each:
//     f64 timestampMs
//     i32 keyBytes (-1: no key), key
//     u32 valueBytes, value
//     u16 headerCount, then per header: u16 nameBytes, name (utf8), i32 valueBytes (-1: null), value
//
// Integrity is the storage layer's job (CRC32C per frame); this layer checks structure.

import { assert } from '../raft/errors.js';
import { entryDataSlab } from '../storage/byte-slab.js';

export const BATCH_KIND_RECORDS = 1;
const BATCH_VERSION = 1;
const FLAG_PRODUCER = 1;
const FLAG_APPEND_TIME = 2;
const HEADER_BYTES = 1 + 1 + 2 + 8 + 4;
const NO_KEY = -1;

export interface ProducerInfo {
  id: string;
  epoch: number;
  /** Sequence of the batch's first record, counted per (producer id, partition). */
  sequence: number;
}

/** One record as produced: bytes already decoded from the request's encoding. */
export interface RecordInput {
  key: Uint8Array | null;
  value: Uint8Array;
  headers: Array<[string, Uint8Array | null]> | null;
  timestampMs: number;
}

export interface BatchHeader {
  baseOffset: number;
  recordCount: number;
  producer: ProducerInfo | null;
  /** The leader's clock when it appended the batch (null in batches written without it). */
  appendTimeMs: number | null;
  /** Where the records start in the batch. */
  recordsStart: number;
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

export class BatchFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BatchFormatError';
  }
}

function recordBytes(record: Omit<RecordInput, 'timestampMs'>): number {
  let size = 8 + 4 + (record.key ? record.key.length : 0) + 4 + record.value.length + 2;
  if (record.headers) {
    for (const [name, value] of record.headers)
      size += 2 + utf8.encode(name).length + 4 + (value ? value.length : 0);
  }
  return size;
}

/** The size encodeBatch gives these records, without encoding them (backpressure asks first). */
export function encodedBatchBytes(
  records: readonly Omit<RecordInput, 'timestampMs'>[],
  producer: ProducerInfo | null,
  timed: boolean,
): number {
  const producerIdBytes = producer ? utf8.encode(producer.id).length : -1;
  let size = HEADER_BYTES + (timed ? 8 : 0) + (producerIdBytes >= 0 ? 2 + producerIdBytes + 8 : 0);
  for (const record of records) size += recordBytes(record);
  return size;
}

/** Encodes records into one batch buffer, allocated once at its exact size (from a slab when small). */
export function encodeBatch(
  baseOffset: number,
  records: readonly RecordInput[],
  producer: ProducerInfo | null,
  appendTimeMs: number | null = null,
): Uint8Array {
  assert(records.length > 0, 'encodeBatch: no records');
  const producerId = producer ? utf8.encode(producer.id) : null;
  const timed = appendTimeMs !== null;
  const size = encodedBatchBytes(records, producer, timed);
  const bytes = entryDataSlab.take(size);
  const view = viewOf(bytes);
  view.setUint8(0, BATCH_KIND_RECORDS);
  view.setUint8(1, BATCH_VERSION);
  view.setUint16(2, (producer ? FLAG_PRODUCER : 0) | (timed ? FLAG_APPEND_TIME : 0), true);
  view.setFloat64(4, baseOffset, true);
  view.setUint32(12, records.length, true);
  let at = HEADER_BYTES;
  if (timed) {
    view.setFloat64(at, appendTimeMs, true);
    at += 8;
  }
  if (producer && producerId) {
    view.setUint16(at, producerId.length, true);
    bytes.set(producerId, at + 2);
    at += 2 + producerId.length;
    view.setUint32(at, producer.epoch, true);
    view.setUint32(at + 4, producer.sequence, true);
    at += 8;
  }
  for (const record of records) at = writeRecord(bytes, view, at, record);
  assert(at === size, `encodeBatch: wrote ${at} of ${size} bytes`);
  return bytes;
}

function writeRecord(bytes: Uint8Array, view: DataView, at: number, record: RecordInput): number {
  view.setFloat64(at, record.timestampMs, true);
  at += 8;
  if (record.key) {
    view.setInt32(at, record.key.length, true);
    bytes.set(record.key, at + 4);
    at += 4 + record.key.length;
  } else {
    view.setInt32(at, NO_KEY, true);
    at += 4;
  }
  view.setUint32(at, record.value.length, true);
  bytes.set(record.value, at + 4);
  at += 4 + record.value.length;
  const headers = record.headers ?? [];
  view.setUint16(at, headers.length, true);
  at += 2;
  for (const [name, value] of headers) {
    const nameBytes = utf8.encode(name);
    view.setUint16(at, nameBytes.length, true);
    bytes.set(nameBytes, at + 2);
    at += 2 + nameBytes.length;
    view.setInt32(at, value ? value.length : -1, true);
    at += 4;
    if (value) {
      bytes.set(value, at);
      at += value.length;
    }
  }
  return at;
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** True if the entry data is a record batch (not a no-op or another kind). */
export function isRecordBatch(data: Uint8Array): boolean {
  return data.length >= HEADER_BYTES && data[0] === BATCH_KIND_RECORDS;
}

export function readBatchHeader(data: Uint8Array): BatchHeader {
  if (!isRecordBatch(data)) throw new BatchFormatError('not a record batch');
  const view = viewOf(data);
  if (view.getUint8(1) !== BATCH_VERSION)
    throw new BatchFormatError(`unknown batch version ${view.getUint8(1)}`);
  const flags = view.getUint16(2, true);
  const baseOffset = view.getFloat64(4, true);
  const recordCount = view.getUint32(12, true);
  let at = HEADER_BYTES;
  let appendTimeMs: number | null = null;
  if (flags & FLAG_APPEND_TIME) {
    if (at + 8 > data.length) throw new BatchFormatError('append time past the end');
    appendTimeMs = view.getFloat64(at, true);
    at += 8;
  }
  let producer: ProducerInfo | null = null;
  if (flags & FLAG_PRODUCER) {
    const idBytes = view.getUint16(at, true);
    if (at + 2 + idBytes + 8 > data.length) throw new BatchFormatError('producer header past the end');
    const id = utf8Decoder.decode(data.subarray(at + 2, at + 2 + idBytes));
    at += 2 + idBytes;
    producer = { id, epoch: view.getUint32(at, true), sequence: view.getUint32(at + 4, true) };
    at += 8;
  }
  return { baseOffset, recordCount, producer, appendTimeMs, recordsStart: at };
}

/** Rewrites the base offset in place (the leader stamps it just before proposing). */
export function setBaseOffset(data: Uint8Array, baseOffset: number): void {
  viewOf(data).setFloat64(4, baseOffset, true);
}

/** A record as stored; key, value and header values are views into the batch (no copies). */
export interface StoredRecord {
  offset: number;
  timestampMs: number;
  key: Uint8Array | null;
  value: Uint8Array;
  headers: Array<[string, Uint8Array | null]> | null;
}

/**
 * Calls `visit` for each record with offset >= fromOffset, until it returns false.
 * Returns the number of records visited.
 */
export function forEachRecord(
  data: Uint8Array,
  fromOffset: number,
  visit: (record: StoredRecord) => boolean,
): number {
  const header = readBatchHeader(data);
  const view = viewOf(data);
  let at = header.recordsStart;
  let visited = 0;
  for (let i = 0; i < header.recordCount; i++) {
    const parsed = readRecord(data, view, at, header.baseOffset + i);
    at = parsed.next;
    if (parsed.record.offset < fromOffset) continue;
    visited++;
    if (!visit(parsed.record)) break;
  }
  return visited;
}

/**
 * The largest record timestamp in a batch (what fetch reports as each record's `timestamp`), for
 * the storage's time index. Walks the records' lengths without decoding them: it runs for every
 * entry a replica appends.
 */
export function maxRecordTimestampMs(data: Uint8Array, header: BatchHeader): number {
  const view = viewOf(data);
  let at = header.recordsStart;
  let maxTimestampMs = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < header.recordCount; i++) {
    need(data, at, 12);
    const timestampMs = view.getFloat64(at, true);
    if (timestampMs > maxTimestampMs) maxTimestampMs = timestampMs;
    const keyBytes = view.getInt32(at + 8, true);
    at += 12 + (keyBytes === NO_KEY ? 0 : keyBytes);
    need(data, at, 4);
    at += 4 + view.getUint32(at, true);
    need(data, at, 2);
    const headerCount = view.getUint16(at, true);
    at += 2;
    for (let h = 0; h < headerCount; h++) {
      need(data, at, 2);
      at += 2 + view.getUint16(at, true);
      need(data, at, 4);
      const valueBytes = view.getInt32(at, true);
      at += 4 + (valueBytes >= 0 ? valueBytes : 0);
    }
  }
  need(data, at, 0);
  return maxTimestampMs;
}

function need(data: Uint8Array, at: number, bytes: number): void {
  if (at + bytes > data.length) throw new BatchFormatError(`record field past the end at byte ${at}`);
}

function readRecord(
  data: Uint8Array,
  view: DataView,
  at: number,
  offset: number,
): { record: StoredRecord; next: number } {
  need(data, at, 12);
  const timestampMs = view.getFloat64(at, true);
  const keyBytes = view.getInt32(at + 8, true);
  at += 12;
  let key: Uint8Array | null = null;
  if (keyBytes !== NO_KEY) {
    need(data, at, keyBytes);
    key = data.subarray(at, at + keyBytes);
    at += keyBytes;
  }
  need(data, at, 4);
  const valueBytes = view.getUint32(at, true);
  need(data, at + 4, valueBytes + 2);
  const value = data.subarray(at + 4, at + 4 + valueBytes);
  at += 4 + valueBytes;
  const headerCount = view.getUint16(at, true);
  at += 2;
  let headers: Array<[string, Uint8Array | null]> | null = null;
  if (headerCount > 0) {
    headers = [];
    for (let h = 0; h < headerCount; h++) {
      need(data, at, 2);
      const nameBytes = view.getUint16(at, true);
      need(data, at + 2, nameBytes + 4);
      const name = utf8Decoder.decode(data.subarray(at + 2, at + 2 + nameBytes));
      at += 2 + nameBytes;
      const valueLength = view.getInt32(at, true);
      at += 4;
      let headerValue: Uint8Array | null = null;
      if (valueLength >= 0) {
        need(data, at, valueLength);
        headerValue = data.subarray(at, at + valueLength);
        at += valueLength;
      }
      headers.push([name, headerValue]);
    }
  }
  return { record: { offset, timestampMs, key, value, headers }, next: at };
}
