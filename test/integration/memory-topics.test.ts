// Memory topics on three real node processes (harness: memory-topics.ts), at a size that fits the
// test run; `npm run chaos:memory` runs the same at full size (100 MB). Retention by size and by
// time leaves every replica holding a few MiB at most, with its log start moved and 416 below it;
// a topic without retention fed until the node-wide bound is refused with 507 MEMORY_FULL while
// the nodes stay up, serve fetches and a disk topic, and stay within their memory budget.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTopic,
  feed,
  formatReports,
  leaderOf,
  replicaReports,
  rssOf,
  waitForRetention,
} from './memory-topics.js';
import { ProcessCluster } from './process-cluster.js';

const MIB = 1024 * 1024;
const FEED = { recordBytes: 1000, recordsPerRequest: 100, clients: 4 };
const FEED_BYTES = 16 * 1e6;
const NODE_IDS = [1, 2, 3];
/**
 * Resident memory a node may take beyond its idle footprint and its memory-topic bound: produce
 * requests in flight and their copies, heap growth, and freed memory the allocator keeps
 * (docs/operations.md, "Memory topics").
 */
const RSS_OVERHEAD_BYTES = 128 * MIB;

describe('memory topics: retention on a 3-node cluster', () => {
  let cluster: ProcessCluster;

  beforeAll(async () => {
    cluster = await ProcessCluster.create(3, 'async');
    cluster.startAll();
    await cluster.waitReady();
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  it('by size: 16 MB into retentionBytes 1 MiB leaves at most 3 MiB per replica, log start moved, 416 below it', async () => {
    await createTopic(cluster, 'memory-size', {
      persistence: 'memory',
      retentionBytes: MIB,
      retentionMs: -1,
    });
    const fed = await feed(cluster, { topic: 'memory-size', bytes: FEED_BYTES, ...FEED });
    expect(fed.acknowledgedBytes).toBeGreaterThanOrEqual(FEED_BYTES);
    const reports = await waitForRetention(cluster, 'memory-size', fed.acknowledgedRecords, 3 * MIB, 30_000);
    const table = formatReports('by size', reports);
    for (const r of reports) {
      expect(r.highWatermark, table).toBe(fed.acknowledgedRecords);
      expect(r.logStartOffset, table).toBeGreaterThan(0);
      // At least retentionBytes of records stay (1 MiB, about 1,000 of them).
      expect(r.highWatermark - r.logStartOffset, table).toBeGreaterThanOrEqual(1000);
      expect(r.memoryBytes, table).toBeLessThanOrEqual(3 * MIB);
      expect(r.belowStart, table).toBe('416 OFFSET_OUT_OF_RANGE');
    }
  }, 90_000);

  it('by time: once retentionMs has passed, each replica holds only its open chunk', async () => {
    await createTopic(cluster, 'memory-time', {
      persistence: 'memory',
      retentionMs: 1500,
      retentionBytes: -1,
    });
    const fed = await feed(cluster, { topic: 'memory-time', bytes: FEED_BYTES, ...FEED });
    const reports = await waitForRetention(
      cluster,
      'memory-time',
      fed.acknowledgedRecords,
      1.25 * MIB,
      30_000,
    );
    const table = formatReports('by time', reports);
    for (const r of reports) {
      expect(r.logStartOffset, table).toBeGreaterThan(0);
      expect(r.memoryBytes, table).toBeLessThanOrEqual(1.25 * MIB);
      expect(r.belowStart, table).toBe('416 OFFSET_OUT_OF_RANGE');
    }
    // Records keep their offsets after the cut: the next one follows the last produced.
    const more = await cluster.produceRetrying(1, 'memory-time', [{ value: 'later' }], Date.now() + 10_000);
    expect(more.status, JSON.stringify(more.body)).toBe(200);
    expect(more.body.offsets[0].offset).toBe(fed.acknowledgedRecords);
  }, 90_000);
});

describe('memory topics: the node-wide bound on a 3-node cluster', () => {
  const BOUND_BYTES = 24 * MIB;
  let cluster: ProcessCluster;

  beforeAll(async () => {
    cluster = await ProcessCluster.create(3, 'async');
    for (const id of NODE_IDS) cluster.extraArgs.set(id, ['--memory-topics-max-bytes', String(BOUND_BYTES)]);
    cluster.startAll();
    await cluster.waitReady();
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  it('refuses produce with 507 MEMORY_FULL at the bound; the nodes serve fetches and disk topics within budget', async () => {
    const idle = new Map(NODE_IDS.map((id) => [id, rssOf(cluster, id)]));
    await createTopic(cluster, 'memory-full', { persistence: 'memory', retentionMs: -1 });
    await createTopic(cluster, 'disk', { persistence: 'async' });
    const fed = await feed(cluster, {
      topic: 'memory-full',
      bytes: 4 * BOUND_BYTES,
      untilFull: true,
      ...FEED,
    });
    const refusal = fed.refusal;
    expect(refusal, 'no 507 before 4 x the bound').not.toBeNull();
    expect(refusal!.status).toBe(507);
    expect(refusal!.body.error.code).toBe('MEMORY_FULL');
    expect(refusal!.headers['retry-after']).toBeDefined();
    expect(fed.acknowledgedBytes).toBeGreaterThan(BOUND_BYTES * 0.8);

    // Still refused, nothing appended: the high watermark does not move.
    const leader = await leaderOf(cluster, 'memory-full');
    const value = 'v'.repeat(FEED.recordBytes);
    const again = await cluster.request(leader, 'POST', '/v1/topics/memory-full/records', {
      records: Array.from({ length: FEED.recordsPerRequest }, () => ({ value })),
    });
    expect(again.status, JSON.stringify(again.body)).toBe(507);
    // Up, serving fetches of the memory topic and writes to a disk topic.
    for (const id of NODE_IDS) {
      expect(cluster.isRunning(id)).toBe(true);
      expect((await cluster.request(id, 'GET', '/healthz')).status).toBe(200);
      const read = await cluster.request(
        id,
        'GET',
        '/v1/topics/memory-full/partitions/0/records?offset=0&limit=10',
      );
      expect(read.status, JSON.stringify(read.body)).toBe(200);
      expect(read.body.records.length).toBe(10);
      const disk = await cluster.produceRetrying(id, 'disk', [{ value: `from ${id}` }], Date.now() + 10_000);
      expect(disk.status, JSON.stringify(disk.body)).toBe(200);
    }
    const reports = await replicaReports(cluster, 'memory-full');
    const table = formatReports('at the bound', reports);
    for (const r of reports) {
      expect(r.highWatermark, table).toBe(fed.acknowledgedRecords);
      expect(r.nodeMemoryTopicsBytes, table).toBeLessThanOrEqual(BOUND_BYTES);
      const peak = Math.max(fed.peakRssBytes.get(r.node)!, r.rssBytes);
      expect(peak, table).toBeLessThanOrEqual(idle.get(r.node)! + BOUND_BYTES + RSS_OVERHEAD_BYTES);
    }
  }, 90_000);
});
