// Memory topics on in-process clusters over the real storage engine: retention by size and by time
// cuts whole in-memory chunks on every replica, moves the log start (a fetch below it is
// OFFSET_OUT_OF_RANGE) and frees the memory; a replica behind the cut catches up by snapshot. The
// node-wide bound refuses produce to memory topics with MEMORY_FULL, nothing appended, while disk
// topics and fetches go on, and followers over their own bound keep replicating.

import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { isBrokerError } from '../../src/broker/errors.js';
import { fetchLocal } from '../../src/broker/fetch.js';
import type { BrokerNode } from '../../src/broker/node.js';
import type { BrokerNodeOptions } from '../../src/broker/node-options.js';
import type { LocalPartition } from '../../src/broker/partitions.js';
import { produceLocal } from '../../src/broker/produce.js';
import { RetentionRunner } from '../../src/broker/retention.js';
import { diskClusters } from './disk-cluster.js';
import {
  createOnePartitionTopic,
  eventually,
  type InProcessCluster,
  leaderOf,
} from './in-process-cluster.js';

const CHUNK_BYTES = 16 * 1024;
const RECORD_BYTES = 1000;
const bytes = (s: string) => new TextEncoder().encode(s);

const clusters = diskClusters('memory-topics');

/** Three nodes on real storage engines (memory topics live in their chunks), fast retention. */
async function startCluster(memoryTopicsBytesMax: (id: number) => number | undefined = () => undefined) {
  const nodeOptions = (id: number) => {
    const options: Pick<BrokerNodeOptions, 'timing' | 'memoryTopicsBytesMax'> = {
      timing: { memoryRetentionCheckMs: 20 },
    };
    const max = memoryTopicsBytesMax(id);
    if (max !== undefined) options.memoryTopicsBytesMax = max;
    return options;
  };
  return clusters.start(nodeOptions, { memoryChunkBytesMax: CHUNK_BYTES });
}

function recordsOf(tag: string, count: number) {
  return Array.from({ length: count }, (_, i) => ({
    key: null,
    value: bytes(`${tag}-${i}-`.padEnd(RECORD_BYTES, 'x')),
    headers: null,
    timestampMs: null,
  }));
}

/** Produces `batches` requests of `perBatch` records through the leader; returns the last offset + 1. */
async function produceMany(c: InProcessCluster, groupId: number, batches: number, perBatch: number) {
  let end = 0;
  for (let b = 0; b < batches; b++) {
    const { node, local } = leaderOf(c, groupId)!;
    const result = await produceLocal(node, local, recordsOf(`b${b}`, perBatch), null, 5000);
    end = result.baseOffset + result.recordCount;
  }
  return end;
}

function replicas(c: InProcessCluster, groupId: number): Array<{ node: BrokerNode; local: LocalPartition }> {
  return [...c.nodes.values()].map((node) => ({ node, local: node.localPartition(groupId)! }));
}

const fetchParams = (offset: number) => ({
  offset,
  limit: 10_000,
  maxBytes: 64 * 1024 * 1024,
  waitMs: 0,
  consistency: 'local' as const,
  minOffset: undefined,
});

/** On a replica: below the log start is OFFSET_OUT_OF_RANGE; from it, the records up to `end`. */
async function expectCut(local: LocalPartition, end: number): Promise<void> {
  const start = local.machine.logStartOffset;
  expect(start).toBeGreaterThan(0);
  const error = await fetchLocal(local, fetchParams(start - 1), () => {}).catch((e: unknown) => e);
  expect(isBrokerError(error, 'OFFSET_OUT_OF_RANGE'), String(error)).toBe(true);
  const read = await fetchLocal(local, fetchParams(start), () => {});
  expect(read.records[0]!.offset).toBe(start);
  expect(read.records[read.records.length - 1]!.offset).toBe(end - 1);
  expect(read.records.length).toBe(end - start);
}

describe('memory topics: retention', () => {
  it('by size: every replica cuts whole chunks, moves its log start and frees the memory', async () => {
    const c = await startCluster();
    const retentionBytes = 64 * 1024;
    const groupId = await createOnePartitionTopic(c, 'm-size', { persistence: 'memory', retentionBytes });
    const end = await produceMany(c, groupId, 400, 5); // about 2 MB, entries of about 5 KB
    const all = replicas(c, groupId);
    expect(
      await eventually(
        () =>
          all.every(
            ({ local }) =>
              local.machine.highWatermark === end &&
              local.machine.logStartOffset > 0 &&
              (local.group.store.memoryBytes?.() ?? 0) <= retentionBytes + 3 * CHUNK_BYTES,
          ),
        10_000,
      ),
      JSON.stringify(
        all.map(({ local }) => [local.machine.logStartOffset, local.group.store.memoryBytes?.()]),
      ),
    ).toBe(true);
    for (const { node, local } of all) {
      // What remains is at least retentionBytes, in whole chunks of at most CHUNK_BYTES.
      expect(local.group.store.memoryBytes!()).toBeGreaterThanOrEqual(retentionBytes);
      expect(node.memoryTopics.heldBytes()).toBe(local.group.store.memoryBytes!());
      await expectCut(local, end);
    }
  }, 30_000);

  it('a cut that fails puts the log start back: nothing still stored is reported gone', async () => {
    const c = await startCluster();
    // No retention in the topic's config: only the direct pass below cuts.
    const groupId = await createOnePartitionTopic(c, 'm-fail', { persistence: 'memory' });
    const end = await produceMany(c, groupId, 100, 5);
    const { local } = replicas(c, groupId)[0]!;
    expect(await eventually(() => local.machine.highWatermark === end, 5000)).toBe(true);
    const store = local.group.store;
    store.truncatePrefix = async () => {
      throw new Error('injected: the cut failed');
    };
    const runner = new RetentionRunner(pino({ level: 'silent' }));
    const config = { persistence: 'memory' as const, retentionMs: -1, retentionBytes: 64 * 1024 };
    await expect(runner.enforce(local, config, Date.now())).rejects.toThrow(/injected/);
    expect(local.machine.logStartOffset).toBe(0);
    const read = await fetchLocal(local, fetchParams(0), () => {});
    expect(read.records[0]!.offset).toBe(0);
  }, 30_000);

  it('by time: chunks whose newest record is older than retentionMs go', async () => {
    const c = await startCluster();
    const groupId = await createOnePartitionTopic(c, 'm-time', { persistence: 'memory', retentionMs: 300 });
    const end = await produceMany(c, groupId, 120, 5); // about 600 KB
    const all = replicas(c, groupId);
    // Once the records are old, only the open chunk stays.
    expect(
      await eventually(
        () =>
          all.every(
            ({ local }) =>
              local.machine.logStartOffset > 0 && local.group.store.segmentSummaries!().length === 1,
          ),
        10_000,
      ),
    ).toBe(true);
    for (const { local } of all) {
      expect(local.group.store.memoryBytes!()).toBeLessThanOrEqual(CHUNK_BYTES + 64 * 4);
      await expectCut(local, end);
    }
    // Later records take the next offsets.
    expect(await produceMany(c, groupId, 1, 1)).toBe(end + 1);
  }, 30_000);

  it('a replica cut off while the others cut catches up by snapshot, at their log start', async () => {
    const c = await startCluster();
    const groupId = await createOnePartitionTopic(c, 'm-behind', {
      persistence: 'memory',
      retentionBytes: 32 * 1024,
    });
    const leaderId = leaderOf(c, groupId)!.node.nodeId;
    const behind = [1, 2, 3].find((id) => id !== leaderId)!;
    for (const id of [1, 2, 3]) {
      if (id === behind) continue;
      c.cut.add(`${id}-${behind}`);
      c.cut.add(`${behind}-${id}`);
    }
    const end = await produceMany(c, groupId, 160, 5);
    const ahead = replicas(c, groupId).filter(({ node }) => node.nodeId !== behind);
    expect(await eventually(() => ahead.every(({ local }) => local.machine.logStartOffset > 0), 10_000)).toBe(
      true,
    );
    c.cut.clear();
    const lagging = c.nodes.get(behind)!.localPartition(groupId)!;
    expect(
      await eventually(
        () => lagging.machine.highWatermark === end && lagging.machine.logStartOffset > 0,
        10_000,
      ),
    ).toBe(true);
    await expectCut(lagging, end);
  }, 30_000);
});

describe('memory topics: the node-wide bound', () => {
  it('refuses produce to memory topics with MEMORY_FULL, nothing appended; disk topics and fetches go on', async () => {
    const bound = 512 * 1024;
    const c = await startCluster(() => bound);
    const groupId = await createOnePartitionTopic(c, 'm-full', { persistence: 'memory' });
    const diskGroupId = await createOnePartitionTopic(c, 'd', { persistence: 'async' });
    let refusal: unknown = null;
    let end = 0;
    for (let b = 0; b < 100 && refusal === null; b++) {
      const { node, local } = leaderOf(c, groupId)!;
      try {
        const result = await produceLocal(node, local, recordsOf(`f${b}`, 5), null, 5000);
        end = result.baseOffset + result.recordCount;
      } catch (error) {
        refusal = error;
      }
    }
    expect(isBrokerError(refusal, 'MEMORY_FULL'), String(refusal)).toBe(true);
    expect((refusal as Error).message).toMatch(/nothing was appended/);
    const { node, local } = leaderOf(c, groupId)!;
    expect(node.memoryTopics.refused).toBe(1);
    // Within the bound (the check counts the batch before it is appended).
    expect(node.memoryTopics.heldBytes()).toBeLessThanOrEqual(bound);
    expect(node.memoryTopics.heldBytes()).toBeGreaterThan(bound - 2 * CHUNK_BYTES);
    // Nothing was appended: the next refused request leaves the log end where it was.
    const logEnd = local.machine.logEndOffset();
    await expect(produceLocal(node, local, recordsOf('again', 5), null, 5000)).rejects.toThrow(
      /MEMORY|bound/,
    );
    expect(local.machine.logEndOffset()).toBe(logEnd);
    expect(local.machine.highWatermark).toBe(end);
    // Every replica still serves what was committed; the disk topic takes writes.
    for (const replica of replicas(c, groupId)) {
      expect(await eventually(() => replica.local.machine.highWatermark === end, 5000)).toBe(true);
      const read = await fetchLocal(replica.local, fetchParams(0), () => {});
      expect(read.records.length).toBe(end);
    }
    const disk = leaderOf(c, diskGroupId)!;
    const written = await produceLocal(disk.node, disk.local, recordsOf('disk', 10), null, 5000);
    expect(written.baseOffset).toBe(0);
  }, 30_000);

  it('counts the batches accepted in one turn, before they reach the log: concurrent produce stays within', async () => {
    const bound = 512 * 1024;
    const c = await startCluster(() => bound);
    const groupId = await createOnePartitionTopic(c, 'm-burst', { persistence: 'memory' });
    const { node, local } = leaderOf(c, groupId)!;
    // About 1 MB at once, all checked before the first reaches the log.
    const outcomes = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        produceLocal(node, local, recordsOf(`burst${i}`, 5), null, 5000).then(
          () => 'ok',
          (error: unknown) => (isBrokerError(error, 'MEMORY_FULL') ? 'full' : String(error)),
        ),
      ),
    );
    const accepted = outcomes.filter((o) => o === 'ok').length;
    expect(accepted + outcomes.filter((o) => o === 'full').length).toBe(200);
    expect(accepted).toBeGreaterThan(50);
    expect(node.memoryTopics.heldBytes()).toBeLessThanOrEqual(bound);
    expect(node.memoryTopics.heldBytes()).toBeGreaterThan(bound - 2 * CHUNK_BYTES);
  }, 30_000);

  it('answers a retry of a committed idempotent batch with its offsets even when full', async () => {
    const bound = 256 * 1024;
    const c = await startCluster(() => bound);
    const groupId = await createOnePartitionTopic(c, 'm-dup', { persistence: 'memory' });
    const { node, local } = leaderOf(c, groupId)!;
    const producer = { id: 'p1', epoch: 0 };
    let last: { sequence: number; baseOffset: number } | null = null;
    let refusal: unknown = null;
    for (let sequence = 0; sequence < 1000 && refusal === null; sequence += 5) {
      try {
        const result = await produceLocal(
          node,
          local,
          recordsOf(`q${sequence}`, 5),
          { ...producer, sequence },
          5000,
        );
        last = { sequence, baseOffset: result.baseOffset };
      } catch (error) {
        refusal = error;
      }
    }
    expect(isBrokerError(refusal, 'MEMORY_FULL'), String(refusal)).toBe(true);
    // The last committed batch again, as a producer retrying a lost answer would send it.
    const retry = await produceLocal(
      node,
      local,
      recordsOf(`q${last!.sequence}`, 5),
      { ...producer, sequence: last!.sequence },
      5000,
    );
    expect(retry).toEqual({ baseOffset: last!.baseOffset, recordCount: 5, duplicate: true });
    expect(node.memoryTopics.refused).toBe(1);
  }, 30_000);

  it('followers over their own bound keep replicating: only leaders refuse', async () => {
    // Find the leader first, then give both followers a bound far below what they will hold.
    const c = await startCluster((id) => (id === 1 ? undefined : 64 * 1024));
    const groupId = await createOnePartitionTopic(c, 'm-follow', { persistence: 'memory' });
    if (leaderOf(c, groupId)!.node.nodeId !== 1) {
      const { node, local } = leaderOf(c, groupId)!;
      node.transferLeadership(local, 1);
      expect(await eventually(() => leaderOf(c, groupId)?.node.nodeId === 1, 5000)).toBe(true);
    }
    const end = await produceMany(c, groupId, 120, 5); // about 600 KB through leader 1
    for (const node of c.nodes.values()) {
      // A replica may still be opening its copy of the new topic: look it up on every poll.
      expect(await eventually(() => node.localPartition(groupId)?.machine.highWatermark === end, 5000)).toBe(
        true,
      );
      if (node.nodeId !== 1)
        expect(node.memoryTopics.heldBytes()).toBeGreaterThan(node.memoryTopics.bytesMax);
    }
  }, 30_000);
});
