// bench: the idempotent-producer table's memory and speed, the figures behind its documented bound
// (src/broker/producer-state.ts, docs/api.md "Idempotent producers"). Heap bytes per full entry
// for a short id with one batch and for the longest id with 5 batches; bytes per evicted-producer
// digest; a snapshot's bytes; and the time to check and record one new producer in a full table.
//
// Prints JSON, then a table. Runs in well under a minute.
//
//   npx tsx bench/producer-state.ts [--producers 200000]

import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { PartitionMachine } from '../src/broker/partition-machine.js';
import {
  DEFAULT_PRODUCER_LIMITS,
  PRODUCER_ENTRY_BYTES_MAX,
  PRODUCER_SNAPSHOT_ENTRY_BYTES_MAX,
  ProducerTable,
  producerStateBytesMax,
} from '../src/broker/producer-state.js';
import { encodeBatch } from '../src/broker/record-batch.js';

const { values: args } = parseArgs({ options: { producers: { type: 'string', default: '200000' } } });
const PRODUCERS = Number(args.producers);
const ENTRIES = 10_000;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** Heap and array-buffer bytes that `build` leaves reachable, per `count`. */
function bytesPer(count: number, build: () => unknown): { heapBytes: number; keep: unknown } {
  gc();
  gc();
  const before = process.memoryUsage();
  const keep = build();
  gc();
  gc();
  const after = process.memoryUsage();
  const heapBytes = after.heapUsed - before.heapUsed + (after.arrayBuffers - before.arrayBuffers);
  return { heapBytes: Math.round(heapBytes / count), keep };
}

interface EntryShape {
  name: string;
  id: (i: number) => string;
  batches: number;
  /** Sequences and offsets past 2^31 take a heap number each. */
  big: boolean;
}

const shapes: EntryShape[] = [
  {
    name: '20-char id, 1 batch',
    id: (i) => `producer-${String(i).padStart(11, '0')}`,
    batches: 1,
    big: false,
  },
  {
    name: '255 two-byte chars, 5 batches',
    id: (i) => String(i).padStart(8, '0').padEnd(255, '\u4e2d'),
    batches: 5,
    big: true,
  },
  {
    name: '255 control chars, 5 batches',
    id: (i) => String(i).padStart(8, '0').padEnd(255, '\u0001'),
    batches: 5,
    big: true,
  },
];

function fullTable(shape: EntryShape): ProducerTable {
  const table = new ProducerTable({
    ...DEFAULT_PRODUCER_LIMITS,
    producersMax: ENTRIES,
    evictedProducersMax: 0,
  });
  table.tick(1.7e12);
  const base = shape.big ? 3e9 : 0;
  for (let i = 0; i < ENTRIES; i++) {
    const id = utf8Decoder.decode(utf8.encode(shape.id(i))); // flat, as a batch header decodes it
    for (let b = 0; b < shape.batches; b++) {
      table.record({ id, epoch: 7, sequence: base + b }, 1, base + i * 10 + b);
    }
  }
  return table;
}

function entryRows() {
  return shapes.map((shape) => {
    const { heapBytes, keep } = bytesPer(ENTRIES, () => fullTable(shape));
    const snapshotBytes = utf8.encode(JSON.stringify((keep as ProducerTable).toSnapshot())).length;
    return {
      shape: shape.name,
      heapBytesPerEntry: heapBytes,
      snapshotBytesPerEntry: Math.round(snapshotBytes / ENTRIES),
    };
  });
}

function digestRow() {
  const digests = DEFAULT_PRODUCER_LIMITS.evictedProducersMax;
  const { heapBytes, keep } = bytesPer(digests, () => {
    const table = new ProducerTable({ ...DEFAULT_PRODUCER_LIMITS, producersMax: 1 });
    for (let i = 0; i <= digests; i++) table.record({ id: `p${i}`, epoch: 0, sequence: 0 }, 1, i);
    return table;
  });
  const table = keep as ProducerTable;
  const snapshot = table.toSnapshot();
  return {
    digests: table.evictedSize,
    bytesPerDigest: heapBytes,
    snapshotBytesPerDigest: Math.round((snapshot.evicted?.length ?? 0) / table.evictedSize),
  };
}

/** Microseconds to check and apply one new one-record producer, in a full table. */
function speedRow() {
  const machine = new PartitionMachine({ highWatermark: 0, logStartOffset: 0, appliedIndex: 0 });
  const value = utf8.encode('v');
  const startMs = performance.now();
  for (let i = 0; i < PRODUCERS; i++) {
    const producer = { id: `mp-${String(i).padStart(7, '0')}`, epoch: 0, sequence: 0 };
    const check = machine.checkProduce(producer, 1, 1.7e12 + i);
    if (check.kind !== 'append') throw new Error(`producer ${i}: ${JSON.stringify(check)}`);
    const data = encodeBatch(i, [{ key: null, value, headers: null, timestampMs: 1 }], producer, 1.7e12 + i);
    machine.apply({ index: i + 1, term: 1, data } as Parameters<PartitionMachine['apply']>[0]);
  }
  const microsPerProducer = ((performance.now() - startMs) * 1000) / PRODUCERS;
  return {
    producers: PRODUCERS,
    evictions: machine.producers.evictionsTotal,
    microsPerProducer: Number(microsPerProducer.toFixed(2)),
  };
}

const result = {
  date: new Date().toISOString(),
  node: process.version,
  entries: entryRows(),
  digest: digestRow(),
  speed: speedRow(),
  documented: {
    entryBytesMax: PRODUCER_ENTRY_BYTES_MAX,
    snapshotEntryBytesMax: PRODUCER_SNAPSHOT_ENTRY_BYTES_MAX,
    partitionBytesMax: producerStateBytesMax(DEFAULT_PRODUCER_LIMITS),
  },
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n\n`);
const lines = ['entry shape | heap bytes/entry | snapshot bytes/entry'];
for (const r of result.entries)
  lines.push(`${r.shape} | ${r.heapBytesPerEntry} | ${r.snapshotBytesPerEntry}`);
lines.push(
  `digest (${result.digest.digests}) | ${result.digest.bytesPerDigest} | ${result.digest.snapshotBytesPerDigest}`,
);
lines.push(
  `documented bounds | ${PRODUCER_ENTRY_BYTES_MAX} per entry | ${PRODUCER_SNAPSHOT_ENTRY_BYTES_MAX} per entry; ` +
    `${(result.documented.partitionBytesMax / 1e6).toFixed(1)} MB per partition`,
);
lines.push(
  `new producer, full table | ${result.speed.microsPerProducer} µs (check + apply), ${result.speed.evictions} evictions`,
);
process.stdout.write(`${lines.join('\n')}\n`);
