// Producer-table checkpoints: which checkpoint a restart may use (never one that is not in its
// log), and, on in-process clusters over the real storage engine, that a clean stop leaves a
// checkpoint so the restart replays no entry, that a periodic one bounds the replay, and that the
// table restored from it still deduplicates a retried batch.

import { describe, expect, it } from 'vitest';
import { DiskNodeStore } from '../../src/broker/disk-store.js';
import type { PartitionSnapshot } from '../../src/broker/partition-machine.js';
import {
  decodeProducerCheckpoint,
  encodeProducerCheckpoint,
  type ProducerCheckpoint,
  withProducerCheckpoint,
} from '../../src/broker/producer-checkpoint.js';
import { diskClusters } from './disk-cluster.js';
import {
  createOnePartitionTopic,
  eventually,
  type InProcessCluster,
  produceAnywhere,
} from './in-process-cluster.js';

const table = (clockMs: number) => ({ clockMs, producers: [['p', 0, clockMs, [[0, 4, 10]]]] as never });

describe('which checkpoint a restart may use', () => {
  // A log holding entries 10..100, every one of term 3.
  const store = (...checkpoints: ProducerCheckpoint[]) => ({
    firstIndex: () => 10,
    term: (index: number) => {
      if (index < 9 || index > 100) throw new Error(`term(${index}) outside the log`);
      return 3;
    },
    producerCheckpoints: () => checkpoints,
  });
  const snapshot: PartitionSnapshot = { nextOffset: 40, producers: table(1), producersAtIndex: 20 };

  it('takes one newer than the snapshot table, at or below the applied index, with its term', () => {
    const used = withProducerCheckpoint(store({ index: 60, term: 3, table: table(2) }), 9, snapshot, 80);
    expect(used).toEqual({ nextOffset: 40, producers: table(2), producersAtIndex: 60 });
    // At exactly the applied index too.
    expect(
      withProducerCheckpoint(store({ index: 80, term: 3, table: table(2) }), 9, snapshot, 80),
    ).toMatchObject({
      producersAtIndex: 80,
    });
  });

  it('ignores one the snapshot table already covers, one past the applied index, one of another term', () => {
    for (const checkpoint of [
      { index: 20, term: 3, table: table(2) }, // the snapshot's table is as new
      { index: 15, term: 3, table: table(2) }, // older than the snapshot's table
      { index: 81, term: 3, table: table(2) }, // the restart applies only up to 80
      { index: 60, term: 2, table: table(2) }, // another entry at that index
    ]) {
      expect(withProducerCheckpoint(store(checkpoint), 9, snapshot, 80)).toBe(snapshot);
    }
    expect(withProducerCheckpoint(store(), 9, snapshot, 80)).toBe(snapshot);
    // Without a stored table the snapshot index is the table's.
    const bare: PartitionSnapshot = { nextOffset: 0 };
    expect(withProducerCheckpoint(store({ index: 60, term: 3, table: table(2) }), 9, bare, 80)).toMatchObject(
      {
        producersAtIndex: 60,
      },
    );
  });

  it('falls back to the older of two when the newest is past what the restart applies', () => {
    const newest = { index: 90, term: 3, table: table(3) };
    const older = { index: 50, term: 3, table: table(2) };
    expect(withProducerCheckpoint(store(newest, older), 9, snapshot, 80)).toMatchObject({
      producersAtIndex: 50,
    });
    expect(withProducerCheckpoint(store(newest, older), 9, snapshot, 95)).toMatchObject({
      producersAtIndex: 90,
    });
  });

  it('ignores one below the log start (cut by retention): its term cannot be checked', () => {
    const checkpoint = { index: 9, term: 3, table: table(2) };
    expect(withProducerCheckpoint(store(checkpoint), 0, { nextOffset: 0 }, 80)).toEqual({ nextOffset: 0 });
  });

  it('round-trips, and decodes what is not a checkpoint as none', () => {
    const checkpoint = { index: 7, term: 2, table: table(5) };
    expect(decodeProducerCheckpoint(encodeProducerCheckpoint(checkpoint))).toEqual(checkpoint);
    const bytes = (s: string) => new TextEncoder().encode(s);
    for (const bad of [
      '',
      '{',
      '{"index":0,"term":1,"table":{"producers":[]}}',
      '{"index":3,"term":1}',
      'null',
    ]) {
      expect(decodeProducerCheckpoint(bytes(bad))).toBeNull();
    }
  });
});

describe('producer-table checkpoints on the real storage engine', () => {
  const clusters = diskClusters('producer-checkpoint');

  async function start(checkpointBytes?: number): Promise<{ c: InProcessCluster; groupId: number }> {
    const c = await clusters.start(() =>
      checkpointBytes ? { producerCheckpointBytes: checkpointBytes } : {},
    );
    const groupId = await createOnePartitionTopic(c, 't', { persistence: 'async' });
    return { c, groupId };
  }

  it('a clean stop leaves a checkpoint: the restart replays no entry and still deduplicates', async () => {
    const { c, groupId } = await start();
    for (let i = 0; i < 40; i++)
      await produceAnywhere(c, groupId, [`v${i}`], { id: `p${i % 4}`, epoch: 0, sequence: i >> 2 });
    const appliedAtStop = new Map<number, number>();
    for (const node of c.nodes.values()) {
      const local = node.localPartition(groupId)!;
      expect(await eventually(() => local.machine.highWatermark === 40, 5000)).toBe(true);
      appliedAtStop.set(node.nodeId, local.machine.appliedIndex);
    }
    await c.stopAll();
    await c.startAll();
    expect(
      await eventually(() => [...c.nodes.values()].every((node) => node.localPartition(groupId)), 5000),
    ).toBe(true);
    for (const node of c.nodes.values()) {
      const local = node.localPartition(groupId)!;
      expect(local.replayedAtOpen, `node ${node.nodeId}`).toBe(0);
      // Taken at the stop (the restart has applied a new leader's empty entry since).
      expect(local.group.store.producerCheckpoints!()[0]!.index).toBe(appliedAtStop.get(node.nodeId));
    }
    // The last batch of p3 (sequence 9) again: a duplicate, answered with its first offsets.
    const again = await produceAnywhere(c, groupId, ['v39'], { id: 'p3', epoch: 0, sequence: 9 });
    expect(again).toEqual({ baseOffset: 39, recordCount: 1, duplicate: true });
    const next = await produceAnywhere(c, groupId, ['v40'], { id: 'p0', epoch: 0, sequence: 10 });
    expect(next).toEqual({ baseOffset: 40, recordCount: 1, duplicate: false });
  }, 30_000);

  it('keeps the last two checkpoints, a save replacing the older', async () => {
    const dir = clusters.dir();
    const nodeStore = await DiskNodeStore.open({ dataDir: dir, ioThreads: 1 });
    try {
      const store = await nodeStore.openGroup(7, 'async');
      for (const index of [5, 9, 12])
        await store.saveProducerCheckpoint!({ index, term: 1, table: table(index) });
      expect(store.producerCheckpoints!().map((c) => c.index)).toEqual([12, 9]);
      await nodeStore.dropGroup(7);
      const reopened = await nodeStore.openGroup(7, 'async');
      expect(reopened.producerCheckpoints!()).toEqual([]);
    } finally {
      await nodeStore.close();
    }
  });

  it('periodic checkpoints follow the applied log', async () => {
    const { c, groupId } = await start(1);
    for (let i = 0; i < 5; i++)
      await produceAnywhere(c, groupId, [`v${i}`], { id: 'p', epoch: 0, sequence: i });
    // A checkpoint is due after every byte applied: the one-second pass takes it on every replica.
    for (const node of c.nodes.values()) {
      const local = node.localPartition(groupId)!;
      const caughtUp = () =>
        (local.group.store.producerCheckpoints!()[0]?.index ?? 0) === local.machine.appliedIndex;
      expect(await eventually(caughtUp, 5000), `node ${node.nodeId}`).toBe(true);
      expect(local.group.store.producerCheckpoints!()[0]!.table.producers.map((p) => p[0])).toEqual(['p']);
    }
  }, 30_000);
});
