// Backpressure on produce: a leader whose uncommitted budget is full holds a produce request until
// applies make room, answers 429 THROTTLED (not NO_LEADER) when the budget stays full for the
// request's timeoutMs, and 503 BUSY at once when the node's waiting bytes would pass their bound.

import { afterEach, describe, expect, it } from 'vitest';
import { isBrokerError } from '../../src/broker/errors.js';
import { produceLocal } from '../../src/broker/produce.js';
import { MessageType } from '../../src/raft/index.js';
import { eventually, InProcessCluster, leaderOf } from './in-process-cluster.js';

let cluster: InProcessCluster | null = null;

afterEach(async () => {
  await cluster?.stopAll();
  cluster = null;
});

const RECORD_BYTES = 6000;

async function startWithTopic(limits: { uncommittedBytesMax: number; waitingBytesMax: number }) {
  const c = new InProcessCluster(3, { produceLimits: limits });
  cluster = c;
  await c.startAll();
  expect(await eventually(() => c.metadataLeader() !== undefined, 5000)).toBe(true);
  const created = await c.metadataLeader()!.proposeMetadata(
    {
      type: 'createTopic',
      name: 't',
      partitions: 1,
      replicationFactor: 3,
      config: { persistence: 'async', retentionMs: -1, retentionBytes: -1 },
    },
    5000,
  );
  expect(created.ok).toBe(true);
  const groupId = c.metadataLeader()!.metadata.topic('t').partitions[0]!.groupId;
  expect(await eventually(() => leaderOf(c, groupId) !== undefined, 5000)).toBe(true);
  const { node, local } = leaderOf(c, groupId)!;
  return { c, node, local };
}

function records(tag: string) {
  const value = new TextEncoder().encode(tag.padEnd(RECORD_BYTES, '.'));
  return [{ key: null, value, headers: null, timestampMs: null }];
}

/** Followers keep answering heartbeats (so nobody campaigns) but their append acks are lost. */
function holdCommits(c: InProcessCluster, leaderId: number): void {
  c.dropIf = (_from, to, message) => to === leaderId && message.type === MessageType.AppResp;
}

describe('produce backpressure', () => {
  it('holds a request while the uncommitted budget is full, and commits it once there is room', async () => {
    const { c, node, local } = await startWithTopic({
      uncommittedBytesMax: 10_000,
      waitingBytesMax: 1 << 20,
    });
    holdCommits(c, node.nodeId);
    const first = produceLocal(node, local, records('a'), null, 5000);
    const second = produceLocal(node, local, records('b'), null, 5000);
    expect(await eventually(() => node.backpressure.waitingBytes > 0, 2000)).toBe(true);
    c.dropIf = null;
    const [a, b] = await Promise.all([first, second]);
    expect([a.baseOffset, b.baseOffset].sort()).toEqual([0, 1]);
    expect(node.backpressure.waited).toBeGreaterThanOrEqual(1);
    expect(node.backpressure.waitingBytes).toBe(0);
    expect(local.group.isLeader).toBe(true);
  });

  it('answers THROTTLED, not NO_LEADER, when the budget stays full for timeoutMs', async () => {
    const { c, node, local } = await startWithTopic({
      uncommittedBytesMax: 10_000,
      waitingBytesMax: 1 << 20,
    });
    holdCommits(c, node.nodeId);
    const first = produceLocal(node, local, records('a'), null, 5000);
    const startedMs = Date.now();
    const error = await produceLocal(node, local, records('b'), null, 300).catch((e: unknown) => e);
    expect(isBrokerError(error, 'THROTTLED'), String(error)).toBe(true);
    expect(Date.now() - startedMs).toBeGreaterThanOrEqual(290);
    expect(local.group.isLeader).toBe(true);
    c.dropIf = null;
    expect((await first).baseOffset).toBe(0);
    // Nothing of the refused request was appended: the next record takes offset 1.
    expect((await produceLocal(node, local, records('c'), null, 5000)).baseOffset).toBe(1);
  });

  it('serves waiters first come, first served, and a newcomer queues behind them', async () => {
    const { c, node, local } = await startWithTopic({
      uncommittedBytesMax: 10_000,
      waitingBytesMax: 1 << 20,
    });
    holdCommits(c, node.nodeId);
    const first = produceLocal(node, local, records('a'), null, 5000);
    const waiters = ['b', 'c', 'd'].map((tag) => produceLocal(node, local, records(tag), null, 5000));
    expect(await eventually(() => node.backpressure.waitingBytes >= 3 * RECORD_BYTES, 2000)).toBe(true);
    c.dropIf = null;
    const late = produceLocal(node, local, records('e'), null, 5000);
    const offsets = (await Promise.all([first, ...waiters, late])).map((r) => r.baseOffset);
    expect(offsets).toEqual([0, 1, 2, 3, 4]);
  });

  it('answers BUSY at once when the waiting bytes would pass the node bound', async () => {
    const { c, node, local } = await startWithTopic({ uncommittedBytesMax: 10_000, waitingBytesMax: 8000 });
    holdCommits(c, node.nodeId);
    const first = produceLocal(node, local, records('a'), null, 5000);
    const waiting = produceLocal(node, local, records('b'), null, 5000);
    expect(await eventually(() => node.backpressure.waitingBytes > 0, 2000)).toBe(true);
    const startedMs = Date.now();
    const error = await produceLocal(node, local, records('c'), null, 5000).catch((e: unknown) => e);
    expect(isBrokerError(error, 'BUSY'), String(error)).toBe(true);
    expect(Date.now() - startedMs).toBeLessThan(100);
    c.dropIf = null;
    await Promise.all([first, waiting]);
  });
});
