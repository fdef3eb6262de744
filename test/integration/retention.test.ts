// Retention on three real node processes with tiny segments: by size and by time, every replica
// cuts its own closed segments and moves its log start; a fetch below it is 416 with the log
// start and high watermark, a fetch at it returns the records produced there.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, type HttpResult, ProcessCluster } from './process-cluster.js';

const SEGMENT_BYTES = 4096;
const RETENTION_CHECK_MS = 200;
const savedEnv = {
  segment: process.env.RAFTLOG_TEST_SEGMENT_BYTES,
  check: process.env.RAFTLOG_TEST_RETENTION_CHECK_MS,
};
let cluster: ProcessCluster;

beforeAll(async () => {
  // Test-only knobs read by startServer (src/api/server.ts); the node processes inherit them.
  process.env.RAFTLOG_TEST_SEGMENT_BYTES = String(SEGMENT_BYTES);
  process.env.RAFTLOG_TEST_RETENTION_CHECK_MS = String(RETENTION_CHECK_MS);
  cluster = await ProcessCluster.create(3, 'async');
  cluster.startAll();
  await cluster.waitReady();
});

afterAll(async () => {
  await cluster?.destroy();
  for (const [name, value] of [
    ['RAFTLOG_TEST_SEGMENT_BYTES', savedEnv.segment],
    ['RAFTLOG_TEST_RETENTION_CHECK_MS', savedEnv.check],
  ] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

async function produceBatches(topic: string, batches: number, perBatch: number): Promise<string[]> {
  const values: string[] = [];
  for (let b = 0; b < batches; b++) {
    const records = Array.from({ length: perBatch }, (_, i) => ({
      value: `${topic}-${b}-${i}-${'x'.repeat(80)}`,
    }));
    let res: HttpResult | null = null;
    const deadline = Date.now() + 10_000;
    do {
      res = await cluster.request(1 + (b % 3), 'POST', `/v1/topics/${topic}/records`, {
        records,
        timeoutMs: 2000,
      });
    } while (res.status !== 200 && [0, 503, 504].includes(res.status) && Date.now() < deadline);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.offsets[0].offset).toBe(values.length);
    values.push(...records.map((r) => r.value));
  }
  return values;
}

async function earliest(nodeId: number, topic: string): Promise<HttpResult> {
  return cluster.request(nodeId, 'GET', `/v1/topics/${topic}/partitions/0/records?offset=earliest&limit=5`);
}

/** Polls until every replica reports a log start above 0; returns each node's log start. */
async function waitForRetention(topic: string, produced: number): Promise<Map<number, number>> {
  const starts = new Map<number, number>();
  let lastSeen = '';
  let stableSinceMs = Date.now();
  await eventually(
    async () => {
      for (const nodeId of [1, 2, 3]) {
        const res = await earliest(nodeId, topic);
        if (res.status !== 200 || res.body.highWatermark < produced) return false;
        starts.set(nodeId, res.body.logStartOffset);
      }
      if (![...starts.values()].every((start) => start > 0)) return false;
      // Retention may still be cutting (a pass can run while the others' segments close): wait
      // until every replica's log start has held still for three check intervals, so the
      // checks below do not race the next pass.
      const seen = JSON.stringify([...starts]);
      if (seen !== lastSeen) {
        lastSeen = seen;
        stableSinceMs = Date.now();
      }
      return Date.now() - stableSinceMs >= 3 * RETENTION_CHECK_MS;
    },
    30_000,
    `log start still 0 on some replica of ${topic}: ${JSON.stringify([...starts])} ${cluster.tails([1, 2, 3])}`,
  );
  return starts;
}

/** On every replica: below the log start is 416 (with both offsets), at it the produced record. */
async function expectCutOnEveryReplica(topic: string, values: string[]): Promise<void> {
  for (const nodeId of [1, 2, 3]) {
    const first = await earliest(nodeId, topic);
    const start = first.body.logStartOffset as number;
    expect(start).toBeGreaterThan(0);
    expect(start).toBeLessThan(values.length);
    const below = await cluster.request(
      nodeId,
      'GET',
      `/v1/topics/${topic}/partitions/0/records?offset=${start - 1}`,
    );
    expect(below.status, JSON.stringify(below.body)).toBe(416);
    expect(below.body.error.code).toBe('OFFSET_OUT_OF_RANGE');
    expect(below.body.error.logStartOffset).toBe(start);
    expect(below.body.error.highWatermark).toBeGreaterThanOrEqual(values.length);
    const at = await cluster.request(
      nodeId,
      'GET',
      `/v1/topics/${topic}/partitions/0/records?offset=${start}&limit=10000`,
    );
    expect(at.status, JSON.stringify(at.body)).toBe(200);
    const records = at.body.records as Array<{ offset: number; value: string }>;
    expect(records[0]!.offset).toBe(start);
    expect(records.map((r) => r.value)).toEqual(values.slice(start));
    // The topic description shows the same per-replica log start from this node's copy.
    const described = await cluster.request(nodeId, 'GET', `/v1/topics/${topic}`);
    expect(described.body.partitions[0].logStartOffset).toBeGreaterThan(0);
  }
}

describe('retention on a 3-node cluster', () => {
  it('by size: every replica cuts whole closed segments and moves its log start', async () => {
    const created = await cluster.request(1, 'POST', '/v1/topics', {
      name: 'sized',
      replicationFactor: 3,
      config: { retentionBytes: 3 * SEGMENT_BYTES, retentionMs: -1 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    // About 40 KiB of records: ten segments' worth.
    const values = await produceBatches('sized', 80, 4);
    await waitForRetention('sized', values.length);
    await expectCutOnEveryReplica('sized', values);
  }, 90_000);

  it('by time: segments whose newest record is older than retentionMs go', async () => {
    const created = await cluster.request(1, 'POST', '/v1/topics', {
      name: 'aged',
      replicationFactor: 3,
      config: { retentionMs: 1500, retentionBytes: -1 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const values = await produceBatches('aged', 40, 4);
    await waitForRetention('aged', values.length);
    await expectCutOnEveryReplica('aged', values);
    // Later records keep coming at the next offsets after the cut.
    const more = await cluster.request(1, 'POST', '/v1/topics/aged/records', {
      records: [{ value: 'later' }],
    });
    expect(more.status, JSON.stringify(more.body)).toBe(200);
    expect(more.body.offsets[0].offset).toBe(values.length);
  }, 90_000);

  it('a replica that was down while the others cut catches up by snapshot, at their log start', async () => {
    const created = await cluster.request(1, 'POST', '/v1/topics', {
      name: 'behind',
      replicationFactor: 3,
      config: { retentionBytes: 2 * SEGMENT_BYTES, retentionMs: -1 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const leader = (await cluster.request(1, 'GET', '/v1/topics/behind')).body.partitions[0].leader as number;
    const down = [1, 2, 3].find((id) => id !== leader)!;
    const up = [1, 2, 3].filter((id) => id !== down);
    await cluster.kill(down, 'SIGKILL');
    const values: string[] = [];
    for (let b = 0; b < 60; b++) {
      const records = Array.from({ length: 4 }, (_, i) => ({ value: `behind-${b}-${i}-${'z'.repeat(80)}` }));
      let res: HttpResult;
      const deadline = Date.now() + 10_000;
      do {
        res = await cluster.request(up[b % 2]!, 'POST', '/v1/topics/behind/records', {
          records,
          timeoutMs: 2000,
        });
      } while (res.status !== 200 && [0, 503, 504].includes(res.status) && Date.now() < deadline);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      values.push(...records.map((r) => r.value));
    }
    await eventually(
      async () => {
        const results = await Promise.all(up.map((id) => earliest(id, 'behind')));
        return results.every((r) => r.status === 200 && r.body.logStartOffset > 0);
      },
      30_000,
      'the running replicas did not cut',
    );
    cluster.start(down);
    await cluster.waitReady(30_000);
    await waitForRetention('behind', values.length);
    await expectCutOnEveryReplica('behind', values);
  }, 90_000);
});
