// Moving a partition's leadership over the HTTP API of an in-process 3-node cluster: from any
// node (forwarded to the current leader), to each replica in turn, and the coded refusals.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InProcessApi } from './in-process-api.js';

let api: InProcessApi;

beforeAll(async () => {
  api = new InProcessApi(3);
  await api.start();
  expect((await json(1, 'POST', '/v1/topics', { name: 'orders', partitions: 2 })).status).toBe(201);
  expect((await json(1, 'POST', '/v1/topics', { name: 'pair', replicationFactor: 2 })).status).toBe(201);
}, 30_000);

afterAll(async () => {
  await api.stop();
});

async function json(nodeId: number, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown) {
  const { status, body: parsed } = await api.json(nodeId, method, url, body);
  return { status, body: parsed };
}

async function leaderOf(topic: string, partition: number, via = 1): Promise<number> {
  const res = await json(via, 'GET', `/v1/topics/${topic}`);
  if (res.status !== 200) throw new Error(`describe ${topic} on node ${via}: ${JSON.stringify(res.body)}`);
  return res.body.partitions[partition].leader;
}

describe('leadership transfer', () => {
  it('moves leadership to each other replica, asked through every node', async () => {
    for (const asked of [1, 2, 3]) {
      const current = await leaderOf('orders', 0);
      const target = [1, 2, 3].find((id) => id !== current && id !== asked) ?? (current === 1 ? 2 : 1);
      const res = await json(asked, 'POST', '/v1/topics/orders/partitions/0/leader', { node: target });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.partition).toBe(0);
      expect(res.body.leader).toBe(target);
      expect(res.body.replicas).toEqual(expect.arrayContaining([1, 2, 3]));
      expect(res.body.term).toBeGreaterThan(0);
      // The target's own core says it leads.
      const placement = api.cluster.nodes.get(target)!.metadata.partition('orders', 0);
      expect(api.cluster.nodes.get(target)!.localPartition(placement.groupId)!.group.isLeader).toBe(true);
    }
  });

  it('answers at once when the node already leads', async () => {
    const current = await leaderOf('orders', 1);
    const res = await json(2, 'POST', '/v1/topics/orders/partitions/1/leader', { node: current });
    expect(res.status).toBe(200);
    expect(res.body.leader).toBe(current);
  });

  it('keeps producing after a transfer', async () => {
    const current = await leaderOf('orders', 0);
    const target = current === 3 ? 1 : current + 1;
    expect((await json(1, 'POST', '/v1/topics/orders/partitions/0/leader', { node: target })).status).toBe(
      200,
    );
    const res = await json(2, 'POST', '/v1/topics/orders/records', {
      records: [{ value: 'after', partition: 0 }],
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  });

  it('refuses a node that is not a replica, a bad body, and unknown topics or partitions', async () => {
    const pair = await json(1, 'GET', '/v1/topics/pair');
    const outsider = [1, 2, 3].find((id) => !pair.body.partitions[0].replicas.includes(id))!;
    const notReplica = await json(2, 'POST', '/v1/topics/pair/partitions/0/leader', { node: outsider });
    expect(notReplica.status).toBe(400);
    expect(notReplica.body.error.code).toBe('INVALID_REQUEST');
    expect(notReplica.body.error.message).toContain('body/node');
    const cases: Array<[string, unknown, number, string]> = [
      ['/v1/topics/orders/partitions/0/leader', {}, 400, 'INVALID_REQUEST'],
      ['/v1/topics/orders/partitions/0/leader', { node: 'two' }, 400, 'INVALID_REQUEST'],
      ['/v1/topics/orders/partitions/0/leader', { node: 9 }, 400, 'INVALID_REQUEST'],
      ['/v1/topics/nope/partitions/0/leader', { node: 1 }, 404, 'UNKNOWN_TOPIC'],
      ['/v1/topics/orders/partitions/5/leader', { node: 1 }, 404, 'UNKNOWN_PARTITION'],
    ];
    for (const [url, body, status, code] of cases) {
      const res = await json(3, 'POST', url, body);
      expect(res.status, `${url} ${JSON.stringify(body)}`).toBe(status);
      expect(res.body.error.code).toBe(code);
    }
  });

  it('answers 504 TIMEOUT when the target cannot be reached in time, and leadership stays', async () => {
    const current = await leaderOf('orders', 1);
    const target = current === 3 ? 1 : current + 1;
    api.cluster.cut.add(`${current}-${target}`).add(`${target}-${current}`);
    try {
      const res = await json(current, 'POST', '/v1/topics/orders/partitions/1/leader', {
        node: target,
        timeoutMs: 800,
      });
      expect(res.status, JSON.stringify(res.body)).toBe(504);
      expect(res.body.error.code).toBe('TIMEOUT');
      expect(res.body.error.message).toContain(`node ${target}`);
    } finally {
      api.cluster.cut.clear();
    }
  });

  it('answers 503 NO_LEADER when the target is down, and leadership does not move', async () => {
    const current = await leaderOf('pair', 0);
    const pair = await json(1, 'GET', '/v1/topics/pair');
    const other: number = pair.body.partitions[0].replicas.find((id: number) => id !== current);
    const asked = [1, 2, 3].find((id) => id !== other)!;
    await api.cluster.kill(other); // the last test: the node stays down
    const res = await json(asked, 'POST', '/v1/topics/pair/partitions/0/leader', { node: other });
    expect(res.status, JSON.stringify(res.body)).toBe(503);
    expect(res.body.error.code).toBe('NO_LEADER');
    // Describing syncs metadata, which may need a new metadata leader if `other` was it.
    const deadline = Date.now() + 15_000;
    let leader: number | undefined;
    while (leader === undefined && Date.now() < deadline) {
      leader = await leaderOf('pair', 0, asked).catch(() => undefined);
    }
    // The refused transfer moved nothing. But with its only other replica down, the leader steps
    // down by check-quorum an election timeout later, and a describe that first had to wait for a
    // new metadata leader can come after that: then, rightly, no node leads (seen when `asked`
    // was the leader itself, which reports its own core rather than the last announcement).
    expect([current, null]).toContain(leader);
  }, 30_000);
});
