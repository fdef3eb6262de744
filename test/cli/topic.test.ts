// `raftlog topic create|list|describe|delete` and `raftlog cluster`: what they send and print.

import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.js';
import { errorReply, FakeNode, topicDescription } from '../client/fake-node.js';
import { TestIo } from './cli-io.js';

const nodes: FakeNode[] = [];
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.close();
});

function fake(): FakeNode {
  const node = new FakeNode();
  nodes.push(node);
  return node;
}

describe('topic create', () => {
  it('sends only the flags given and prints a sentence', async () => {
    const node = fake().on('POST', /^\/v1\/topics$/, () => ({
      status: 201,
      body: topicDescription('demo', 1),
    }));
    const io = new TestIo({ dispatcher: node.agent });
    expect(await runCli(['topic', 'create', 'demo'], io)).toBe(0);
    expect(node.requests[0]!.body).toEqual({ name: 'demo' });
    expect(io.out).toBe("created topic 'demo': 1 partition, replication 3, persistence async\n");
  });

  it('maps --partitions, --replication and --persistence', async () => {
    const node = fake().on('POST', /^\/v1\/topics$/, () => ({
      status: 201,
      body: topicDescription('demo', 3),
    }));
    const io = new TestIo({ dispatcher: node.agent });
    const argv = [
      'topic',
      'create',
      'demo',
      '--partitions',
      '3',
      '--replication',
      '1',
      '--persistence',
      'sync',
    ];
    expect(await runCli(argv, io)).toBe(0);
    expect(node.requests[0]!.body).toEqual({
      name: 'demo',
      partitions: 3,
      replicationFactor: 1,
      config: { persistence: 'sync' },
    });
  });

  it('prints the description as JSON with --json', async () => {
    const node = fake().on('POST', /^\/v1\/topics$/, () => ({
      status: 201,
      body: topicDescription('demo', 2),
    }));
    const io = new TestIo({ dispatcher: node.agent });
    expect(await runCli(['topic', 'create', 'demo', '--json'], io)).toBe(0);
    expect(JSON.parse(io.out)).toEqual(topicDescription('demo', 2));
  });

  it('reports TOPIC_EXISTS and exits 1', async () => {
    const node = fake().on('POST', /^\/v1\/topics$/, () =>
      errorReply(409, 'TOPIC_EXISTS', "topic 'demo' already exists"),
    );
    const io = new TestIo({ dispatcher: node.agent });
    expect(await runCli(['topic', 'create', 'demo'], io)).toBe(1);
    expect(io.err).toBe("raftlog: topic 'demo' already exists (TOPIC_EXISTS)\n");
  });
});

describe('topic list, describe, delete', () => {
  it('lists topics as a sorted table', async () => {
    const node = fake().on('GET', /^\/v1\/topics$/, () => ({
      status: 200,
      body: { topics: [topicDescription('zeta', 1, 5), topicDescription('alpha', 2, 3)] },
    }));
    const io = new TestIo({ dispatcher: node.agent });
    expect(await runCli(['topic', 'list'], io)).toBe(0);
    expect(io.outLines).toEqual([
      'TOPIC  PARTITIONS  REPLICATION  PERSISTENCE  RECORDS',
      'alpha  2           3            async        6',
      'zeta   1           3            async        5',
    ]);
  });

  it('says how to create a topic when there is none; --json prints the body', async () => {
    const node = fake().on('GET', /^\/v1\/topics$/, () => ({ status: 200, body: { topics: [] } }));
    const io = new TestIo({ dispatcher: node.agent });
    expect(await runCli(['topic', 'list'], io)).toBe(0);
    expect(io.out).toContain('raftlog topic create NAME');
    const json = new TestIo({ dispatcher: node.agent });
    expect(await runCli(['topic', 'list', '--json'], json)).toBe(0);
    expect(JSON.parse(json.out)).toEqual({ topics: [] });
  });

  it('describes a topic: config and one row per partition', async () => {
    const description = topicDescription('orders', 2, 1200);
    description.partitions[1]!.leader = null as unknown as number;
    const node = fake().on('GET', /^\/v1\/topics\/orders$/, () => ({ status: 200, body: description }));
    const io = new TestIo({ dispatcher: node.agent });
    expect(await runCli(['topic', 'describe', 'orders'], io)).toBe(0);
    expect(io.outLines).toEqual([
      "topic 'orders': 2 partitions, persistence async, retention 604800000 ms / unlimited",
      'PARTITION  LEADER  TERM  REPLICAS  LOG-START  HIGH-WATERMARK',
      '0          1       1     1,2,3     0          1200',
      '1          none    1     1,2,3     0          1200',
    ]);
  });

  it('deletes a topic', async () => {
    const node = fake().on('DELETE', /^\/v1\/topics\/orders$/, () => ({ status: 204 }));
    const io = new TestIo({ dispatcher: node.agent });
    expect(await runCli(['topic', 'delete', 'orders'], io)).toBe(0);
    expect(io.out).toBe("deleted topic 'orders'\n");
  });
});

describe('cluster', () => {
  const cluster = {
    clusterId: 'c-1',
    metadataLeader: 1,
    nodes: [
      { id: 1, url: 'http://127.0.0.1:9090', alive: true },
      { id: 2, url: 'http://127.0.0.1:9091', alive: true },
      { id: 3, url: 'http://127.0.0.1:9092', alive: false },
    ],
  };

  /** Each node answers fetches with its own high watermark: node 1 at 10, node 2 at 7. */
  function clusterNode(): FakeNode {
    const node = fake().serve('http://127.0.0.1:9091');
    const marks: Record<string, number> = { 'http://127.0.0.1:9090': 10, 'http://127.0.0.1:9091': 7 };
    node.on('GET', /^\/v1\/cluster$/, () => ({ status: 200, body: cluster }));
    node.on('GET', /^\/v1\/topics$/, () => ({
      status: 200,
      body: { topics: [topicDescription('orders', 1, 10)] },
    }));
    node.on('GET', /^\/v1\/topics\/orders\/partitions\/0\/records$/, (request) => ({
      status: 200,
      body: {
        records: [],
        nextOffset: marks[request.origin]!,
        highWatermark: marks[request.origin]!,
        logStartOffset: 0,
      },
    }));
    return node;
  }

  it('prints nodes, the metadata leader, and lag per replica (? when unreachable)', async () => {
    const node = clusterNode();
    const io = new TestIo({ dispatcher: node.agent });
    expect(await runCli(['cluster'], io)).toBe(0);
    expect(io.outLines).toEqual([
      'cluster c-1, metadata leader: node 1',
      'NODE  URL                    ALIVE  ROLE',
      '1     http://127.0.0.1:9090  yes    metadata leader',
      '2     http://127.0.0.1:9091  yes',
      '3     http://127.0.0.1:9092  no',
      'TOPIC   PARTITION  LEADER  REPLICAS  HIGH-WATERMARK  LAG',
      'orders  0          1       1,2,3     10              2:3 3:?',
    ]);
    // Each replica was asked for its own view, without waiting.
    const probes = node.sent('GET', /records$/);
    expect(probes.map((p) => p.origin).sort()).toEqual(['http://127.0.0.1:9090', 'http://127.0.0.1:9091']);
    expect(probes[0]!.query).toEqual({ offset: 'latest', limit: '1', waitMs: '0' });
  });

  it('prints the whole report with --json', async () => {
    const io = new TestIo({ dispatcher: clusterNode().agent });
    expect(await runCli(['cluster', '--json'], io)).toBe(0);
    const report = JSON.parse(io.out);
    expect(report).toMatchObject({ clusterId: 'c-1', metadataLeader: 1, lagMeasured: true });
    expect(report.partitions[0]).toEqual({
      topic: 'orders',
      partition: 0,
      leader: 1,
      replicas: [1, 2, 3],
      highWatermark: 10,
      replicaHighWatermarks: { 1: 10, 2: 7, 3: null },
      lag: { 1: 0, 2: 3, 3: null },
    });
  });
});
