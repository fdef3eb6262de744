// Operations on three real node processes: a `memory` topic keeps every acknowledged record
// through kill -9 and an empty restart of one replica, then of another; SIGTERM on a partition
// leader hands leadership away before the process exits 0 within 10 s; consumer-group offsets
// survive kill -9 of every node.

import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, ProcessCluster } from './process-cluster.js';

interface Acked {
  offset: number;
  value: string;
}

let cluster: ProcessCluster;

beforeAll(async () => {
  cluster = await ProcessCluster.create(3, 'async');
  cluster.startAll();
  await cluster.waitReady();
}, 60_000);

afterAll(async () => {
  await cluster?.destroy();
});

/** Produces, retrying what a client retries (503, 504, network errors), until the deadline. */
async function leaderOf(viaNode: number, topic: string): Promise<number | null> {
  const res = await cluster.request(viaNode, 'GET', `/v1/topics/${topic}`, undefined, 2000);
  return res.status === 200 ? (res.body.partitions[0].leader as number | null) : null;
}

/** Produces `count` records to partition 0, one request each, and returns what was acknowledged. */
async function produceSome(nodeId: number, topic: string, prefix: string, count: number): Promise<Acked[]> {
  const acked: Acked[] = [];
  for (let i = 0; i < count; i++) {
    const value = `${prefix}-${i}`;
    const res = await cluster.produceRetrying(nodeId, topic, [{ value, partition: 0 }], Date.now() + 10_000);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    acked.push({ offset: res.body.offsets[0].offset, value });
  }
  return acked;
}

/** Polls until `nodeId`'s own replica holds every acknowledged record at its offset. */
async function expectReplicaHolds(nodeId: number, topic: string, acked: Acked[], timeoutMs: number) {
  const last = Math.max(...acked.map((a) => a.offset));
  let seen = '';
  await eventually(
    async () => {
      const res = await cluster.request(
        nodeId,
        'GET',
        `/v1/topics/${topic}/partitions/0/records?offset=0&limit=10000&waitMs=1000&minOffset=${last}`,
        undefined,
        5000,
      );
      if (res.status !== 200) {
        seen = JSON.stringify(res.body);
        return false;
      }
      const records = res.body.records as Array<{ offset: number; value: string }>;
      seen = JSON.stringify(records.map((r) => [r.offset, r.value]));
      const byOffset = new Map(records.map((r) => [r.offset, r.value]));
      return acked.every((a) => byOffset.get(a.offset) === a.value);
    },
    timeoutMs,
    `node ${nodeId} lacks acknowledged records of ${topic}: has ${seen}, acked ${JSON.stringify(acked.map((a) => [a.offset, a.value]))}`,
  );
}

/** GET /metrics as text (cluster.request parses JSON). */
async function metricsText(nodeId: number): Promise<string> {
  const response = await request(`${cluster.node(nodeId).url}/metrics`, {
    headersTimeout: 5000,
    bodyTimeout: 5000,
  });
  const text = await response.body.text();
  expect(response.statusCode).toBe(200);
  return text;
}

/** The node's JSON log lines, parsed (pino, one object per line). */
function logLines(nodeId: number): Array<Record<string, unknown>> {
  const lines: Array<Record<string, unknown>> = [];
  for (const line of cluster.node(nodeId).output.join('').split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line));
    } catch {
      // a line cut by the output buffer: skip
    }
  }
  return lines;
}

/** The node's log says a group that restarted without its log caught up (memory mode). */
async function expectCaughtUpAfterLoss(nodeId: number): Promise<void> {
  await eventually(
    async () => logLines(nodeId).some((l) => l.msg === 'caught up after a restart that lost the log'),
    10_000,
    `node ${nodeId} never logged catching up after an empty restart: ${cluster.tails([nodeId])}`,
  );
}

describe('operations on a 3-node cluster of processes', () => {
  it('commits consumer-group offsets from any node', async () => {
    const created = await cluster.request(1, 'POST', '/v1/topics', { name: 'events', partitions: 2 });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    // A group may commit up to a partition's high watermark (19 on 0, 4 on 1), no further.
    const counts = [
      [0, 19],
      [1, 4],
    ] as const;
    for (const [partition, count] of counts) {
      const records = Array.from({ length: count }, (_, i) => ({ value: `e${i}`, partition }));
      const produced = await cluster.request(1, 'POST', '/v1/topics/events/records', { records });
      expect(produced.status, JSON.stringify(produced.body)).toBe(200);
    }
    const put = await cluster.request(3, 'PUT', '/v1/groups/audit/offsets', {
      offsets: [
        { topic: 'events', partition: 0, offset: 18 },
        { topic: 'events', partition: 1, offset: 4 },
      ],
    });
    expect(put.status, JSON.stringify(put.body)).toBe(204);
    for (const id of [1, 2, 3]) {
      const got = await cluster.request(id, 'GET', '/v1/groups/audit/offsets?topic=events');
      expect(got.body.offsets).toEqual([
        { topic: 'events', partition: 0, offset: 18 },
        { topic: 'events', partition: 1, offset: 4 },
      ]);
    }
  }, 30_000);

  it('a node on disk reports fsync latency, bytes on disk and commit latency in /metrics', async () => {
    const created = await cluster.request(3, 'POST', '/v1/topics', { name: 'measured' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const res = await cluster.produceRetrying(
      2,
      'measured',
      [{ value: 'm', partition: 0 }],
      Date.now() + 10_000,
    );
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const leader = (await leaderOf(2, 'measured'))!;
    let text = '';
    // Async mode: the fsync follows within flushIntervalMs, so poll for it.
    await eventually(
      async () => {
        text = await metricsText(leader);
        const fsyncs = text.match(/^raftlog_fsync_duration_seconds_count\{node="\d"\} (\d+)$/m);
        return fsyncs !== null && Number(fsyncs[1]) > 0;
      },
      10_000,
      `no fsync observed on node ${leader}: ${text.slice(0, 2000)}`,
    );
    const disk = text.match(
      /^raftlog_partition_disk_bytes\{topic="measured",partition="0",node="\d"\} (\d+)$/m,
    );
    expect(Number(disk?.[1])).toBeGreaterThan(0);
    // Label order is prom-client's business: match by name and label pairs.
    const positive = (name: string, labels: string[]) =>
      text
        .split('\n')
        .some(
          (l) =>
            l.startsWith(`${name}{`) &&
            labels.every((pair) => l.includes(pair)) &&
            Number(l.split(' ').pop()) > 0,
        );
    expect(
      positive('raftlog_commit_duration_seconds_count', ['group="partition"', 'persistence="async"']),
    ).toBe(true);
    expect(
      positive('raftlog_requests_total', ['operation="produce"', 'topic="measured"', 'status="200"']),
    ).toBe(true);
    // The async append's write was small: it ran on the event loop, and the counter says so.
    const inline = text.match(/^raftlog_storage_inline_writes_total\{node="\d"\} (\d+)$/m);
    expect(Number(inline?.[1])).toBeGreaterThan(0);
    expect(text).toMatch(/^raftlog_storage_inline_write_stalls_total\{node="\d"\} \d+$/m);
    expect(text).toMatch(/^raftlog_storage_threadpool_fsyncs_total\{node="\d"\} \d+$/m);
    expect(text).toMatch(/^raftlog_storage_threadpool_writes_total\{node="\d"\} \d+$/m);
  }, 30_000);

  it('memory topic: kill -9 and an empty restart of one replica, then another, loses no acknowledged record', async () => {
    const created = await cluster.request(2, 'POST', '/v1/topics', {
      name: 'volatile',
      config: { persistence: 'memory' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.config.persistence).toBe('memory');
    const acked = await produceSome(1, 'volatile', 'a', 20);

    // First: a follower. It restarts with an empty log and must catch up before counting.
    const leader = (await leaderOf(1, 'volatile'))!;
    const first = [1, 2, 3].find((id) => id !== leader)!;
    await cluster.kill(first, 'SIGKILL');
    acked.push(...(await produceSome(leader, 'volatile', 'b', 10)));
    cluster.start(first);
    await cluster.waitReady();
    acked.push(...(await produceSome(first, 'volatile', 'c', 10)));
    await expectReplicaHolds(first, 'volatile', acked, 20_000);
    // It did come back empty: its core started as recovering and says when it caught up.
    await expectCaughtUpAfterLoss(first);

    // Then another replica: the leader. The survivors are the restarted node and the third one;
    // had the restarted node voted or counted toward commit while empty, records would be lost.
    const second = (await leaderOf(first, 'volatile'))!;
    expect(second).not.toBe(first);
    await cluster.kill(second, 'SIGKILL');
    const survivor = [1, 2, 3].find((id) => id !== first && id !== second)!;
    acked.push(...(await produceSome(survivor, 'volatile', 'd', 10)));
    cluster.start(second);
    await cluster.waitReady();

    // Dense offsets, and every acknowledged record on every replica at its offset.
    expect(acked.map((a) => a.offset)).toEqual(Array.from({ length: acked.length }, (_, i) => i));
    for (const id of [1, 2, 3]) await expectReplicaHolds(id, 'volatile', acked, 20_000);
    await expectCaughtUpAfterLoss(second);
  }, 120_000);

  it('SIGTERM on a partition leader hands leadership away, then exits 0 within 10 s', async () => {
    const created = await cluster.request(1, 'POST', '/v1/topics', { name: 'handoff' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    await produceSome(1, 'handoff', 'x', 3);
    const leader = (await leaderOf(1, 'handoff'))!;
    const observer = leader === 1 ? 2 : 1;
    const child = cluster.node(leader).process!;
    let exitedAtMs = 0;
    child.once('exit', () => {
      exitedAtMs = Date.now();
    });

    // Watch the leader from another node while the old one shuts down.
    let movedTo: number | null = null;
    let movedSeenAtMs = 0;
    let watching = true;
    const watch = (async () => {
      while (watching && movedTo === null) {
        const now = await leaderOf(observer, 'handoff');
        if (now !== null && now !== leader) {
          movedTo = now;
          movedSeenAtMs = Date.now();
        }
      }
    })();

    const signalledAtMs = Date.now();
    const code = await cluster.kill(leader, 'SIGTERM', 10_000);
    const exitMs = Date.now() - signalledAtMs;
    await eventually(async () => movedTo !== null, 5000, 'no new leader seen');
    watching = false;
    await watch;

    expect(code).toBe(0);
    expect(exitMs).toBeLessThan(10_000);
    // Seen from another node before the process exited ...
    expect(movedSeenAtMs, `moved at ${movedSeenAtMs}, exited at ${exitedAtMs}`).toBeLessThan(exitedAtMs);
    // ... and by the stopping node itself: its core knew the new leader before it said it stopped.
    const lines = logLines(leader);
    const changed = lines.findIndex(
      (l) => l.msg === 'leader changed' && l.leader === movedTo && l.group !== 0,
    );
    const stopped = lines.findIndex((l) => l.msg === 'node stopped');
    expect(changed, cluster.tails([leader])).toBeGreaterThanOrEqual(0);
    expect(stopped).toBeGreaterThan(changed);
    console.log(
      `SIGTERM: node ${leader} handed leadership to ${movedTo} and exited 0 after ${exitMs} ms (seen moved ${exitedAtMs - movedSeenAtMs} ms before exit)`,
    );

    // A produce right after succeeds on the new leader.
    const startedAtMs = Date.now();
    const after = await cluster.produceRetrying(
      observer,
      'handoff',
      [{ value: 'after', partition: 0 }],
      startedAtMs + 5000,
    );
    expect(after.status, JSON.stringify(after.body)).toBe(200);
    expect(after.body.offsets[0].offset).toBe(3);
    cluster.start(leader);
    await cluster.waitReady();
  }, 60_000);

  it('consumer-group offsets survive kill -9 of every node', async () => {
    await Promise.all([1, 2, 3].map((id) => cluster.kill(id, 'SIGKILL')));
    cluster.startAll();
    await cluster.waitReady();
    for (const id of [1, 2, 3]) {
      const got = await cluster.request(id, 'GET', '/v1/groups/audit/offsets');
      expect(got.status, JSON.stringify(got.body)).toBe(200);
      expect(got.body.offsets).toEqual([
        { topic: 'events', partition: 0, offset: 18 },
        { topic: 'events', partition: 1, offset: 4 },
      ]);
    }
    // And a commit after the restart is read back too.
    const put = await cluster.request(2, 'PUT', '/v1/groups/audit/offsets', {
      offsets: [{ topic: 'events', partition: 0, offset: 19 }],
    });
    expect(put.status).toBe(204);
    expect(
      (await cluster.request(1, 'GET', '/v1/groups/audit/offsets?topic=events')).body.offsets[0].offset,
    ).toBe(19);
  }, 60_000);
});
