// The record batch format: round trips, offsets, and refusal of truncated data.

import { describe, expect, it } from 'vitest';
import {
  BatchFormatError,
  encodeBatch,
  forEachRecord,
  isRecordBatch,
  maxRecordTimestampMs,
  type RecordInput,
  readBatchHeader,
  type StoredRecord,
  setBaseOffset,
} from '../../src/broker/record-batch.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null) => (b ? new TextDecoder().decode(b) : null);

function collect(data: Uint8Array, from = 0): StoredRecord[] {
  const out: StoredRecord[] = [];
  forEachRecord(data, from, (r) => {
    out.push(r);
    return true;
  });
  return out;
}

describe('record batch', () => {
  const records: RecordInput[] = [
    {
      key: bytes('user-1'),
      value: bytes('hello'),
      headers: [['trace', bytes('abc')]],
      timestampMs: 1732262400000,
    },
    { key: null, value: bytes(''), headers: null, timestampMs: 1732262400001 },
    { key: bytes(''), value: new Uint8Array([0, 255, 7]), headers: [['nil', null]], timestampMs: 5 },
  ];

  it('round-trips keys, values, headers and timestamps, with dense offsets', () => {
    const data = encodeBatch(17, records, { id: 'p-7f3a', epoch: 2, sequence: 41 });
    expect(isRecordBatch(data)).toBe(true);
    const header = readBatchHeader(data);
    expect(header).toMatchObject({
      baseOffset: 17,
      recordCount: 3,
      producer: { id: 'p-7f3a', epoch: 2, sequence: 41 },
    });
    const out = collect(data);
    expect(out.map((r) => r.offset)).toEqual([17, 18, 19]);
    expect(text(out[0]!.key)).toBe('user-1');
    expect(text(out[0]!.value)).toBe('hello');
    expect(out[0]!.headers?.map(([k, v]) => [k, text(v)])).toEqual([['trace', 'abc']]);
    expect(out[1]!.key).toBeNull();
    expect(out[1]!.headers).toBeNull();
    expect(out[2]!.key?.length).toBe(0); // an empty key stays a key
    expect([...out[2]!.value]).toEqual([0, 255, 7]);
    expect(out[2]!.headers).toEqual([['nil', null]]);
    expect(out.map((r) => r.timestampMs)).toEqual([1732262400000, 1732262400001, 5]);
  });

  it('starts from an offset inside the batch and stops when told', () => {
    const data = encodeBatch(100, records, null);
    expect(collect(data, 101).map((r) => r.offset)).toEqual([101, 102]);
    const seen: number[] = [];
    forEachRecord(data, 0, (r) => {
      seen.push(r.offset);
      return false;
    });
    expect(seen).toEqual([100]);
  });

  it('the leader can stamp the base offset in place', () => {
    const data = encodeBatch(0, records, null);
    setBaseOffset(data, 9000);
    expect(collect(data).map((r) => r.offset)).toEqual([9000, 9001, 9002]);
  });

  it('refuses a truncated batch with a format error, never garbage', () => {
    const data = encodeBatch(0, records, null);
    for (const cut of [data.length - 1, data.length - 5, 20]) {
      expect(() => collect(data.subarray(0, cut))).toThrow(BatchFormatError);
    }
    expect(isRecordBatch(new Uint8Array(0))).toBe(false);
  });

  it('finds the largest record timestamp, wherever it is, for the time index', () => {
    const records: RecordInput[] = [
      {
        key: bytes('k'),
        value: bytes('a'),
        headers: [
          ['h', bytes('x')],
          ['n', null],
        ],
        timestampMs: 500,
      },
      { key: null, value: bytes(''), headers: null, timestampMs: 900 },
      { key: bytes(''), value: bytes('ccc'), headers: [['e', bytes('')]], timestampMs: 100 },
    ];
    const data = encodeBatch(7, records, { id: 'p', epoch: 0, sequence: 0 }, 1234);
    const header = readBatchHeader(data);
    expect(maxRecordTimestampMs(data, header)).toBe(900);
    expect(maxRecordTimestampMs(data, header)).toBe(Math.max(...collect(data).map((r) => r.timestampMs)));
    expect(() => maxRecordTimestampMs(data.subarray(0, data.length - 1), header)).toThrow(BatchFormatError);
  });
});
