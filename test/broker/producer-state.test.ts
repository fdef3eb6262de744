// The idempotent-producer table and the partition machine's use of it: Kafka's sequence rules,
// the leader's check over pending batches, expiry by log time, snapshots, and replay.

import { describe, expect, it } from 'vitest';
import {
  decodePartitionSnapshot,
  encodePartitionSnapshot,
  PartitionMachine,
  rebuildProducerTable,
} from '../../src/broker/partition-machine.js';
import { checkSequence, PRODUCER_BATCHES_KEPT, ProducerTable } from '../../src/broker/producer-state.js';
import { encodeBatch, type ProducerInfo } from '../../src/broker/record-batch.js';
import type { Entry } from '../../src/raft/index.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const p = (sequence: number, epoch = 0, id = 'p1'): ProducerInfo => ({ id, epoch, sequence });
const value = new TextEncoder().encode('v');

function batchEntry(
  index: number,
  baseOffset: number,
  count: number,
  producer: ProducerInfo | null,
  appendTimeMs: number,
): Entry {
  const records = Array.from({ length: count }, () => ({ key: null, value, headers: null, timestampMs: 1 }));
  return { index, term: 1, type: 0, data: encodeBatch(baseOffset, records, producer, appendTimeMs) } as Entry;
}

/** A machine that applies batches as a replica would, one entry per call. */
class Log {
  readonly entries: Entry[] = [];
  constructor(
    readonly machine = new PartitionMachine({ highWatermark: 0, logStartOffset: 0, appliedIndex: 0 }),
  ) {}
  append(count: number, producer: ProducerInfo | null, appendTimeMs = 1000): Entry {
    const entry = batchEntry(
      this.entries.length + 1,
      this.machine.logEndOffset(),
      count,
      producer,
      appendTimeMs,
    );
    this.entries.push(entry);
    this.machine.noteAppendedEntries([entry]);
    return entry;
  }
  applyAll(): void {
    for (const entry of this.entries) if (entry.index > this.machine.appliedIndex) this.machine.apply(entry);
  }
}

describe('sequence rules', () => {
  const table = new ProducerTable();
  table.tick(1000);
  table.record(p(0), 3, 10); // sequences 0..2 at offsets 10..12
  table.record(p(3), 2, 20); // 3..4 at 20..21

  it('appends the next sequence and answers a retry of a remembered batch with its offsets', () => {
    expect(table.check(p(5), 1, 1000)).toEqual({ kind: 'append' });
    expect(table.check(p(0), 3, 1000)).toEqual({ kind: 'duplicate', baseOffset: 10 });
    expect(table.check(p(3), 2, 1000)).toEqual({ kind: 'duplicate', baseOffset: 20 });
  });

  it('refuses a gap, an overlap and a different record count as out of order', () => {
    expect(table.check(p(6), 1, 1000)).toMatchObject({ kind: 'refused', code: 'OUT_OF_ORDER_SEQUENCE' });
    expect(table.check(p(4), 1, 1000)).toMatchObject({ kind: 'refused', code: 'OUT_OF_ORDER_SEQUENCE' });
    expect(table.check(p(0), 2, 1000)).toMatchObject({ kind: 'refused', code: 'OUT_OF_ORDER_SEQUENCE' });
  });

  it('fences an older epoch; a newer epoch starts at 0 and then fences the old one', () => {
    const fenced = new ProducerTable();
    fenced.record(p(0, 3), 1, 0);
    expect(fenced.check(p(1, 2), 1, 0)).toMatchObject({ kind: 'refused', code: 'PRODUCER_FENCED' });
    expect(fenced.check(p(5, 4), 1, 0)).toMatchObject({ kind: 'refused', code: 'OUT_OF_ORDER_SEQUENCE' });
    expect(fenced.check(p(0, 4), 1, 0)).toEqual({ kind: 'append' });
    fenced.record(p(0, 4), 1, 1);
    expect(fenced.check(p(1, 3), 1, 0)).toMatchObject({ kind: 'refused', code: 'PRODUCER_FENCED' });
    expect(fenced.check(p(1, 4), 1, 0)).toEqual({ kind: 'append' });
  });

  it('requires a new producer to start at sequence 0', () => {
    expect(checkSequence(null, p(0), 1)).toEqual({ kind: 'append' });
    expect(checkSequence(null, p(7), 1)).toMatchObject({ code: 'OUT_OF_ORDER_SEQUENCE' });
  });

  it(`remembers the last ${PRODUCER_BATCHES_KEPT} batches only`, () => {
    const t = new ProducerTable();
    for (let i = 0; i < 8; i++) t.record(p(i), 1, 100 + i);
    expect(t.live('p1')!.batches.map((b) => b.firstSequence)).toEqual([3, 4, 5, 6, 7]);
    expect(t.check(p(3), 1, 0)).toEqual({ kind: 'duplicate', baseOffset: 103 });
    expect(t.check(p(2), 1, 0)).toMatchObject({ code: 'OUT_OF_ORDER_SEQUENCE' });
  });
});

describe('expiry by log time', () => {
  it('forgets a producer idle for producerExpiryMs of leader append time, epoch included', () => {
    const t = new ProducerTable({ producerExpiryMs: 7 * DAY_MS, producersMax: 100 });
    t.tick(1000);
    t.record(p(0, 5, 'idle'), 1, 0);
    t.tick(1000 + DAY_MS);
    t.record(p(0, 0, 'busy'), 1, 1);
    expect(t.check(p(0, 4, 'idle'), 1, 1000 + DAY_MS)).toMatchObject({ code: 'PRODUCER_FENCED' });
    // Just before the expiry the producer is known; at it, a check already sees it gone.
    expect(t.check(p(1, 5, 'idle'), 1, 1000 + 7 * DAY_MS - 1)).toEqual({ kind: 'append' });
    expect(t.check(p(1, 5, 'idle'), 1, 1000 + 7 * DAY_MS)).toMatchObject({ code: 'OUT_OF_ORDER_SEQUENCE' });
    // A batch of another producer moves the clock: the idle one is dropped from the table.
    t.tick(1000 + 7 * DAY_MS);
    t.record(p(1, 0, 'busy'), 1, 2);
    expect(t.size).toBe(1);
    expect(t.live('idle')).toBeNull();
    expect(t.check(p(0, 0, 'idle'), 1, 0)).toEqual({ kind: 'append' }); // any epoch, from 0
  });

  it('never goes back in time when a leader clock is behind', () => {
    const t = new ProducerTable({ producerExpiryMs: 100, producersMax: 100 });
    t.tick(1000);
    t.tick(500);
    expect(t.clockMs).toBe(1000);
  });

  it('drops the least recently written producer past producersMax', () => {
    const t = new ProducerTable({ producerExpiryMs: DAY_MS, producersMax: 2 });
    t.record(p(0, 0, 'a'), 1, 0);
    t.record(p(0, 0, 'b'), 1, 1);
    t.record(p(1, 0, 'a'), 1, 2); // a is now the most recent
    t.record(p(0, 0, 'c'), 1, 3);
    expect(t.live('b')).toBeNull();
    expect(t.live('a')).not.toBeNull();
    expect(t.live('c')).not.toBeNull();
  });

  it('decides the same on every replica: the table depends on the log only', () => {
    const limits = { producerExpiryMs: 50, producersMax: 3 };
    const a = new Log(
      new PartitionMachine({ highWatermark: 0, logStartOffset: 0, appliedIndex: 0, producerLimits: limits }),
    );
    const ids = ['x', 'y', 'z', 'w'];
    const sequences = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const id = ids[(i * 7) % 4]!;
      const seq = sequences.get(id) ?? 0;
      const check = a.machine.checkProduce(p(seq, 0, id), 2, i * 10);
      const next = check.kind === 'append' ? seq : 0;
      if (check.kind !== 'append' && a.machine.checkProduce(p(0, 1 + i, id), 2, i * 10).kind !== 'append')
        continue;
      a.append(2, p(next, check.kind === 'append' ? 0 : 1 + i, id), i * 10);
      sequences.set(id, next + 2);
      if (i % 3 === 0) a.applyAll();
    }
    a.applyAll();
    const b = new Log(
      new PartitionMachine({ highWatermark: 0, logStartOffset: 0, appliedIndex: 0, producerLimits: limits }),
    );
    for (const entry of a.entries) b.machine.apply(entry);
    expect(b.machine.producers.toSnapshot()).toEqual(a.machine.producers.toSnapshot());
  });
});

describe('the partition machine', () => {
  it('records idempotent batches on apply; the leader sees pending ones before they apply', () => {
    const log = new Log();
    log.append(2, null);
    const first = log.append(3, p(0));
    // Not applied yet: a retry is a duplicate of a pending entry, the next sequence appends.
    expect(log.machine.checkProduce(p(0), 3, 1000)).toEqual({
      kind: 'pending',
      index: first.index,
      baseOffset: 2,
    });
    expect(log.machine.checkProduce(p(3), 1, 1000)).toEqual({ kind: 'append' });
    expect(log.machine.checkProduce(p(4), 1, 1000)).toMatchObject({ code: 'OUT_OF_ORDER_SEQUENCE' });
    log.append(1, p(3));
    expect(log.machine.checkProduce(p(4), 1, 1000)).toEqual({ kind: 'append' });
    log.applyAll();
    expect(log.machine.highWatermark).toBe(6);
    expect(log.machine.checkProduce(p(0), 3, 1000)).toEqual({ kind: 'duplicate', baseOffset: 2 });
    expect(log.machine.checkProduce(p(3), 1, 1000)).toEqual({ kind: 'duplicate', baseOffset: 5 });
  });

  it('fences against a pending batch of a newer epoch', () => {
    const log = new Log();
    log.append(1, p(0, 0));
    log.applyAll();
    log.append(1, p(0, 1));
    expect(log.machine.checkProduce(p(1, 0), 1, 1000)).toMatchObject({ code: 'PRODUCER_FENCED' });
  });

  it('forgets a pending duplicate that a new leader overwrote', () => {
    const log = new Log();
    const first = log.append(1, p(0));
    expect(log.machine.isPending(first.index)).toBe(true);
    log.machine.noteAppendedEntries([
      { index: first.index, term: 2, type: 0, data: new Uint8Array() } as Entry,
    ]);
    expect(log.machine.isPending(first.index)).toBe(false);
    expect(log.machine.checkProduce(p(0), 1, 1000)).toEqual({ kind: 'append' });
  });

  it('keeps the table through a snapshot, encoded and restored on another replica', () => {
    const log = new Log();
    log.append(2, p(0));
    log.append(2, p(0, 0, 'other'));
    log.applyAll();
    const bytes = encodePartitionSnapshot(log.machine.snapshot());
    const replica = new PartitionMachine({ highWatermark: 0, logStartOffset: 0, appliedIndex: 0 });
    replica.restore(2, decodePartitionSnapshot(bytes));
    expect(replica.highWatermark).toBe(4);
    expect(replica.checkProduce(p(0), 2, 1000)).toEqual({ kind: 'duplicate', baseOffset: 0 });
    expect(replica.checkProduce(p(2, 0, 'other'), 1, 1000)).toEqual({ kind: 'append' });
  });

  it('rebuilds on restart from a snapshot taken below the applied index, then the log', async () => {
    const log = new Log();
    log.append(1, p(0)); // index 1
    log.append(1, p(1)); // index 2
    log.append(1, p(0, 0, 'q')); // index 3
    log.applyAll();
    // A retention cut at index 2 carries nextOffset there and the table at the applied index 3.
    const snapshot = { nextOffset: 2, ...log.machine.producerSnapshot() };
    log.append(1, p(2)); // index 4
    log.applyAll();
    const store = {
      firstIndex: () => 3,
      readEntries: async (lo: number, hi: number) => log.entries.filter((e) => e.index >= lo && e.index < hi),
    };
    const restarted = new PartitionMachine({ highWatermark: 4, logStartOffset: 2, appliedIndex: 4 });
    await rebuildProducerTable(restarted, store, {
      index: 2,
      data: decodePartitionSnapshot(encodePartitionSnapshot(snapshot)),
    });
    expect(restarted.producers.toSnapshot()).toEqual(log.machine.producers.toSnapshot());
    // A replica installing that snapshot applies index 3 again without recording it twice.
    const installed = new PartitionMachine({ highWatermark: 0, logStartOffset: 0, appliedIndex: 0 });
    installed.restore(2, snapshot);
    installed.apply(log.entries[2]!);
    installed.apply(log.entries[3]!);
    expect(installed.producers.toSnapshot()).toEqual(log.machine.producers.toSnapshot());
  });
});
