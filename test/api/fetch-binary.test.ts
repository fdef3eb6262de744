// The binary fetch answer (wire/fetch-binary.ts) gives, once decoded, exactly the records the JSON
// answer gives for the same stored batches and range: keys, values (text or bytes), headers and
// timestamps; and a damaged answer is refused, never read as other records.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fetchAnswerJson } from '../../src/api/fetch-json.js';
import {
  encodeBatch,
  forEachRecord,
  type ProducerInfo,
  type RecordInput,
  type StoredRecord,
} from '../../src/broker/record-batch.js';
import { decodeFetchBinary, encodeFetchBinary, FetchBinaryFormatError } from '../../src/wire/fetch-binary.js';
import type { FetchResponse } from '../../src/wire/types.js';

const text = fc.oneof(
  fc.string({ unit: 'binary' }),
  fc.string({ unit: fc.constantFrom('"', '\\', '\u0000', '\n', 'é', '\u2028', '😀', 'x') }),
  fc.constantFrom('', '__proto__', '0', 'constructor', 'x'.repeat(100)),
);
/** Text as UTF-8, or any bytes (invalid UTF-8 included). */
const bytes = fc.oneof(
  text.map((value) => new Uint8Array(Buffer.from(value, 'utf8'))),
  fc.uint8Array({ maxLength: 200 }),
);
const recordInput: fc.Arbitrary<RecordInput> = fc.record({
  key: fc.option(bytes, { nil: null }),
  value: bytes,
  headers: fc.option(fc.array(fc.tuple(text, fc.option(bytes, { nil: null })), { maxLength: 4 }), {
    nil: null,
  }),
  timestampMs: fc.oneof(fc.maxSafeNat(), fc.constant(1_780_000_000_000)),
});
const producer: fc.Arbitrary<ProducerInfo | null> = fc.option(
  fc.record({ id: text, epoch: fc.nat(), sequence: fc.nat() }),
  { nil: null },
);

/** Stored batches at consecutive offsets from `base`, and a range [offset, nextOffset) within them. */
const stored = fc
  .record({
    base: fc.nat({ max: 1_000_000 }),
    batches: fc.array(
      fc.record({
        records: fc.array(recordInput, { minLength: 1, maxLength: 6 }),
        producer,
        appendTimeMs: fc.option(fc.maxSafeNat(), { nil: null }),
      }),
      { minLength: 1, maxLength: 5 },
    ),
  })
  .chain(({ base, batches }) => {
    let next = base;
    const encoded = batches.map((b) => {
      const data = encodeBatch(next, b.records, b.producer, b.appendTimeMs);
      next += b.records.length;
      return data;
    });
    const first = batches[0]!.records.length;
    const last = batches[batches.length - 1]!.records.length;
    return fc.record({
      batches: fc.constant(encoded),
      offset: fc.integer({ min: base, max: base + first - 1 }),
      nextOffset: fc.integer({ min: next - last + 1, max: next }),
    });
  })
  .filter(({ offset, nextOffset }) => offset < nextOffset);

/** What the JSON route answers for the same range (readCommitted's walk, then fetchAnswerJson). */
function jsonAnswer(batches: Uint8Array[], offset: number, nextOffset: number, encoding: 'utf8' | 'base64') {
  const records: StoredRecord[] = [];
  for (const batch of batches)
    forEachRecord(batch, offset, (record) => {
      if (record.offset >= nextOffset) return false;
      records.push(record);
      return true;
    });
  const answer = { records, nextOffset, highWatermark: nextOffset + 3, logStartOffset: 0 };
  return JSON.parse(fetchAnswerJson(answer, encoding).toString('utf8')) as FetchResponse;
}

function binaryAnswer(batches: Uint8Array[], offset: number, nextOffset: number): Buffer {
  return encodeFetchBinary({ batches, offset, nextOffset, highWatermark: nextOffset + 3, logStartOffset: 0 });
}

describe('binary fetch answer', () => {
  it('decodes to the records the JSON answer gives, as text', () => {
    fc.assert(
      fc.property(stored, ({ batches, offset, nextOffset }) => {
        const json = jsonAnswer(batches, offset, nextOffset, 'utf8');
        const decoded = decodeFetchBinary(binaryAnswer(batches, offset, nextOffset), 't', 4, false);
        expect(decoded.nextOffset).toBe(json.nextOffset);
        expect(decoded.highWatermark).toBe(json.highWatermark);
        expect(decoded.logStartOffset).toBe(json.logStartOffset);
        expect(decoded.records).toEqual(
          json.records.map((r) => ({
            topic: 't',
            partition: 4,
            offset: r.offset,
            key: r.key ?? null,
            value: r.value,
            headers: r.headers ?? null,
            timestamp: r.timestamp,
          })),
        );
        expect(decoded.records.map((r) => r.offset)).toEqual(
          Array.from({ length: nextOffset - offset }, (_, i) => offset + i),
        );
      }),
      { numRuns: 300 },
    );
  });

  it('decodes keys and values as bytes equal to the base64 JSON answer', () => {
    fc.assert(
      fc.property(stored, ({ batches, offset, nextOffset }) => {
        const json = jsonAnswer(batches, offset, nextOffset, 'base64');
        const decoded = decodeFetchBinary(binaryAnswer(batches, offset, nextOffset), 't', 0, true);
        expect(decoded.records.map((r) => [r.key, r.value])).toEqual(
          json.records.map((r) => [
            r.key == null ? null : Buffer.from(r.key, 'base64'),
            Buffer.from(r.value, 'base64'),
          ]),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('answers with no batches as an empty answer', () => {
    const decoded = decodeFetchBinary(
      encodeFetchBinary({ batches: [], offset: 7, nextOffset: 7, highWatermark: 7, logStartOffset: 2 }),
      't',
      0,
      false,
    );
    expect(decoded).toEqual({ records: [], nextOffset: 7, highWatermark: 7, logStartOffset: 2 });
  });

  it('refuses a truncated or padded answer instead of reading other records', () => {
    fc.assert(
      fc.property(stored, fc.nat(), fc.boolean(), ({ batches, offset, nextOffset }, cut, pad) => {
        const whole = binaryAnswer(batches, offset, nextOffset);
        const damaged = pad
          ? Buffer.concat([whole, Buffer.alloc(1 + (cut % 9))])
          : whole.subarray(0, cut % whole.length);
        expect(() => decodeFetchBinary(damaged, 't', 0, false)).toThrow(FetchBinaryFormatError);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses an answer of another version', () => {
    const answer = encodeFetchBinary({
      batches: [],
      offset: 0,
      nextOffset: 0,
      highWatermark: 0,
      logStartOffset: 0,
    });
    answer.writeUInt16LE(2, 0);
    expect(() => decodeFetchBinary(answer, 't', 0, false)).toThrow(/unknown version 2/);
  });
});
