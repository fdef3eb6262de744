// Reads from followers on three real node processes: read-your-writes with minOffset right after
// each acknowledgement, linearizable reads that see every acknowledged record, and a stream on a
// follower that pushes each record within 50 ms of its produce answer.

import { Client } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessCluster } from './process-cluster.js';

let cluster: ProcessCluster;
let leader = 0;
let follower = 0;

beforeAll(async () => {
  cluster = await ProcessCluster.create(3);
  cluster.startAll();
  await cluster.waitReady();
  const created = await cluster.request(1, 'POST', '/v1/topics', { name: 'reads', replicationFactor: 3 });
  expect(created.status, `${JSON.stringify(created.body)} ${cluster.tails([1, 2, 3])}`).toBe(201);
  leader = created.body.partitions[0].leader;
  follower = [1, 2, 3].find((id) => id !== leader)!;
}, 60_000);

afterAll(async () => {
  await cluster?.destroy();
});

async function produceOne(value: string): Promise<number> {
  const res = await cluster.request(leader, 'POST', '/v1/topics/reads/records', {
    records: [{ value, partition: 0 }],
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.offsets[0].offset as number;
}

describe('reads from a follower process', () => {
  it('minOffset: a fetch of the just-acknowledged offset returns it, every time', async () => {
    for (let i = 0; i < 50; i++) {
      const value = `ryw-${i}`;
      const offset = await produceOne(value);
      const res = await cluster.request(
        follower,
        'GET',
        `/v1/topics/reads/partitions/0/records?offset=${offset}&minOffset=${offset}&waitMs=5000`,
      );
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.headers['x-raftlog-node']).toBe(String(follower));
      expect(res.body.records[0]).toMatchObject({ offset, value });
      expect(res.body.highWatermark).toBeGreaterThan(offset);
    }
  }, 60_000);

  it('consistency=linearizable: a read that starts after an acknowledgement sees it', async () => {
    for (let i = 0; i < 20; i++) {
      const value = `lin-${i}`;
      const offset = await produceOne(value);
      const res = await cluster.request(
        follower,
        'GET',
        `/v1/topics/reads/partitions/0/records?offset=${offset}&consistency=linearizable`,
      );
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.records[0]).toMatchObject({ offset, value });
    }
  }, 60_000);

  // On a follower too: a follower whose ack comes after the commit gets a Commit notice at once
  // (handleAppendResponse in src/raft/raft.ts), not at the next heartbeat.
  it.each([
    ['leader', 50],
    ['follower', 50],
  ])(
    'a stream on the %s pushes each record within %i ms of its produce answer',
    async (role, boundMs) => {
      const nodeId = role === 'leader' ? leader : follower;
      const client = new Client(cluster.node(nodeId).url);
      try {
        const response = await client.request({
          method: 'GET',
          path: '/v1/topics/reads/partitions/0/stream?offset=latest',
          bodyTimeout: 0,
        });
        expect(response.statusCode).toBe(200);
        const arrivals = new Map<string, number>();
        let pending = '';
        response.body.on('data', (chunk: Buffer) => {
          const atMs = performance.now();
          pending += chunk.toString('utf8');
          for (let end = pending.indexOf('\n'); end !== -1; end = pending.indexOf('\n')) {
            arrivals.set((JSON.parse(pending.slice(0, end)) as { value: string }).value, atMs);
            pending = pending.slice(end + 1);
          }
        });
        const latencies: number[] = [];
        for (let i = 0; i < 30; i++) {
          const value = `stream-${role}-${i}`;
          await produceOne(value);
          const ackedMs = performance.now();
          const deadline = ackedMs + 5000;
          while (!arrivals.has(value) && performance.now() < deadline)
            await new Promise((r) => setTimeout(r, 1));
          expect(arrivals.has(value), `${value} never arrived`).toBe(true);
          latencies.push(Math.max(0, arrivals.get(value)! - ackedMs));
        }
        latencies.sort((a, b) => a - b);
        const median = latencies[Math.floor(latencies.length / 2)]!;
        const worst = latencies[latencies.length - 1]!;
        console.log(
          `${role} stream: median ${median.toFixed(1)} ms, worst ${worst.toFixed(1)} ms (n=${latencies.length})`,
        );
        expect(worst).toBeLessThan(boundMs);
        response.body.destroy();
      } finally {
        await client.destroy();
      }
    },
    60_000,
  );
});
