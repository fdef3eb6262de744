// Idempotent produce on in-process clusters: the contract's codes over HTTP, a retry while the
// original is in flight, and the producer table surviving failover, restart and a snapshot; a
// produce that cannot commit answers TIMEOUT and its retry commits exactly once.

import { afterEach, describe, expect, it } from 'vitest';
import { fetchLocal } from '../../src/broker/fetch.js';
import type { BrokerNode } from '../../src/broker/node.js';
import { encodePartitionSnapshot } from '../../src/broker/partition-machine.js';
import { InProcessApi } from '../api/in-process-api.js';
import { eventually, leaderOf, produceAnywhere } from './in-process-cluster.js';

const text = (b: Uint8Array) => new TextDecoder().decode(b);
let api: InProcessApi | null = null;

afterEach(async () => {
  await api?.stop();
  api = null;
});

async function startWithTopic(
  nodeOptions?: ConstructorParameters<typeof InProcessApi>[1],
): Promise<{ api: InProcessApi; groupId: number }> {
  api = new InProcessApi(3, nodeOptions);
  await api.start();
  const created = await api.app(1).inject({ method: 'POST', url: '/v1/topics', payload: { name: 't' } });
  expect(created.statusCode, created.body).toBe(201);
  const groupId = api.cluster.metadataLeader()!.metadata.topic('t').partitions[0]!.groupId;
  // The tests read every replica: wait until each node has built its own.
  const cluster = api.cluster;
  const everyReplica = () => [...cluster.nodes.values()].every((node) => node.localPartition(groupId));
  expect(await eventually(everyReplica, 5000)).toBe(true);
  return { api, groupId };
}

/** Every committed value of the partition on a node's replica, in offset order. */
async function values(node: BrokerNode, groupId: number, minOffset: number): Promise<string[]> {
  const local = node.localPartition(groupId)!;
  await eventually(() => local.machine.highWatermark >= minOffset, 5000);
  const result = await fetchLocal(
    local,
    { offset: 0, limit: 1000, maxBytes: 1 << 20, waitMs: 0, consistency: 'local', minOffset: undefined },
    () => node.driver.markDirty(local.group),
    new AbortController().signal,
  );
  expect(result.records.map((r) => r.offset)).toEqual(result.records.map((_, i) => i));
  return result.records.map((r) => text(r.value));
}

async function post(a: InProcessApi, nodeId: number, body: unknown) {
  const res = await a
    .app(nodeId)
    .inject({ method: 'POST', url: '/v1/topics/t/records', payload: body as object });
  return { status: res.statusCode, body: JSON.parse(res.body) };
}

describe('idempotent produce (in process)', () => {
  it('answers a retry with the original offsets and duplicate: true, from any node', async () => {
    const { api } = await startWithTopic();
    const producer = { id: 'p1', epoch: 0, sequence: 0 };
    const first = await post(api, 1, { records: [{ value: 'a' }, { value: 'b' }], producer });
    expect(first).toEqual({
      status: 200,
      body: {
        offsets: [
          { partition: 0, offset: 0 },
          { partition: 0, offset: 1 },
        ],
        duplicate: false,
      },
    });
    const plain = await post(api, 2, { records: [{ value: 'x' }] });
    expect(plain.body.offsets).toEqual([{ partition: 0, offset: 2 }]);
    for (const nodeId of [1, 2, 3]) {
      const retry = await post(api, nodeId, { records: [{ value: 'a' }, { value: 'b' }], producer });
      expect(retry).toEqual({ status: 200, body: { offsets: first.body.offsets, duplicate: true } });
    }
    const next = await post(api, 3, { records: [{ value: 'c' }], producer: { ...producer, sequence: 2 } });
    expect(next.body).toEqual({ offsets: [{ partition: 0, offset: 3 }], duplicate: false });
  });

  it('refuses a gap with OUT_OF_ORDER_SEQUENCE and an old epoch with PRODUCER_FENCED', async () => {
    const { api } = await startWithTopic();
    expect(
      (await post(api, 1, { records: [{ value: 'a' }], producer: { id: 'p', epoch: 1, sequence: 0 } }))
        .status,
    ).toBe(200);
    const gap = await post(api, 2, {
      records: [{ value: 'b' }],
      producer: { id: 'p', epoch: 1, sequence: 2 },
    });
    expect(gap.status).toBe(409);
    expect(gap.body.error.code).toBe('OUT_OF_ORDER_SEQUENCE');
    const unknown = await post(api, 2, {
      records: [{ value: 'b' }],
      producer: { id: 'new', epoch: 0, sequence: 5 },
    });
    expect(unknown.body.error.code).toBe('OUT_OF_ORDER_SEQUENCE');
    const fenced = await post(api, 3, {
      records: [{ value: 'b' }],
      producer: { id: 'p', epoch: 0, sequence: 1 },
    });
    expect(fenced.status).toBe(409);
    expect(fenced.body.error.code).toBe('PRODUCER_FENCED');
    const multi = await post(api, 1, {
      records: [{ value: 'b', partition: 0 }],
      producer: { id: 'p', epoch: 1, sequence: 1 },
    });
    expect(multi.body.offsets).toEqual([{ partition: 0, offset: 1 }]);
  });

  it('answers a retry from an evicted producer with 409 UNKNOWN_PRODUCER, appending nothing', async () => {
    const { api, groupId } = await startWithTopic({
      producerLimits: { producersMax: 2, evictedProducersMax: 100 },
    });
    const early = { id: 'early', epoch: 0, sequence: 0 };
    const first = await post(api, 1, { records: [{ value: 'early' }], producer: early });
    expect(first.body.offsets).toEqual([{ partition: 0, offset: 0 }]);
    for (const id of ['p1', 'p2']) {
      const res = await post(api, 2, { records: [{ value: id }], producer: { id, epoch: 0, sequence: 0 } });
      expect(res.status).toBe(200);
    }
    // The table holds p1 and p2, the two most recently written: early was evicted.
    for (const nodeId of [1, 2, 3]) {
      const retry = await post(api, nodeId, { records: [{ value: 'early' }], producer: early });
      expect(retry.status).toBe(409);
      expect(retry.body.error.code).toBe('UNKNOWN_PRODUCER');
      expect(retry.body.error.message).toMatch(/start a new epoch \(or a new producer id\) at sequence 0/);
    }
    // What the code asks for: a new epoch from sequence 0, which fences the old one.
    const bumped = await post(api, 3, {
      records: [{ value: 'early again' }],
      producer: { ...early, epoch: 1 },
    });
    expect(bumped.body).toEqual({ offsets: [{ partition: 0, offset: 3 }], duplicate: false });
    const zombie = await post(api, 1, { records: [{ value: 'early' }], producer: early });
    expect(zombie.body.error.code).toBe('PRODUCER_FENCED');
    for (const node of api.cluster.nodes.values()) {
      expect(await values(node, groupId, 4)).toEqual(['early', 'p1', 'p2', 'early again']);
      const metrics = await api.app(node.nodeId).inject({ method: 'GET', url: '/metrics' });
      const labels = `topic="t",partition="0",node="${node.nodeId}"`;
      expect(metrics.body).toContain(`raftlog_producer_evictions_total{${labels}} 2\n`);
      expect(metrics.body).toContain(`raftlog_producers{${labels}} 2\n`);
      expect(metrics.body).toContain(`raftlog_producers_evicted_remembered{${labels}} 2\n`);
    }
  });

  it('appends once when a retry arrives while the original is still in flight', async () => {
    const { api, groupId } = await startWithTopic();
    const body = { records: [{ value: 'once' }], producer: { id: 'p', epoch: 0, sequence: 0 } };
    const answers = await Promise.all([
      post(api, 1, body),
      post(api, 2, body),
      post(api, 3, body),
      post(api, 1, body),
    ]);
    for (const answer of answers) expect(answer.body.offsets).toEqual([{ partition: 0, offset: 0 }]);
    expect(answers.filter((a) => a.body.duplicate === false)).toHaveLength(1);
    for (const node of api.cluster.nodes.values()) expect(await values(node, groupId, 1)).toEqual(['once']);
  });

  it('keeps the producer table across a leader failover and a restart of every node', async () => {
    const { api, groupId } = await startWithTopic();
    const c = api.cluster;
    const first = await produceAnywhere(c, groupId, ['a', 'b'], { id: 'p', epoch: 0, sequence: 0 });
    const old = leaderOf(c, groupId)!.node.nodeId;
    // Every replica applied it before the leader goes (a follower that lags would learn it anyway).
    for (const node of c.nodes.values())
      await eventually(() => node.localPartition(groupId)!.machine.highWatermark === 2, 5000);
    await c.kill(old);
    const retry = await produceAnywhere(c, groupId, ['a', 'b'], { id: 'p', epoch: 0, sequence: 0 });
    expect(leaderOf(c, groupId)!.node.nodeId).not.toBe(old);
    expect(retry).toEqual({ ...first, duplicate: true });
    await c.start(old);
    await c.stopAll();
    await c.startAll();
    const again = await produceAnywhere(c, groupId, ['a', 'b'], { id: 'p', epoch: 0, sequence: 0 });
    expect(again).toEqual({ ...first, duplicate: true });
    const next = await produceAnywhere(c, groupId, ['c'], { id: 'p', epoch: 0, sequence: 2 });
    expect(next).toEqual({ baseOffset: 2, recordCount: 1, duplicate: false });
  });

  it('keeps the producer table in a snapshot that cuts the log', async () => {
    const { api, groupId } = await startWithTopic();
    const c = api.cluster;
    const first = await produceAnywhere(c, groupId, ['a'], { id: 'p', epoch: 0, sequence: 0 });
    await produceAnywhere(c, groupId, ['b'], { id: 'q', epoch: 0, sequence: 0 });
    for (const node of c.nodes.values()) {
      const local = node.localPartition(groupId)!;
      await eventually(() => local.machine.highWatermark === 2, 5000);
      const index = local.machine.appliedIndex;
      const data = encodePartitionSnapshot(local.machine.snapshot());
      await local.group.store.truncatePrefix(index, {
        metadata: {
          index,
          term: local.group.store.term(index),
          confState: local.group.raw.status().confState,
        },
        data,
      });
      expect(local.group.store.firstIndex()).toBe(index + 1);
    }
    await c.stopAll();
    await c.startAll();
    expect(await produceAnywhere(c, groupId, ['a'], { id: 'p', epoch: 0, sequence: 0 })).toEqual({
      ...first,
      duplicate: true,
    });
    // q is still known at sequence 0, so its next sequence appends (a lost table would refuse it).
    const next = await produceAnywhere(c, groupId, ['c'], { id: 'q', epoch: 0, sequence: 1 });
    expect(next).toEqual({ baseOffset: 2, recordCount: 1, duplicate: false });
  });

  it('remembers an evicted producer through a snapshot that cuts the log and a restart of every node', async () => {
    const { api, groupId } = await startWithTopic({
      producerLimits: { producersMax: 1, evictedProducersMax: 10 },
    });
    const c = api.cluster;
    await produceAnywhere(c, groupId, ['early'], { id: 'early', epoch: 0, sequence: 0 });
    await produceAnywhere(c, groupId, ['later'], { id: 'later', epoch: 0, sequence: 0 }); // evicts early
    for (const node of c.nodes.values()) {
      const local = node.localPartition(groupId)!;
      await eventually(() => local.machine.highWatermark === 2, 5000);
      const index = local.machine.appliedIndex;
      await local.group.store.truncatePrefix(index, {
        metadata: {
          index,
          term: local.group.store.term(index),
          confState: local.group.raw.status().confState,
        },
        data: encodePartitionSnapshot(local.machine.snapshot()),
      });
    }
    await c.stopAll();
    await c.startAll();
    await expect(
      produceAnywhere(c, groupId, ['early'], { id: 'early', epoch: 0, sequence: 0 }),
    ).rejects.toMatchObject({ code: 'UNKNOWN_PRODUCER' });
    // Its digest kept its last sequence: the next one goes on without a new epoch.
    const next = await produceAnywhere(c, groupId, ['early 2'], { id: 'early', epoch: 0, sequence: 1 });
    expect(next).toEqual({ baseOffset: 2, recordCount: 1, duplicate: false });
  });

  it('answers TIMEOUT when followers do not answer; the retry with the same sequence commits once', async () => {
    const { api, groupId } = await startWithTopic();
    const c = api.cluster;
    await produceAnywhere(c, groupId, ['before'], { id: 'p', epoch: 0, sequence: 0 });
    const leader = leaderOf(c, groupId)!.node.nodeId;
    const followers = [...c.nodes.keys()].filter((id) => id !== leader);
    // Links cut, peers still up: the leader appends and waits (with the peers down it would
    // refuse at once with NOT_ENOUGH_REPLICAS).
    for (const id of followers) {
      c.cut.add(`${leader}-${id}`);
      c.cut.add(`${id}-${leader}`);
    }
    const body = {
      records: [{ value: 'maybe' }],
      producer: { id: 'p', epoch: 0, sequence: 1 },
      timeoutMs: 50,
    };
    const timedOut = await post(api, leader, body);
    expect(timedOut.status).toBe(504);
    expect(timedOut.body.error.code).toBe('TIMEOUT');
    c.cut.clear();
    const retry = await produceAnywhere(c, groupId, ['maybe'], { id: 'p', epoch: 0, sequence: 1 });
    expect(retry.baseOffset).toBe(1);
    const next = await produceAnywhere(c, groupId, ['after'], { id: 'p', epoch: 0, sequence: 2 });
    expect(next.baseOffset).toBe(2);
    for (const node of c.nodes.values())
      expect(await values(node, groupId, 3)).toEqual(['before', 'maybe', 'after']);
  });

  it('answers NOT_ENOUGH_REPLICAS at once when a majority of replicas is down', async () => {
    const { api, groupId } = await startWithTopic();
    const c = api.cluster;
    await produceAnywhere(c, groupId, ['before'], { id: 'n', epoch: 0, sequence: 0 });
    const leader = leaderOf(c, groupId)!.node.nodeId;
    const followers = [...c.nodes.keys()].filter((id) => id !== leader);
    for (const id of followers) await c.kill(id);
    const res = await api
      .app(leader)
      .inject({ method: 'POST', url: '/v1/topics/t/records', payload: { records: [{ value: 'x' }] } });
    // Right after the kill the leader still leads (check-quorum steps it down an election timeout
    // later) but sees both links down: it refuses at once, appending nothing.
    expect(res.statusCode).toBe(503);
    expect(JSON.parse(res.body).error.code).toBe('NOT_ENOUGH_REPLICAS');
    expect(JSON.parse(res.body).error.message).toMatch(/1 of 3 replicas reachable, 2 needed/);
    expect(res.headers['retry-after']).toBeDefined();
    expect(leaderOf(c, groupId)?.local.machine.logEndOffset()).toBe(1);
  });
});
