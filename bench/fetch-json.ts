// bench:fetch-json — what a node spends per record writing a fetch answer: the response text of
// 1,000 records of 100 B values (as bench:consume reads them), written by fetch-json.ts, against
// the generic path (an object per record, then the route schema's fast-json-stringify).
//
// One JSON document, then a table, on stdout. Bounded: 5 x --rounds (default 400) answers per way.
//
//   npx tsx bench/fetch-json.ts [--rounds 400 --records 1000 --value-bytes 100]

import { parseArgs } from 'node:util';
import fastJson from 'fast-json-stringify';
import { fetchAnswerJson } from '../src/api/fetch-json.js';
import { encodeRecord } from '../src/api/record-json.js';
import { fetchResponseSchema } from '../src/api/schemas.js';
import type { StoredRecord } from '../src/broker/facade.js';
import type { Encoding } from '../src/wire/types.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '400' },
    records: { type: 'string', default: '1000' },
    'value-bytes': { type: 'string', default: '100' },
  },
});
const ROUNDS = Number(args.rounds);
const RECORDS = Number(args.records);
const VALUE_BYTES = Number(args['value-bytes']);
if (!(ROUNDS >= 1 && ROUNDS <= 1_000_000)) throw new Error('--rounds must be 1 to 1,000,000');
if (!(RECORDS >= 1 && RECORDS <= 10_000)) throw new Error('--records must be 1 to 10,000');

/** Records as the log hands them out: views into one batch buffer. */
function storedRecords(): StoredRecord[] {
  const batch = Buffer.alloc(RECORDS * VALUE_BYTES, 'x');
  const records: StoredRecord[] = [];
  for (let i = 0; i < RECORDS; i++) {
    const value = batch.subarray(i * VALUE_BYTES, (i + 1) * VALUE_BYTES);
    records.push({
      offset: 1_000_000 + i,
      timestampMs: 1_780_000_000_000 + i,
      key: null,
      value,
      headers: null,
    });
  }
  return records;
}

// The route's schema as fastify compiles it (readonly `as const` arrays are what it was given).
const serialize = fastJson(fetchResponseSchema as unknown as Parameters<typeof fastJson>[0]);

function generic(records: StoredRecord[], encoding: Encoding): Buffer {
  // The string is encoded when fastify writes it to the socket; counted here.
  const text = serialize({
    records: records.map((record) => encodeRecord(record, encoding)),
    nextOffset: 2_000_000,
    highWatermark: 2_000_000,
    logStartOffset: 0,
  });
  return Buffer.from(text);
}

function direct(records: StoredRecord[], encoding: Encoding): Buffer {
  return fetchAnswerJson(
    { records, nextOffset: 2_000_000, highWatermark: 2_000_000, logStartOffset: 0 },
    encoding,
  );
}

/**
 * CPU nanoseconds per record, to the bytes the socket is given: CPU time, not wall time, because
 * the machine is shared and a descheduled process would count others' work.
 */
function time(way: (records: StoredRecord[], encoding: Encoding) => Buffer, encoding: Encoding): number {
  const records = storedRecords();
  let bytes = 0;
  const started = process.cpuUsage();
  for (let i = 0; i < ROUNDS; i++) bytes += way(records, encoding).length;
  const used = process.cpuUsage(started);
  if (bytes === 0) throw new Error('no bytes written');
  return ((used.user + used.system) * 1000) / (ROUNDS * RECORDS);
}

const WAYS = { generic, direct };
const REPEATS = 5;
/** The least of REPEATS alternating runs of each way: the run least disturbed by others. */
const results: Record<string, number> = {};
for (let repeat = 0; repeat < REPEATS; repeat++) {
  for (const encoding of ['utf8', 'base64'] as const) {
    for (const [name, way] of Object.entries(WAYS)) {
      const ns = time(way, encoding);
      const label = `${name} ${encoding}`;
      results[label] = Math.round(Math.min(results[label] ?? Number.POSITIVE_INFINITY, ns) * 10) / 10;
    }
  }
}
console.log(
  JSON.stringify({
    bench: 'fetch-json',
    rounds: ROUNDS,
    records: RECORDS,
    valueBytes: VALUE_BYTES,
    nsPerRecord: results,
  }),
);
for (const [name, ns] of Object.entries(results))
  console.log(`${name.padEnd(16)} ${String(ns).padStart(8)} ns/record`);
