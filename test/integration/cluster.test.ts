// Three real node processes: produce through each node, read the same records from every
// replica, kill -9 a partition leader and produce again within 3 s, restart it and watch it
// catch up, then kill the whole cluster and find every acknowledged record (async and sync).

import { afterAll, describe, expect, it } from 'vitest';
import { eventually, ProcessCluster } from './process-cluster.js';

interface Acked {
  partition: number;
  offset: number;
  value: string;
}

/** Produces, retrying 503s and network errors (what a client does), until the deadline. */
async function readAll(
  cluster: ProcessCluster,
  nodeId: number,
  topic: string,
  partition: number,
  minOffset: number,
) {
  const res = await cluster.request(
    nodeId,
    'GET',
    `/v1/topics/${topic}/partitions/${partition}/records?offset=0&limit=10000&waitMs=5000&minOffset=${minOffset}`,
  );
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.records as Array<{ offset: number; value: string }>;
}

/** Every acknowledged record is on every running node's copy, at its offset. */
async function expectAllAcked(cluster: ProcessCluster, topic: string, acked: Acked[], nodes: number[]) {
  const partitions = [...new Set(acked.map((a) => a.partition))];
  for (const nodeId of nodes) {
    for (const partition of partitions) {
      const mine = acked.filter((a) => a.partition === partition);
      const last = Math.max(...mine.map((a) => a.offset));
      const records = await readAll(cluster, nodeId, topic, partition, last);
      const byOffset = new Map(records.map((r) => [r.offset, r.value]));
      const seen = JSON.stringify(records.map((r) => [r.offset, r.value]));
      const wanted = JSON.stringify(mine.map((a) => [a.offset, a.value]));
      for (const a of mine) {
        expect(
          byOffset.get(a.offset),
          `node ${nodeId} ${partition}:${a.offset} has ${seen}, acked ${wanted}`,
        ).toBe(a.value);
      }
      // Dense offsets: no gap below the last acknowledged one.
      expect(records.slice(0, last + 1).map((r) => r.offset)).toEqual(
        Array.from({ length: last + 1 }, (_, i) => i),
      );
    }
  }
}

const clusters: ProcessCluster[] = [];
afterAll(async () => {
  for (const cluster of clusters) await cluster.destroy();
});

describe.each(['async', 'sync'])('a 3-node cluster, %s mode', (persistence) => {
  it('replicates, fails over within 3 s, catches up, and survives kill -9 of every node', async () => {
    const cluster = await ProcessCluster.create(3, persistence);
    clusters.push(cluster);
    cluster.startAll();
    await cluster.waitReady();

    const created = await cluster.request(2, 'POST', '/v1/topics', { name: 'orders', partitions: 3 });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.config.persistence).toBe(persistence);

    // Produce through each node: keyed records spread over the partitions.
    const acked: Acked[] = [];
    for (const nodeId of [1, 2, 3]) {
      const records = Array.from({ length: 6 }, (_, i) => ({ key: `k${i}`, value: `n${nodeId}-${i}` }));
      const res = await cluster.produceRetrying(nodeId, 'orders', records, Date.now() + 5000);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const offsets: { partition: number; offset: number }[] = res.body.offsets;
      offsets.forEach((o, i) => {
        acked.push({ ...o, value: records[i]!.value });
      });
    }
    expect(new Set(acked.map((a) => a.partition)).size).toBeGreaterThan(1);
    await expectAllAcked(cluster, 'orders', acked, [1, 2, 3]);

    // kill -9 the leader of partition 0; a produce through another node succeeds within 3 s.
    const described = await cluster.request(1, 'GET', '/v1/topics/orders');
    const victim = described.body.partitions[0].leader as number;
    const survivor = victim === 1 ? 2 : 1;
    await cluster.kill(victim, 'SIGKILL');
    const killedAtMs = Date.now();
    const after = await cluster.produceRetrying(
      survivor,
      'orders',
      [{ value: 'after-kill', partition: 0 }],
      killedAtMs + 10_000,
    );
    const failoverMs = Date.now() - killedAtMs;
    expect(after.status, JSON.stringify(after.body)).toBe(200);
    expect(failoverMs).toBeLessThan(3000);
    acked.push({ partition: 0, offset: after.body.offsets[0].offset, value: 'after-kill' });
    console.log(`${persistence}: produce succeeded ${failoverMs} ms after kill -9 of leader node ${victim}`);

    // The killed node restarts and catches up, serving from its own copy.
    cluster.start(victim);
    await cluster.waitReady();
    await expectAllAcked(cluster, 'orders', acked, [victim]);

    // kill -9 every node at once, restart: every acknowledged record is there.
    await Promise.all([1, 2, 3].map((id) => cluster.kill(id, 'SIGKILL')));
    cluster.startAll();
    await cluster.waitReady();
    await expectAllAcked(cluster, 'orders', acked, [1, 2, 3]);
    // And the partitions take new writes at the next offsets.
    const more = await cluster.produceRetrying(
      3,
      'orders',
      [{ value: 'again', partition: 0 }],
      Date.now() + 10_000,
    );
    expect(more.status).toBe(200);
    expect(more.body.offsets[0].offset).toBe(
      Math.max(...acked.filter((a) => a.partition === 0).map((a) => a.offset)) + 1,
    );
  }, 120_000);
});

describe('readiness', () => {
  it('a node becomes ready only once metadata has a leader', async () => {
    const cluster = await ProcessCluster.create(3);
    clusters.push(cluster);
    cluster.start(1);
    // One node of three: no quorum, so no metadata leader and no readiness.
    await eventually(
      async () => (await cluster.request(1, 'GET', '/healthz', undefined, 500)).status === 200,
      10_000,
      'healthz',
    );
    const notReady = await cluster.request(1, 'GET', '/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.body.error.code).toBe('NOT_READY');
    cluster.start(2);
    await cluster.waitReady(20_000, [1, 2]);
  }, 60_000);
});
