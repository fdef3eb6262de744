// The fetch answer written from stored bytes (fetch-json.ts) reads as the generic path did: an
// object per record (encodeRecord) through the route's fast-json-stringify schema, or through
// JSON.stringify on a stream line. Compared after JSON.parse, field order included.

import fc from 'fast-check';
// fastify's own serializer, compiled from the route's schema, is the reference.
import fastJson from 'fast-json-stringify';
import { describe, expect, it } from 'vitest';
import { fetchAnswerJson, JsonBytesWriter } from '../../src/api/fetch-json.js';
import { encodeRecord } from '../../src/api/record-json.js';
import { fetchResponseSchema } from '../../src/api/schemas.js';
import type { StoredRecord } from '../../src/broker/facade.js';
import type { Encoding } from '../../src/wire/types.js';

const schemaSerializer = fastJson(fetchResponseSchema as unknown as Parameters<typeof fastJson>[0]);

/** Text with what JSON must escape, and what UTF-8 spells in 2, 3 and 4 bytes. */
const text = fc.oneof(
  fc.string({ unit: 'binary' }),
  fc.string({ unit: 'binary-ascii' }),
  fc.string({
    unit: fc.constantFrom('"', '\\', '\u0000', '\n', '\u001f', '\u007f', 'é', '\u2028', '😀', 'x'),
  }),
  fc.constantFrom('', '__proto__', '0', '1', 'constructor', 'x'.repeat(100)),
);
/** Bytes: text as UTF-8, or any bytes at all (invalid UTF-8 included). */
const bytes = fc.oneof(
  text.map((value) => new Uint8Array(Buffer.from(value, 'utf8'))),
  fc.uint8Array({ maxLength: 300 }),
);
/** As the log hands them out: views into a larger buffer, a Buffer or not. */
const view = bytes.chain((value) =>
  fc.boolean().map((asBuffer) => {
    const batch = Buffer.alloc(value.length + 7, 0x5c);
    batch.set(value, 3);
    const slice = batch.subarray(3, 3 + value.length);
    return asBuffer ? slice : new Uint8Array(slice.buffer, slice.byteOffset, slice.byteLength);
  }),
);
const headers = fc.option(fc.array(fc.tuple(text, fc.option(view, { nil: null })), { maxLength: 6 }), {
  nil: null,
});
const storedRecord: fc.Arbitrary<StoredRecord> = fc.record({
  offset: fc.maxSafeNat(),
  timestampMs: fc.oneof(
    fc.maxSafeNat(),
    fc.integer({ min: -1_000_000, max: 0 }),
    fc.constant(1_780_000_000_000),
  ),
  key: fc.option(view, { nil: null }),
  value: view,
  headers,
});
const encoding = fc.constantFrom<Encoding>('utf8', 'base64');

/** JSON text with its fields in the order they were written, to compare both value and order. */
function canonical(json: string): string {
  return JSON.stringify(JSON.parse(json));
}

describe('fetch answer JSON written from stored bytes', () => {
  it('parses to what the schema serializer made of encodeRecord, for any records', () => {
    fc.assert(
      fc.property(
        fc.array(storedRecord, { maxLength: 8 }),
        encoding,
        fc.maxSafeNat(),
        (records, enc, next) => {
          const answer = { records, nextOffset: next, highWatermark: next, logStartOffset: 0 };
          const expected = schemaSerializer({ ...answer, records: records.map((r) => encodeRecord(r, enc)) });
          expect(canonical(fetchAnswerJson(answer, enc).toString('utf8'))).toBe(canonical(expected));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('writes a stream line as JSON.stringify wrote encodeRecord with its partition', () => {
    fc.assert(
      fc.property(storedRecord, encoding, fc.nat(1000), (record, enc, partition) => {
        const writer = new JsonBytesWriter(1);
        writer.streamRecord(record, enc, partition);
        const expected = JSON.stringify(encodeRecord(record, enc, partition));
        expect(canonical(writer.bytes().toString('utf8'))).toBe(canonical(expected));
      }),
      { numRuns: 500 },
    );
  });

  it('keeps bytes that are not UTF-8 as the replacement character, as Buffer decodes them', () => {
    const record: StoredRecord = {
      offset: 7,
      timestampMs: 1,
      key: Buffer.from([0xff, 0x22]),
      value: Buffer.from([0x61, 0xc3, 0x28, 0xed, 0xa0, 0x80]),
      headers: [['h', Buffer.from([0x80])]],
    };
    const answer = { records: [record], nextOffset: 8, highWatermark: 8, logStartOffset: 0 };
    const parsed = JSON.parse(fetchAnswerJson(answer, 'utf8').toString('utf8'));
    expect(parsed.records[0]).toEqual({
      offset: 7,
      key: '\ufffd"',
      value: 'a\ufffd(\ufffd\ufffd\ufffd',
      headers: { h: '\ufffd' },
      timestamp: 1,
    });
  });
});
