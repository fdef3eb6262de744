// The broker runtime on in-process clusters: topics become groups on their replicas, produce
// commits dense offsets on the leader, every replica serves the committed records, and
// leadership moves when a leader dies.

import { afterEach, describe, expect, it } from 'vitest';
import { fetchLocal } from '../../src/broker/fetch.js';
import { produceLocal } from '../../src/broker/produce.js';
import { eventually, InProcessCluster, leaderOf } from './in-process-cluster.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
let cluster: InProcessCluster | null = null;

afterEach(async () => {
  await cluster?.stopAll();
  cluster = null;
});

async function createTopic(c: InProcessCluster, name: string, partitions: number): Promise<void> {
  expect(await eventually(() => c.metadataLeader() !== undefined, 5000)).toBe(true);
  const leader = c.metadataLeader()!;
  const result = await leader.proposeMetadata(
    {
      type: 'createTopic',
      name,
      partitions,
      replicationFactor: 3,
      config: { persistence: 'async', retentionMs: -1, retentionBytes: -1 },
    },
    5000,
  );
  expect(result.ok).toBe(true);
}

async function produce(c: InProcessCluster, groupId: number, values: string[]): Promise<number> {
  expect(await eventually(() => leaderOf(c, groupId) !== undefined, 5000)).toBe(true);
  const { node, local } = leaderOf(c, groupId)!;
  const records = values.map((v) => ({ key: null, value: bytes(v), headers: null, timestampMs: null }));
  const result = await produceLocal(node, local, records, null, 5000);
  return result.baseOffset;
}

describe('broker node (in process)', () => {
  it('creates partition groups on their replicas, each with a leader', async () => {
    cluster = new InProcessCluster(3);
    await cluster.startAll();
    await createTopic(cluster, 'orders', 3);
    const groupIds = cluster
      .metadataLeader()!
      .metadata.topic('orders')
      .partitions.map((p) => p.groupId);
    expect(await eventually(() => groupIds.every((g) => leaderOf(cluster!, g) !== undefined), 5000)).toBe(
      true,
    );
    for (const node of cluster.nodes.values()) {
      expect(await eventually(() => groupIds.every((g) => node.partitionStatus(g)?.leader), 5000)).toBe(true);
    }
  });

  it('commits dense offsets and serves them from every replica', async () => {
    cluster = new InProcessCluster(3);
    await cluster.startAll();
    await createTopic(cluster, 't', 1);
    const groupId = cluster.metadataLeader()!.metadata.topic('t').partitions[0]!.groupId;
    expect(await produce(cluster, groupId, ['a', 'b'])).toBe(0);
    expect(await produce(cluster, groupId, ['c'])).toBe(2);
    for (const node of cluster.nodes.values()) {
      const local = node.localPartition(groupId)!;
      expect(await eventually(() => local.machine.highWatermark === 3, 5000)).toBe(true);
      const result = await fetchLocal(
        local,
        { offset: 0, limit: 100, maxBytes: 1 << 20, waitMs: 0, consistency: 'local', minOffset: undefined },
        () => node.driver.markDirty(local.group),
      );
      expect(result.records.map((r) => [r.offset, text(r.value)])).toEqual([
        [0, 'a'],
        [1, 'b'],
        [2, 'c'],
      ]);
      expect(result.nextOffset).toBe(3);
    }
  });

  it('elects a new leader when the leader dies, and offsets continue densely', async () => {
    cluster = new InProcessCluster(3);
    await cluster.startAll();
    await createTopic(cluster, 't', 1);
    const groupId = cluster.metadataLeader()!.metadata.topic('t').partitions[0]!.groupId;
    await produce(cluster, groupId, ['a']);
    const old = leaderOf(cluster, groupId)!;
    await cluster.kill(old.node.nodeId);
    const base = await produce(cluster, groupId, ['b']);
    expect(base).toBe(1);
    expect(leaderOf(cluster, groupId)!.node.nodeId).not.toBe(old.node.nodeId);
  });

  it('a restarted node comes back with its topics and catches up', async () => {
    cluster = new InProcessCluster(3);
    await cluster.startAll();
    await createTopic(cluster, 't', 1);
    const groupId = cluster.metadataLeader()!.metadata.topic('t').partitions[0]!.groupId;
    await produce(cluster, groupId, ['a']);
    const victim = [...cluster.nodes.keys()].find((id) => leaderOf(cluster!, groupId)!.node.nodeId !== id)!;
    await cluster.kill(victim);
    await produce(cluster, groupId, ['b', 'c']);
    const node = await cluster.start(victim);
    expect(await eventually(() => node.localPartition(groupId)?.machine.highWatermark === 3, 5000)).toBe(
      true,
    );
  });

  it('the linearizable read on a follower waits for the leader and sees the latest write', async () => {
    cluster = new InProcessCluster(3);
    await cluster.startAll();
    await createTopic(cluster, 't', 1);
    const groupId = cluster.metadataLeader()!.metadata.topic('t').partitions[0]!.groupId;
    await produce(cluster, groupId, ['a', 'b']);
    const leaderId = leaderOf(cluster, groupId)!.node.nodeId;
    const follower = [...cluster.nodes.values()].find((n) => n.nodeId !== leaderId)!;
    const local = follower.localPartition(groupId)!;
    const result = await fetchLocal(
      local,
      {
        offset: 0,
        limit: 100,
        maxBytes: 1 << 20,
        waitMs: 0,
        consistency: 'linearizable',
        minOffset: undefined,
      },
      () => follower.driver.markDirty(local.group),
    );
    expect(result.highWatermark).toBe(2);
    expect(result.records).toHaveLength(2);
  });

  it('a linearizable read asked while the leader is gone is answered by the next leader', async () => {
    const c = new InProcessCluster(3);
    cluster = c;
    await c.startAll();
    expect(await eventually(() => c.metadataLeader() !== undefined, 5000)).toBe(true);
    const oldLeader = c.metadataLeader()!.nodeId;
    await c.kill(oldLeader);
    const follower = [...c.nodes.values()][0]!;
    const started = Date.now();
    // Asked at once: no leader is known yet, or the known one is dead. The read waits for the
    // next leader instead of for its own timeout.
    await follower.syncMetadata(5000);
    const tookMs = Date.now() - started;
    expect(c.metadataLeader()?.nodeId).not.toBe(oldLeader);
    expect(tookMs).toBeLessThan(3000);
  });
});
