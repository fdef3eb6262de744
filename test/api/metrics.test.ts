// /metrics over an in-process 3-node cluster: Prometheus text from a registry per node (no
// collisions between nodes in one process), request counts and latencies for produce and fetch,
// commit latency, Raft term and leadership, replica lag and partitions led.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InProcessApi } from './in-process-api.js';

let api: InProcessApi;

beforeAll(async () => {
  api = new InProcessApi(3);
  await api.start();
  expect((await json(1, 'POST', '/v1/topics', { name: 'orders', partitions: 3 })).status).toBe(201);
}, 30_000);

afterAll(async () => {
  await api.stop();
});

async function json(nodeId: number, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown) {
  const { status, body: parsed } = await api.json(nodeId, method, url, body);
  return { status, body: parsed };
}

async function scrape(nodeId: number): Promise<string> {
  const response = await api.app(nodeId).inject({ method: 'GET', url: '/metrics' });
  expect(response.statusCode).toBe(200);
  expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return response.body;
}

/** The value of one sample, by metric name and exact label set as printed. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const inside = line.slice(name.length + 1, line.lastIndexOf('}'));
    const found = Object.fromEntries(
      inside.split(',').map((pair) => {
        const eq = pair.indexOf('=');
        return [pair.slice(0, eq), pair.slice(eq + 2, -1)];
      }),
    );
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) {
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return undefined;
}

describe('/metrics', () => {
  it('counts and times produce and fetch requests per node, by topic and status', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await json(2, 'POST', '/v1/topics/orders/records', {
        records: [{ value: `v${i}`, partition: 0 }],
      });
      expect(res.status).toBe(200);
    }
    expect((await json(2, 'POST', '/v1/topics/nope/records', { records: [{ value: 'x' }] })).status).toBe(
      404,
    );
    expect((await json(2, 'GET', '/v1/topics/orders/partitions/0/records?offset=0')).status).toBe(200);
    const text = await scrape(2);
    const labels = { node: '2', operation: 'produce', topic: 'orders', status: '200' };
    expect(sample(text, 'raftlog_requests_total', labels)).toBe(3);
    // A topic that does not exist never becomes a label value.
    expect(sample(text, 'raftlog_requests_total', { operation: 'produce', topic: '', status: '404' })).toBe(
      1,
    );
    expect(text).not.toContain('topic="nope"');
    expect(
      sample(text, 'raftlog_requests_total', { operation: 'fetch', topic: 'orders', status: '200' }),
    ).toBe(1);
    expect(sample(text, 'raftlog_request_duration_seconds_count', { operation: 'produce' })).toBe(4);
    expect(sample(text, 'raftlog_request_duration_seconds_bucket', { operation: 'fetch', le: '+Inf' })).toBe(
      1,
    );
    // Each node has its own registry: a shared one would count node 2's forwards twice above.
    expect(await scrape(1)).not.toContain('node="2"');
  });

  it('reports commit latency on the leader, Raft terms, leaders, lag, and partitions led', async () => {
    const placement = api.cluster.nodes.get(1)!.metadata.partition('orders', 0);
    const leaderId = api.cluster.nodes.get(1)!.partitionStatus(placement.groupId)!.leader;
    const text = await scrape(leaderId);
    const commits = sample(text, 'raftlog_commit_duration_seconds_count', {
      group: 'partition',
      persistence: 'async',
    });
    expect(commits).toBeGreaterThanOrEqual(3);
    // Metadata commits (the topic's creation) are timed on the metadata leader.
    const metadataLeader = api.cluster.metadataLeader()!.nodeId;
    expect(
      sample(await scrape(metadataLeader), 'raftlog_commit_duration_seconds_count', { group: 'metadata' }),
    ).toBeGreaterThan(0);
    expect(sample(text, 'raftlog_partition_term', { topic: 'orders', partition: '0' })).toBeGreaterThan(0);
    expect(sample(text, 'raftlog_partition_leader', { topic: 'orders', partition: '0' })).toBe(leaderId);
    expect(sample(text, 'raftlog_partition_high_watermark', { topic: 'orders', partition: '0' })).toBe(3);
    for (const follower of [1, 2, 3].filter((id) => id !== leaderId)) {
      const lag = sample(text, 'raftlog_replica_lag_entries', {
        topic: 'orders',
        partition: '0',
        replica: String(follower),
      });
      expect(
        lag,
        text
          .split('\n')
          .filter((l) => l.includes('lag'))
          .join('\n'),
      ).toBeGreaterThanOrEqual(0);
    }
    expect(text).toMatch(/^raftlog_raft_elections_total\{node="\d"\} \d+$/m);
    expect(text).toMatch(/^raftlog_raft_leader_changes_total\{group="partition",node="\d"\} \d+$/m);
    let led = 0;
    for (const id of [1, 2, 3]) {
      const value = (await scrape(id)).match(/^raftlog_partitions_led\{node="\d"\} (\d+)$/m);
      expect(value).not.toBeNull();
      led += Number(value![1]);
    }
    expect(led).toBe(3);
    // The metadata group's term is reported, and the disk gauge exists (0 on in-memory stores).
    expect(text).toMatch(/^raftlog_metadata_term\{node="\d"\} [1-9]\d*$/m);
    expect(sample(text, 'raftlog_partition_disk_bytes', { topic: 'orders', partition: '0' })).toBe(0);
  });
});
