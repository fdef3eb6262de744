// The HTTP API over an in-process 3-node cluster: every route, forwarding from any node, and the
// contract's error codes each provoked once.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InProcessApi } from './in-process-api.js';

let api: InProcessApi;

beforeAll(async () => {
  api = new InProcessApi(3);
  await api.start();
}, 30_000);

afterAll(async () => {
  await api.stop();
});

function json(nodeId: number, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown) {
  return api.json(nodeId, method, url, body);
}

describe('topics', () => {
  it('creates a topic from any node and answers once every partition has a leader', async () => {
    const res = await json(2, 'POST', '/v1/topics', { name: 'orders', partitions: 3 });
    expect(res.status).toBe(201);
    expect(res.headers['x-raftlog-node']).toBe('2');
    expect(res.body.name).toBe('orders');
    expect(res.body.config).toEqual({ persistence: 'async', retentionMs: 604800000, retentionBytes: -1 });
    expect(res.body.partitions).toHaveLength(3);
    for (const p of res.body.partitions) {
      expect(p.leader).not.toBeNull();
      expect(p.replicas).toHaveLength(3);
    }
  });

  it('lists and describes from every node', async () => {
    for (const id of [1, 2, 3]) {
      const list = await json(id, 'GET', '/v1/topics');
      expect(list.body.topics.map((t: { name: string }) => t.name)).toContain('orders');
      const one = await json(id, 'GET', '/v1/topics/orders');
      expect(one.status).toBe(200);
      expect(one.body.partitions).toHaveLength(3);
    }
  });

  it('serves a topic whose name has the full 249 characters', async () => {
    const name = `long-${'x'.repeat(244)}`;
    expect((await json(1, 'POST', '/v1/topics', { name })).status).toBe(201);
    const produced = await json(2, 'POST', `/v1/topics/${name}/records`, { records: [{ value: 'v' }] });
    expect(produced.status, JSON.stringify(produced.body)).toBe(200);
    const fetched = await json(3, 'GET', `/v1/topics/${name}/partitions/0/records?minOffset=0&waitMs=5000`);
    expect(fetched.body.records.map((r: { value: string }) => r.value)).toEqual(['v']);
    expect((await json(3, 'DELETE', `/v1/topics/${name}`)).status).toBe(204);
  });

  it('deletes a topic', async () => {
    expect((await json(3, 'POST', '/v1/topics', { name: 'gone', partitions: 2 })).status).toBe(201);
    expect((await json(1, 'DELETE', '/v1/topics/gone')).status).toBe(204);
    expect((await json(2, 'GET', '/v1/topics/gone')).body.error.code).toBe('UNKNOWN_TOPIC');
  });
});

describe('produce and fetch', () => {
  it('names the node that appended a forwarded produce in x-raftlog-served-by', async () => {
    const described = await json(1, 'GET', '/v1/topics/orders');
    const leader: number = described.body.partitions[0].leader;
    const other = [1, 2, 3].find((id) => id !== leader)!;
    const forwarded = await json(other, 'POST', '/v1/topics/orders/records', {
      records: [{ value: 'via', partition: 0 }],
    });
    expect(forwarded.status).toBe(200);
    expect(forwarded.headers['x-raftlog-node']).toBe(String(other));
    expect(forwarded.headers['x-raftlog-served-by']).toBe(String(leader));
    const direct = await json(leader, 'POST', '/v1/topics/orders/records', {
      records: [{ value: 'direct', partition: 0 }],
    });
    expect(direct.headers['x-raftlog-served-by']).toBeUndefined();
  });

  it('produces through each node and fetches the same records from every node', async () => {
    const offsets: Array<{ partition: number; offset: number }> = [];
    for (const id of [1, 2, 3]) {
      const res = await json(id, 'POST', '/v1/topics/orders/records', {
        records: [{ key: 'user-1', value: `v${id}`, headers: { trace: 'abc' } }, { value: `k${id}` }],
      });
      expect(res.status).toBe(200);
      expect(res.body.duplicate).toBe(false);
      offsets.push(...res.body.offsets);
    }
    // The same key always lands on the same partition.
    const keyed = [offsets[0], offsets[2], offsets[4]].map((o) => o!.partition);
    expect(new Set(keyed).size).toBe(1);
    for (const id of [1, 2, 3]) {
      for (const partition of [0, 1, 2]) {
        const mine = offsets.filter((o) => o.partition === partition);
        if (mine.length === 0) continue;
        const last = Math.max(...mine.map((o) => o.offset));
        // Read-your-writes on whatever replica this node is: wait until it has the last offset.
        const res = await json(
          id,
          'GET',
          `/v1/topics/orders/partitions/${partition}/records?offset=0&waitMs=2000&minOffset=${last}`,
        );
        expect(res.status).toBe(200);
        expect(res.body.records.map((r: { offset: number }) => r.offset)).toEqual(
          Array.from({ length: last + 1 }, (_, i) => i),
        );
      }
    }
  });

  it('returns keys, headers and timestamps as produced, and null for absent ones', async () => {
    const res = await json(1, 'POST', '/v1/topics/orders/records', {
      records: [
        { key: 'k', value: 'hello', headers: { a: 'b', n: null }, partition: 1, timestamp: 1732262400000 },
      ],
    });
    const { partition, offset } = res.body.offsets[0];
    const fetched = await json(
      3,
      'GET',
      `/v1/topics/orders/partitions/${partition}/records?offset=${offset}&limit=1&consistency=linearizable`,
    );
    expect(fetched.body.records[0]).toEqual({
      offset,
      key: 'k',
      value: 'hello',
      headers: { a: 'b', n: null },
      timestamp: 1732262400000,
    });
    const plain = await json(1, 'POST', '/v1/topics/orders/records', {
      records: [{ value: 'x', partition: 1 }],
    });
    const p = plain.body.offsets[0];
    const got = await json(
      2,
      'GET',
      `/v1/topics/orders/partitions/1/records?offset=${p.offset}&consistency=linearizable`,
    );
    expect(got.body.records[0].key).toBeNull();
    expect(got.body.records[0].headers).toBeNull();
  });

  it('round-trips base64 keys and values as bytes', async () => {
    const value = Buffer.from([0, 255, 10, 13]).toString('base64');
    const res = await json(2, 'POST', '/v1/topics/orders/records', {
      encoding: 'base64',
      records: [{ key: Buffer.from('kk').toString('base64'), value, partition: 2 }],
    });
    const { offset } = res.body.offsets[0];
    const fetched = await json(
      1,
      'GET',
      `/v1/topics/orders/partitions/2/records?offset=${offset}&encoding=base64&consistency=linearizable`,
    );
    expect(fetched.body.records[0].value).toBe(value);
    const asText = await json(1, 'GET', `/v1/topics/orders/partitions/2/records?offset=${offset}&limit=1`);
    expect(asText.body.records[0].key).toBe('kk');
  });

  it('earliest, latest, limit and long-poll', async () => {
    await json(1, 'POST', '/v1/topics', { name: 'poll', partitions: 1 });
    const latest = await json(2, 'GET', '/v1/topics/poll/partitions/0/records?offset=latest&waitMs=50');
    expect(latest.body.records).toEqual([]);
    const waiting = json(
      3,
      'GET',
      `/v1/topics/poll/partitions/0/records?offset=${latest.body.highWatermark}&waitMs=5000`,
    );
    await json(1, 'POST', '/v1/topics/poll/records', {
      records: [{ value: 'a' }, { value: 'b' }, { value: 'c' }],
    });
    const woke = await waiting;
    expect(woke.body.records.length).toBeGreaterThan(0);
    const limited = await json(
      2,
      'GET',
      '/v1/topics/poll/partitions/0/records?offset=earliest&limit=2&consistency=linearizable',
    );
    expect(limited.body.records.map((r: { value: string }) => r.value)).toEqual(['a', 'b']);
    expect(limited.body.nextOffset).toBe(2);
  });

  it('a long-poll past the high watermark waits for it; without waitMs it is 416', async () => {
    await json(1, 'POST', '/v1/topics', { name: 'ahead', partitions: 1 });
    const refused = await json(2, 'GET', '/v1/topics/ahead/partitions/0/records?offset=1');
    expect(refused.status).toBe(416);
    // Offset 1 is past the high watermark (0) until two records commit.
    const waiting = json(3, 'GET', '/v1/topics/ahead/partitions/0/records?offset=1&waitMs=5000');
    await json(1, 'POST', '/v1/topics/ahead/records', { records: [{ value: 'a' }, { value: 'b' }] });
    const woke = await waiting;
    expect(woke.status, JSON.stringify(woke.body)).toBe(200);
    expect(woke.body.records.map((r: { value: string }) => r.value)).toEqual(['b']);
  });
});

describe('error codes', () => {
  const cases: Array<
    [
      string,
      () => Promise<{ status: number; body: { error: { code: string; message: string } } }>,
      number,
      string,
    ]
  > = [
    [
      'INVALID_REQUEST (missing value)',
      () => json(1, 'POST', '/v1/topics/orders/records', { records: [{ key: 'x' }] }),
      400,
      'INVALID_REQUEST',
    ],
    [
      'INVALID_REQUEST (bad query)',
      () => json(1, 'GET', '/v1/topics/orders/partitions/0/records?limit=0'),
      400,
      'INVALID_REQUEST',
    ],
    [
      'INVALID_REQUEST (bad base64)',
      () => json(1, 'POST', '/v1/topics/orders/records', { encoding: 'base64', records: [{ value: '$$$' }] }),
      400,
      'INVALID_REQUEST',
    ],
    [
      'INVALID_TOPIC_NAME',
      () => json(1, 'POST', '/v1/topics', { name: 'bad name' }),
      400,
      'INVALID_TOPIC_NAME',
    ],
    [
      'INVALID_TOPIC_NAME (..)',
      () => json(2, 'POST', '/v1/topics', { name: '..' }),
      400,
      'INVALID_TOPIC_NAME',
    ],
    [
      'INVALID_REPLICATION_FACTOR',
      () => json(1, 'POST', '/v1/topics', { name: 'rf', replicationFactor: 4 }),
      400,
      'INVALID_REPLICATION_FACTOR',
    ],
    ['UNKNOWN_TOPIC', () => json(3, 'GET', '/v1/topics/nope'), 404, 'UNKNOWN_TOPIC'],
    [
      'UNKNOWN_TOPIC (produce)',
      () => json(3, 'POST', '/v1/topics/nope/records', { records: [{ value: 'x' }] }),
      404,
      'UNKNOWN_TOPIC',
    ],
    [
      'UNKNOWN_PARTITION',
      () => json(2, 'GET', '/v1/topics/orders/partitions/7/records'),
      404,
      'UNKNOWN_PARTITION',
    ],
    [
      'UNKNOWN_PARTITION (produce)',
      () => json(2, 'POST', '/v1/topics/orders/records', { records: [{ value: 'x', partition: 3 }] }),
      404,
      'UNKNOWN_PARTITION',
    ],
    ['TOPIC_EXISTS', () => json(2, 'POST', '/v1/topics', { name: 'orders' }), 409, 'TOPIC_EXISTS'],
    [
      'RECORD_TOO_LARGE',
      () =>
        json(1, 'POST', '/v1/topics/orders/records', { records: [{ value: 'x'.repeat(1024 * 1024 + 1) }] }),
      413,
      'RECORD_TOO_LARGE',
    ],
    [
      'REQUEST_TOO_LARGE',
      () =>
        json(1, 'POST', '/v1/topics/orders/records', {
          records: Array.from({ length: 17 }, () => ({ value: 'y'.repeat(1024 * 1024 - 10) })),
        }),
      413,
      'REQUEST_TOO_LARGE',
    ],
    [
      'OFFSET_OUT_OF_RANGE',
      () => json(1, 'GET', '/v1/topics/orders/partitions/0/records?offset=999999'),
      416,
      'OFFSET_OUT_OF_RANGE',
    ],
    ['NOT_FOUND', () => json(1, 'GET', '/v1/nothing'), 404, 'NOT_FOUND'],
    [
      'INVALID_REQUEST (null value: no coercion to "")',
      () => json(1, 'POST', '/v1/topics/orders/records', { records: [{ value: null }] }),
      400,
      'INVALID_REQUEST',
    ],
    [
      'INVALID_REQUEST (boolean value)',
      () => json(1, 'POST', '/v1/topics/orders/records', { records: [{ value: true }] }),
      400,
      'INVALID_REQUEST',
    ],
    [
      'INVALID_REQUEST (numeric topic name)',
      () => json(1, 'POST', '/v1/topics', { name: 5 }),
      400,
      'INVALID_REQUEST',
    ],
    ['INVALID_REQUEST (bad URL encoding)', () => json(2, 'GET', '/v1/topics/%zz'), 400, 'INVALID_REQUEST'],
  ];
  for (const [name, call, status, code] of cases) {
    it(name, async () => {
      const res = await call();
      expect(res.status).toBe(status);
      expect(res.body.error.code).toBe(code);
      expect(res.body.error.message.length).toBeGreaterThan(0);
      expect((res as { headers?: Record<string, unknown> }).headers?.['x-raftlog-node']).toBeDefined();
    });
  }

  it('OFFSET_OUT_OF_RANGE carries logStartOffset and highWatermark', async () => {
    const res = await json(2, 'GET', '/v1/topics/orders/partitions/0/records?offset=999999');
    expect(typeof res.body.error.logStartOffset).toBe('number');
    expect(typeof res.body.error.highWatermark).toBe('number');
  });

  it('INVALID_REQUEST names the field', async () => {
    const res = await json(1, 'POST', '/v1/topics/orders/records', { records: [{ key: 'x' }] });
    expect(res.body.error.message).toMatch(/records\/0/);
    expect(res.body.error.message).toMatch(/value/);
  });
});

describe('cluster and health', () => {
  it('describes the cluster from any node', async () => {
    const res = await json(3, 'GET', '/v1/cluster');
    expect(res.body.clusterId).toMatch(/^rl-/);
    expect(res.body.nodes.map((n: { id: number }) => n.id)).toEqual([1, 2, 3]);
    expect(res.body.nodes.every((n: { alive: boolean }) => n.alive)).toBe(true);
    expect([1, 2, 3]).toContain(res.body.metadataLeader);
  });

  it('healthz and readyz answer 200', async () => {
    expect((await json(1, 'GET', '/healthz')).status).toBe(200);
    expect((await json(2, 'GET', '/readyz')).status).toBe(200);
  });

  it('serves the OpenAPI document at /docs/json', async () => {
    const res = await json(1, 'GET', '/docs/json');
    expect(res.body.openapi).toMatch(/^3\./);
    expect(Object.keys(res.body.paths)).toContain('/v1/topics/{topic}/records');
  });
});
