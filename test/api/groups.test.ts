// Consumer-group offsets over the HTTP API of an in-process 3-node cluster: commit from any node
// (forwarded to the metadata leader), read back from every node, and each validation error.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InProcessApi } from './in-process-api.js';

let api: InProcessApi;

beforeAll(async () => {
  api = new InProcessApi(3);
  await api.start();
  const created = await json(1, 'POST', '/v1/topics', { name: 'orders', partitions: 2 });
  expect(created.status).toBe(201);
  expect((await json(1, 'POST', '/v1/topics', { name: 'payments', partitions: 1 })).status).toBe(201);
  // Offsets at or below each partition's high watermark can be committed.
  await produce('orders', 0, 25);
  await produce('orders', 1, 4);
  await produce('payments', 0, 7);
}, 30_000);

afterAll(async () => {
  await api.stop();
});

async function json(nodeId: number, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown) {
  const { status, body: parsed } = await api.json(nodeId, method, url, body);
  return { status, body: parsed };
}

async function produce(topic: string, partition: number, count: number): Promise<void> {
  const records = Array.from({ length: count }, (_, i) => ({ value: `v${i}`, partition }));
  const res = await json(1, 'POST', `/v1/topics/${topic}/records`, { records });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

/** A node that does not lead the metadata group (so its writes must be forwarded). */
function follower(): number {
  for (const [id, node] of api.cluster.nodes) if (!node.isMetadataLeader()) return id;
  throw new Error('every node leads the metadata group');
}

describe('consumer group offsets', () => {
  it('commits on a follower and reads the offsets back from every node', async () => {
    const put = await json(follower(), 'PUT', '/v1/groups/billing/offsets', {
      offsets: [
        { topic: 'orders', partition: 0, offset: 18 },
        { topic: 'orders', partition: 1, offset: 4 },
        { topic: 'payments', partition: 0, offset: 7 },
      ],
    });
    expect(put.status, JSON.stringify(put.body)).toBe(204);
    for (const id of [1, 2, 3]) {
      const all = await json(id, 'GET', '/v1/groups/billing/offsets');
      expect(all.status).toBe(200);
      expect(all.body.offsets).toEqual([
        { topic: 'orders', partition: 0, offset: 18 },
        { topic: 'orders', partition: 1, offset: 4 },
        { topic: 'payments', partition: 0, offset: 7 },
      ]);
      const one = await json(id, 'GET', '/v1/groups/billing/offsets?topic=payments');
      expect(one.body.offsets).toEqual([{ topic: 'payments', partition: 0, offset: 7 }]);
    }
  });

  it('overwrites a committed offset and keeps the others', async () => {
    const put = await json(2, 'PUT', '/v1/groups/billing/offsets', {
      offsets: [{ topic: 'orders', partition: 0, offset: 25 }],
    });
    expect(put.status).toBe(204);
    const res = await json(3, 'GET', '/v1/groups/billing/offsets?topic=orders');
    expect(res.body.offsets).toEqual([
      { topic: 'orders', partition: 0, offset: 25 },
      { topic: 'orders', partition: 1, offset: 4 },
    ]);
  });

  it('answers an empty list for a group that never committed', async () => {
    const res = await json(1, 'GET', '/v1/groups/nobody/offsets');
    expect(res).toEqual({ status: 200, body: { offsets: [] } });
  });

  it('drops the offsets of a deleted topic', async () => {
    expect((await json(1, 'POST', '/v1/topics', { name: 'brief', partitions: 1 })).status).toBe(201);
    await produce('brief', 0, 3);
    const put = await json(1, 'PUT', '/v1/groups/g1/offsets', {
      offsets: [
        { topic: 'brief', partition: 0, offset: 3 },
        { topic: 'orders', partition: 0, offset: 1 },
      ],
    });
    expect(put.status).toBe(204);
    expect((await json(2, 'DELETE', '/v1/topics/brief')).status).toBe(204);
    const res = await json(3, 'GET', '/v1/groups/g1/offsets');
    expect(res.body.offsets).toEqual([{ topic: 'orders', partition: 0, offset: 1 }]);
  });

  it('rejects an unknown topic, partition, bad body and bad group name with coded errors', async () => {
    const cases: Array<[string, unknown, number, string]> = [
      [
        '/v1/groups/g/offsets',
        { offsets: [{ topic: 'nope', partition: 0, offset: 1 }] },
        404,
        'UNKNOWN_TOPIC',
      ],
      [
        '/v1/groups/g/offsets',
        { offsets: [{ topic: 'orders', partition: 2, offset: 1 }] },
        404,
        'UNKNOWN_PARTITION',
      ],
      [
        '/v1/groups/g/offsets',
        { offsets: [{ topic: 'orders', partition: 0, offset: -1 }] },
        400,
        'INVALID_REQUEST',
      ],
      ['/v1/groups/g/offsets', { offsets: [{ topic: 'orders', partition: 0 }] }, 400, 'INVALID_REQUEST'],
      ['/v1/groups/g/offsets', { offsets: [] }, 400, 'INVALID_REQUEST'],
      ['/v1/groups/g/offsets', { offset: 3 }, 400, 'INVALID_REQUEST'],
      [
        '/v1/groups/a%20b/offsets',
        { offsets: [{ topic: 'orders', partition: 0, offset: 1 }] },
        400,
        'INVALID_REQUEST',
      ],
      [
        '/v1/groups/../offsets',
        { offsets: [{ topic: 'orders', partition: 0, offset: 1 }] },
        404,
        'NOT_FOUND',
      ],
    ];
    for (const [url, body, status, code] of cases) {
      for (const id of [1, 2, 3]) {
        const res = await json(id, 'PUT', url, body);
        expect(res.status, `${url} ${JSON.stringify(body)} on ${id}`).toBe(status);
        expect(res.body.error.code).toBe(code);
      }
    }
    const invalid = await json(1, 'PUT', '/v1/groups/a%20b/offsets', {
      offsets: [{ topic: 'orders', partition: 0, offset: 1 }],
    });
    expect(invalid.body.error.message).toContain('params/group');
    expect((await json(2, 'GET', '/v1/groups/g/offsets?topic=nope')).body.error.code).toBe('UNKNOWN_TOPIC');
    expect((await json(2, 'GET', '/v1/groups/a%20b/offsets')).status).toBe(400);
    // Nothing was committed by the rejected requests.
    expect((await json(3, 'GET', '/v1/groups/g/offsets')).body.offsets).toEqual([]);
  });
});
