// The idempotent-producer table and the partition machine's use of it: Kafka's sequence rules,
// the leader's check over pending batches, expiry by log time, snapshots, and replay; the bound
// on the table (eviction) and what it keeps of evicted producers, so that none of their retries
// is ever appended twice.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodePartitionSnapshot,
  encodePartitionSnapshot,
  PartitionMachine,
  type ProduceCheck,
  rebuildProducerTable,
} from '../../src/broker/partition-machine.js';
import {
  checkSequence,
  DEFAULT_PRODUCER_LIMITS,
  PRODUCER_BATCHES_KEPT,
  type ProducerLimits,
  ProducerTable,
} from '../../src/broker/producer-state.js';
import { encodeBatch, type ProducerInfo, readBatchHeader } from '../../src/broker/record-batch.js';
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
    const t = new ProducerTable({
      ...DEFAULT_PRODUCER_LIMITS,
      producerExpiryMs: 7 * DAY_MS,
      producersMax: 100,
    });
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
    const t = new ProducerTable({ ...DEFAULT_PRODUCER_LIMITS, producerExpiryMs: 100, producersMax: 100 });
    t.tick(1000);
    t.tick(500);
    expect(t.clockMs).toBe(1000);
  });

  it('drops the least recently written producer past producersMax', () => {
    const t = new ProducerTable({ ...DEFAULT_PRODUCER_LIMITS, producerExpiryMs: DAY_MS, producersMax: 2 });
    t.record(p(0, 0, 'a'), 1, 0);
    t.record(p(0, 0, 'b'), 1, 1);
    t.record(p(1, 0, 'a'), 1, 2); // a is now the most recent
    t.record(p(0, 0, 'c'), 1, 3);
    expect(t.live('b')).toBeNull();
    expect(t.live('a')).not.toBeNull();
    expect(t.live('c')).not.toBeNull();
  });

  it('decides the same on every replica: the table depends on the log only', () => {
    const limits = { producerExpiryMs: 50, producersMax: 3, evictedProducersMax: 2 };
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

/** A partition with a small table: `producersMax` full entries, `evictedProducersMax` digests. */
function smallLog(producersMax: number, evictedProducersMax: number, producerExpiryMs = DAY_MS): Log {
  const producerLimits: ProducerLimits = { producerExpiryMs, producersMax, evictedProducersMax };
  return new Log(
    new PartitionMachine({ highWatermark: 0, logStartOffset: 0, appliedIndex: 0, producerLimits }),
  );
}

/** What a leader does with a request: checks it, and appends it only if the check says so. */
function produce(log: Log, producer: ProducerInfo, count = 1, appendTimeMs = 1000): ProduceCheck {
  const check = log.machine.checkProduce(producer, count, appendTimeMs);
  if (check.kind === 'append') log.append(count, producer, appendTimeMs);
  return check;
}

/** Appends and applies one batch of `count` records from each producer id, in order. */
function fill(log: Log, ids: string[], count = 1, appendTimeMs = 1000): void {
  for (const id of ids) expect(produce(log, p(0, 0, id), count, appendTimeMs)).toEqual({ kind: 'append' });
  log.applyAll();
}

/** The producer ids of the batches in the log, in log order. */
function loggedIds(log: Log): Array<string | undefined> {
  return log.entries.map((e) => readBatchHeader(e.data).producer?.id);
}

describe('a full table: eviction', () => {
  it('evicts the least recently written producer first, keeps a digest of it, and counts it', () => {
    const t = new ProducerTable({ ...DEFAULT_PRODUCER_LIMITS, producersMax: 2, evictedProducersMax: 10 });
    t.tick(500);
    t.record(p(0, 0, 'a'), 1, 0);
    t.record(p(0, 0, 'b'), 1, 1);
    t.record(p(1, 0, 'a'), 2, 2); // a is now the most recently written: b is the idle one
    t.record(p(0, 0, 'c'), 1, 4);
    expect([t.live('a') !== null, t.live('b'), t.live('c') !== null]).toEqual([true, null, true]);
    expect(t.evictedEntry('b')).toEqual({ epoch: 0, lastSequence: 0, lastWriteMs: 500 });
    t.record(p(0, 0, 'd'), 1, 5);
    expect(t.evictedEntry('a')).toEqual({ epoch: 0, lastSequence: 2, lastWriteMs: 500 });
    expect(t.evictedEntry('c')).toBeNull();
    expect({ size: t.size, evicted: t.evictedSize, evictions: t.evictionsTotal }).toEqual({
      size: 2,
      evicted: 2,
      evictions: 2,
    });
  });

  it('refuses a retry from an evicted producer with UNKNOWN_PRODUCER and never appends it twice', () => {
    const log = smallLog(2, 10);
    expect(produce(log, p(0, 0, 'early'), 2)).toEqual({ kind: 'append' }); // sequences 0..1
    expect(produce(log, p(2, 0, 'early'), 3)).toEqual({ kind: 'append' }); // sequences 2..4
    log.applyAll();
    fill(log, ['x', 'y']); // early is the least recently written: evicted
    expect(log.machine.producers.live('early')).toBeNull();
    for (const [sequence, count] of [
      [0, 2],
      [2, 3],
      [0, 1], // not a batch it sent, but at sequences already appended: refused all the same
    ] as const) {
      const retry = produce(log, p(sequence, 0, 'early'), count);
      expect(retry).toMatchObject({ kind: 'refused', code: 'UNKNOWN_PRODUCER' });
      expect(retry.kind === 'refused' && retry.message).toMatch(
        /'early' epoch 0 was evicted .* up to 4 are in the log .* Go on at sequence 5, or start a new epoch \(or a new producer id\) at sequence 0$/,
      );
      expect(log.machine.producers.check(p(sequence, 0, 'early'), count, 1000)).toEqual(retry);
    }
    log.applyAll();
    expect(loggedIds(log)).toEqual(['early', 'early', 'x', 'y']);
    expect(log.machine.highWatermark).toBe(7);
  });

  it('lets an evicted producer go on at its next sequence, or from 0 in a higher epoch; fences older epochs', () => {
    const log = smallLog(1, 10);
    expect(produce(log, p(0, 3, 'e'), 2)).toEqual({ kind: 'append' });
    log.applyAll();
    fill(log, ['other']);
    const check = (sequence: number, epoch: number) =>
      log.machine.checkProduce(p(sequence, epoch, 'e'), 1, 1000);
    expect(check(1, 3)).toMatchObject({ code: 'UNKNOWN_PRODUCER' });
    expect(check(2, 3)).toEqual({ kind: 'append' }); // the next sequence: nothing to dedup
    expect(check(5, 3)).toMatchObject({ code: 'OUT_OF_ORDER_SEQUENCE' });
    expect(check(0, 2)).toMatchObject({ code: 'PRODUCER_FENCED' });
    expect(check(0, 4)).toEqual({ kind: 'append' });
    expect(check(1, 4)).toMatchObject({ code: 'OUT_OF_ORDER_SEQUENCE' });
    // Back in the table at epoch 4 (evicting 'other'): the table's rules again, its old epoch fenced.
    expect(produce(log, p(0, 4, 'e'))).toEqual({ kind: 'append' });
    log.applyAll();
    expect(check(0, 4)).toEqual({ kind: 'duplicate', baseOffset: 3 });
    expect(check(2, 3)).toMatchObject({ code: 'PRODUCER_FENCED' });
    expect(log.machine.producers.evictedEntry('other')).toMatchObject({ epoch: 0, lastSequence: 0 });
  });

  it('sees a pending batch of an evicted producer: its retry waits for it, never appends', () => {
    const log = smallLog(1, 10);
    fill(log, ['e', 'other']);
    const next = log.append(1, p(1, 0, 'e'));
    expect(log.machine.checkProduce(p(1, 0, 'e'), 1, 1000)).toEqual({
      kind: 'pending',
      index: next.index,
      baseOffset: 2,
    });
    expect(log.machine.checkProduce(p(0, 0, 'e'), 1, 1000)).toMatchObject({ code: 'OUT_OF_ORDER_SEQUENCE' });
  });

  it('forgets the oldest evicted producers past evictedProducersMax, and counts them', () => {
    const log = smallLog(1, 2);
    fill(log, ['a', 'b', 'c', 'd']); // a, b, c evicted; a's digest dropped for c's
    const producers = log.machine.producers;
    expect([producers.evictionsTotal, producers.forgottenTotal, producers.evictedSize]).toEqual([3, 1, 2]);
    expect(log.machine.checkProduce(p(0, 0, 'b'), 1, 1000)).toMatchObject({ code: 'UNKNOWN_PRODUCER' });
    // The documented residual risk: a producer forgotten entirely is new to the partition again.
    expect(log.machine.checkProduce(p(0, 0, 'a'), 1, 1000)).toEqual({ kind: 'append' });
  });

  it('forgets an evicted producer after producerExpiryMs of log time, as it would one in the table', () => {
    const log = smallLog(1, 10, 100);
    expect(produce(log, p(0, 0, 'a'), 1, 1000)).toEqual({ kind: 'append' });
    expect(produce(log, p(0, 0, 'b'), 1, 1050)).toEqual({ kind: 'append' });
    log.applyAll();
    expect(log.machine.checkProduce(p(0, 0, 'a'), 1, 1099)).toMatchObject({ code: 'UNKNOWN_PRODUCER' });
    expect(log.machine.checkProduce(p(0, 0, 'a'), 1, 1100)).toEqual({ kind: 'append' });
    expect(produce(log, p(0, 0, 'c'), 1, 1200)).toEqual({ kind: 'append' });
    log.applyAll();
    // b expired in the table (no digest for an expired producer) and a's digest expired too.
    const producers = log.machine.producers;
    expect([producers.size, producers.evictedSize, producers.evictionsTotal]).toEqual([1, 0, 1]);
  });

  it('keeps evicted producers and the counts through a snapshot, restored or rebuilt on another replica', async () => {
    const log = smallLog(2, 5);
    fill(log, ['a', 'b', 'c'], 2);
    expect(produce(log, p(2, 0, 'a'), 1)).toEqual({ kind: 'append' }); // a, evicted, goes on
    log.applyAll();
    fill(log, ['d', 'e', 'f', 'g', 'h']);
    const cut = log.machine.appliedIndex;
    const bytes = encodePartitionSnapshot(log.machine.snapshot());
    const replica = smallLog(2, 5);
    replica.machine.restore(cut, decodePartitionSnapshot(bytes));
    const rebuilt = smallLog(2, 5);
    await rebuildProducerTable(
      rebuilt.machine,
      { firstIndex: () => cut + 1, readEntries: async () => [] },
      { index: cut, data: decodePartitionSnapshot(bytes) },
    );
    const expected = log.machine.producers.toSnapshot();
    expect(expected.evicted).toBeDefined();
    expect([expected.evictionsTotal, expected.forgottenTotal]).toEqual([7, 2]);
    for (const other of [replica, rebuilt]) {
      expect(other.machine.producers.toSnapshot()).toEqual(expected);
      for (const id of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'new'])
        for (const sequence of [0, 1, 2, 3])
          for (const epoch of [0, 1])
            expect(other.machine.checkProduce(p(sequence, epoch, id), 1, 1000)).toEqual(
              log.machine.checkProduce(p(sequence, epoch, id), 1, 1000),
            );
    }
    // Both go on alike from there.
    fill(log, ['i', 'b']);
    for (const entry of log.entries.slice(cut)) replica.machine.apply(entry);
    expect(replica.machine.producers.toSnapshot()).toEqual(log.machine.producers.toSnapshot());
  });
});

describe('a full table, by property', () => {
  interface Sent {
    id: string;
    epoch: number;
    sequence: number;
    count: number;
    baseOffset: number;
  }
  const command = fc.record({
    producer: fc.integer({ min: 0, max: 9 }),
    action: fc.constantFrom('next', 'next', 'retry', 'apply'),
    pick: fc.nat(),
    count: fc.integer({ min: 1, max: 3 }),
  });
  const kinds = new Map<string, number>();
  const tally = (check: ProduceCheck) => {
    const kind = check.kind === 'refused' ? check.code : check.kind;
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  };

  it('never appends a batch twice, lets every producer go on, and builds the same table on every replica', () => {
    fc.assert(
      fc.property(fc.array(command, { minLength: 1, maxLength: 120, size: 'max' }), (commands) => {
        // Digests enough for every eviction: nothing is forgotten, so no duplicate is allowed.
        const log = smallLog(3, 1_000);
        const clients = new Map<string, { epoch: number; nextSequence: number }>();
        const sent: Sent[] = [];
        for (const [i, c] of commands.entries()) {
          if (c.action === 'apply') {
            log.applyAll();
            continue;
          }
          const id = `p${c.producer}`;
          const client = clients.get(id) ?? { epoch: 0, nextSequence: 0 };
          clients.set(id, client);
          if (c.action === 'retry' && sent.length > 0) {
            const old = sent[c.pick % sent.length]!;
            const check = produce(log, p(old.sequence, old.epoch, old.id), old.count, 1000 + i);
            tally(check);
            expect(check.kind).not.toBe('append');
            if (check.kind === 'duplicate' || check.kind === 'pending') {
              expect(check.baseOffset).toBe(old.baseOffset);
            }
            const owner = clients.get(old.id)!;
            if (check.kind === 'refused' && check.code === 'UNKNOWN_PRODUCER' && old.epoch === owner.epoch) {
              owner.epoch++; // what the code asks for: a new epoch, from sequence 0
              owner.nextSequence = 0;
            }
            continue;
          }
          const baseOffset = log.machine.logEndOffset();
          const check = produce(log, p(client.nextSequence, client.epoch, id), c.count, 1000 + i);
          tally(check);
          expect(check).toEqual({ kind: 'append' });
          sent.push({ id, epoch: client.epoch, sequence: client.nextSequence, count: c.count, baseOffset });
          client.nextSequence += c.count;
        }
        log.applyAll();
        // Each (id, epoch, sequence) is in the log once.
        const seen = new Set<string>();
        for (const s of sent) {
          for (let q = s.sequence; q < s.sequence + s.count; q++) {
            const key = `${s.id}/${s.epoch}/${q}`;
            expect(seen.has(key)).toBe(false);
            seen.add(key);
          }
        }
        expect(log.machine.highWatermark).toBe(seen.size);
        const replica = smallLog(3, 1_000);
        for (const entry of log.entries) replica.machine.apply(entry);
        expect(replica.machine.producers.toSnapshot()).toEqual(log.machine.producers.toSnapshot());
      }),
      { numRuns: 200 },
    );
    // The runs went through every path: evicted retries, bumped epochs, pending and plain duplicates.
    for (const kind of ['append', 'duplicate', 'pending', 'UNKNOWN_PRODUCER', 'PRODUCER_FENCED'])
      expect(kinds.get(kind) ?? 0, `${kind} in ${JSON.stringify([...kinds])}`).toBeGreaterThan(0);
  });
});
