// Raftlog sends each route of the contract with the right method, path, query and body, maps
// answers and failures to coded errors, retries only what is safe, and honours every call's
// signal and deadline. (Routing between nodes: routing.test.ts.)

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  isRetriable,
  parseRetryAfterMs,
  Raftlog,
  RaftlogClient,
  RaftlogError,
  RaftlogNetworkError,
  surelyNotApplied,
} from '../../src/client/index.js';
import { connectionRefused, connectionReset, errorReply, FakeNode, topicDescription } from './fake-node.js';

let node: FakeNode;
const opened: FakeNode[] = [];
afterEach(async () => {
  for (const fake of opened.splice(0)) await fake.close();
});
function fakeNode(): FakeNode {
  const fake = new FakeNode();
  opened.push(fake);
  return fake;
}

describe('routes', () => {
  it('creates a topic with POST /v1/topics and the given body', async () => {
    node = fakeNode().on('POST', /^\/v1\/topics$/, () => ({
      status: 201,
      body: topicDescription('orders', 3),
    }));
    const topic = await node.client().createTopic({
      name: 'orders',
      partitions: 3,
      replicationFactor: 3,
      config: { persistence: 'sync' },
    });
    expect(topic.partitions).toHaveLength(3);
    expect(node.requests[0]).toMatchObject({
      method: 'POST',
      path: '/v1/topics',
      body: { name: 'orders', partitions: 3, replicationFactor: 3, config: { persistence: 'sync' } },
      headers: { 'content-type': 'application/json' },
    });
  });

  it('lists, describes and deletes topics', async () => {
    node = fakeNode()
      .on('GET', /^\/v1\/topics$/, () => ({ status: 200, body: { topics: [topicDescription('a', 1)] } }))
      .on('GET', /^\/v1\/topics\/a$/, () => ({ status: 200, body: topicDescription('a', 2) }))
      .on('DELETE', /^\/v1\/topics\/a$/, () => ({ status: 204 }));
    const client = node.client();
    expect((await client.listTopics()).map((t) => t.name)).toEqual(['a']);
    expect((await client.describeTopic('a')).partitions).toHaveLength(2);
    await expect(client.deleteTopic('a')).resolves.toBeUndefined();
  });

  it('produces with the full request body', async () => {
    node = fakeNode().on('POST', /^\/v1\/topics\/orders\/records$/, () => ({
      status: 200,
      body: { offsets: [{ partition: 0, offset: 17 }], duplicate: false },
    }));
    const request = {
      records: [
        { key: 'user-1', value: 'hello', headers: { trace: 'abc' }, partition: 0, timestamp: 1732262400000 },
      ],
      encoding: 'utf8' as const,
      producer: { id: 'p-7f3a', epoch: 0, sequence: 41 },
      timeoutMs: 30000,
    };
    const response = await node.client().produce('orders', request);
    expect(response.offsets).toEqual([{ partition: 0, offset: 17 }]);
    expect(node.requests[0]!.body).toEqual(request);
  });

  it('refuses a produce answer whose offsets do not match the records', async () => {
    node = fakeNode().on('POST', /records$/, () => ({
      status: 200,
      body: { offsets: [], duplicate: false },
    }));
    const error = await node
      .client()
      .produce('t', { records: [{ value: 'x' }] })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'UNEXPECTED_RESPONSE' });
  });

  it('fetches with every query parameter of the contract', async () => {
    node = fakeNode().on('GET', /^\/v1\/topics\/orders\/partitions\/2\/records$/, () => ({
      status: 200,
      body: { records: [], nextOffset: 5, highWatermark: 5, logStartOffset: 0 },
    }));
    await node.client().fetch('orders', 2, {
      offset: 'earliest',
      limit: 10,
      maxBytes: 4096,
      waitMs: 250,
      encoding: 'base64',
      consistency: 'linearizable',
      minOffset: 4,
    });
    expect(node.requests[0]!.query).toEqual({
      offset: 'earliest',
      limit: '10',
      maxBytes: '4096',
      waitMs: '250',
      encoding: 'base64',
      consistency: 'linearizable',
      minOffset: '4',
    });
  });

  it('asks for the offset of a time with GET .../offsets?timestamp=', async () => {
    node = fakeNode().on('GET', /^\/v1\/topics\/orders\/partitions\/2\/offsets$/, (request) => ({
      status: 200,
      body:
        request.query.timestamp === '1732262400000'
          ? { offset: 17, timestamp: 1732262400250 }
          : { offset: 57, timestamp: null },
    }));
    const client = node.client();
    expect(await client.offsetForTime('orders', 2, 1732262400000)).toEqual({
      offset: 17,
      timestamp: 1732262400250,
    });
    expect(await client.offsetForTime('orders', 2, 1832262400000)).toEqual({ offset: 57, timestamp: null });
    expect(node.requests.map((r) => r.query)).toEqual([
      { timestamp: '1732262400000' },
      { timestamp: '1832262400000' },
    ]);
  });

  it('maps a refused offset-for-time request to its code', async () => {
    node = fakeNode().on('GET', /offsets$/, () =>
      errorReply(400, 'INVALID_REQUEST', 'querystring/timestamp must be >= 0'),
    );
    const error = await node
      .client()
      .offsetForTime('orders', 0, -1)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RaftlogError);
    expect(error).toMatchObject({ code: 'INVALID_REQUEST' });
  });

  it('omits query parameters that are not given', async () => {
    node = fakeNode().on('GET', /records$/, () => ({
      status: 200,
      body: { records: [], nextOffset: 0, highWatermark: 0, logStartOffset: 0 },
    }));
    await node.client().fetch('orders', 0);
    expect(node.requests[0]!.query).toEqual({});
  });

  it('puts and gets group offsets', async () => {
    const offsets = [{ topic: 'orders', partition: 0, offset: 18 }];
    node = fakeNode()
      .on('PUT', /^\/v1\/groups\/billing\/offsets$/, () => ({ status: 204 }))
      .on('GET', /^\/v1\/groups\/billing\/offsets$/, () => ({ status: 200, body: { offsets } }));
    const client = node.client();
    await client.commitOffsets('billing', offsets);
    expect(await client.groupOffsets('billing', { topic: 'orders' })).toEqual(offsets);
    expect(node.requests[0]!.body).toEqual({ offsets });
    expect(node.requests[1]!.query).toEqual({ topic: 'orders' });
  });

  it('sends a fenced commit with memberId and generation', async () => {
    const offsets = [{ topic: 'orders', partition: 0, offset: 18 }];
    node = fakeNode().on('PUT', /^\/v1\/groups\/billing\/offsets$/, () => ({ status: 204 }));
    await node.client().commitOffsets('billing', offsets, { memberId: 'm-1', generation: 3 });
    expect(node.requests[0]!.body).toEqual({ offsets, memberId: 'm-1', generation: 3 });
  });

  it('joins, heartbeats, leaves, describes and lists groups', async () => {
    const answer = {
      memberId: 'm-1',
      generation: 3,
      heartbeatIntervalMs: 3000,
      assignments: [{ topic: 'orders', partition: 0, offset: 18 }],
    };
    node = fakeNode()
      .on('POST', /^\/v1\/groups\/g\/members$/, () => ({ status: 200, body: answer }))
      .on('POST', /^\/v1\/groups\/g\/members\/m-1\/heartbeat$/, () => ({ status: 200, body: answer }))
      .on('DELETE', /^\/v1\/groups\/g\/members\/m-1$/, () => ({ status: 204 }))
      .on('GET', /^\/v1\/groups\/g$/, () => ({
        status: 200,
        body: { group: 'g', generation: 3, members: [], offsets: [] },
      }))
      .on('GET', /^\/v1\/groups$/, () => ({
        status: 200,
        body: { groups: [{ group: 'g', members: 1, generation: 3 }] },
      }));
    const client = node.client();
    expect(await client.joinGroup('g', { topics: ['orders'], sessionTimeoutMs: 5000 })).toEqual(answer);
    expect(await client.heartbeat('g', 'm-1', 3)).toEqual(answer);
    await client.leaveGroup('g', 'm-1');
    expect((await client.describeGroup('g')).generation).toBe(3);
    expect(await client.listGroups()).toEqual([{ group: 'g', members: 1, generation: 3 }]);
    expect(node.requests.map((r) => r.body)).toEqual([
      { topics: ['orders'], sessionTimeoutMs: 5000 },
      { generation: 3 },
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('transfers leadership with {node}', async () => {
    node = fakeNode().on('POST', /^\/v1\/topics\/orders\/partitions\/1\/leader$/, () => ({ status: 200 }));
    await node.client().transferLeader('orders', 1, 2);
    expect(node.requests[0]!.body).toEqual({ node: 2 });
  });

  it('reads the cluster and probes health', async () => {
    const cluster = {
      clusterId: 'c1',
      nodes: [{ id: 1, url: 'http://127.0.0.1:9090', alive: true }],
      metadataLeader: 1,
    };
    node = fakeNode()
      .on('GET', /^\/v1\/cluster$/, () => ({ status: 200, body: cluster }))
      .on('GET', /^\/healthz$/, () => ({ status: 200, body: 'ok' }))
      .on('GET', /^\/readyz$/, () => errorReply(503, 'NO_LEADER', 'not ready'));
    const client = node.client();
    expect(await client.cluster()).toEqual(cluster);
    expect(await client.isHealthy()).toBe(true);
    expect(await client.isReady()).toBe(false);
  });

  it('encodes topic and group names in paths', async () => {
    node = fakeNode().on('GET', /^\/v1\/topics\//, () => ({ status: 200, body: topicDescription('a', 1) }));
    await node.client().describeTopic('a b/c');
    expect(node.requests[0]!.path).toBe('/v1/topics/a%20b%2Fc');
  });
});

describe('errors', () => {
  it('keeps the contract code, status, message and extra fields', async () => {
    node = fakeNode().on('GET', /records$/, () =>
      errorReply(416, 'OFFSET_OUT_OF_RANGE', 'offset 3 is below the log start 10', {
        details: { logStartOffset: 10, highWatermark: 20 },
        headers: { 'x-raftlog-node': '2' },
      }),
    );
    const error = await node
      .client()
      .fetch('t', 0, { offset: 3 })
      .catch((e: unknown) => e);
    expect(node.requests).toHaveLength(1); // A 416 is an answer, not a failure to retry.
    expect(error).toBeInstanceOf(RaftlogError);
    expect(error).toMatchObject({
      code: 'OFFSET_OUT_OF_RANGE',
      statusCode: 416,
      message: 'offset 3 is below the log start 10',
      details: { logStartOffset: 10, highWatermark: 20 },
      nodeId: 2,
    });
    expect(isRetriable(error)).toBe(false);
  });

  it('reads retry-after of a 503 into retryAfterMs', async () => {
    node = fakeNode().on('GET', /^\/v1\/topics$/, () =>
      errorReply(503, 'NO_LEADER', 'no leader', { headers: { 'retry-after': '2' } }),
    );
    const error = await node
      .client({ retry: { attemptsMax: 1 } })
      .listTopics()
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'NO_LEADER', statusCode: 503, retryAfterMs: 2000 });
    expect(isRetriable(error)).toBe(true);
    expect(surelyNotApplied(error)).toBe(true);
  });

  it('parses retry-after as seconds or as an HTTP date', () => {
    expect(parseRetryAfterMs('1')).toBe(1000);
    expect(parseRetryAfterMs('0.5')).toBe(500);
    expect(parseRetryAfterMs(undefined)).toBeUndefined();
    expect(parseRetryAfterMs('soon')).toBeUndefined();
    const nowMs = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfterMs('Thu, 01 Jan 2026 00:00:03 GMT', nowMs)).toBe(3000);
  });

  it('treats 504 TIMEOUT as retriable but possibly applied: a produce without producer is not retried', async () => {
    node = fakeNode().on('POST', /records$/, () => errorReply(504, 'TIMEOUT', 'not committed in time'));
    const error = await node
      .client()
      .produce('t', { records: [{ value: 'x' }] })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TIMEOUT', statusCode: 504 });
    expect(isRetriable(error)).toBe(true);
    expect(surelyNotApplied(error)).toBe(false);
    expect(node.requests).toHaveLength(1);
  });

  it('retries an idempotent produce after a 504 with the same body', async () => {
    let calls = 0;
    node = fakeNode().on('POST', /records$/, () =>
      ++calls === 1
        ? errorReply(504, 'TIMEOUT', 'not committed in time')
        : { status: 200, body: { offsets: [{ partition: 0, offset: 4 }], duplicate: true } },
    );
    const request = { records: [{ value: 'x', partition: 0 }], producer: { id: 'p', epoch: 0, sequence: 7 } };
    const response = await node.client({ retry: { backoffMs: 1 } }).produce('t', request);
    expect(response).toEqual({ offsets: [{ partition: 0, offset: 4 }], duplicate: true });
    expect(node.requests.map((r) => r.body)).toEqual([request, request]);
  });

  it('retries reads after a 503 and a broken connection, within attemptsMax', async () => {
    let calls = 0;
    node = fakeNode().on('GET', /^\/v1\/topics$/, () => {
      calls++;
      if (calls === 1) return errorReply(503, 'NO_LEADER', 'electing', { headers: { 'retry-after': '0' } });
      if (calls === 2) throw connectionReset();
      return { status: 200, body: { topics: [] } };
    });
    expect(await node.client({ retry: { backoffMs: 1 } }).listTopics()).toEqual([]);
    expect(calls).toBe(3);
  });

  it('retries a topic creation only when it surely changed nothing', async () => {
    node = fakeNode().on('POST', /^\/v1\/topics$/, () => {
      throw connectionReset();
    });
    await expect(node.client().createTopic({ name: 't' })).rejects.toMatchObject({ code: 'NETWORK_ERROR' });
    expect(node.requests).toHaveLength(1);
  });

  it('maps a non-contract 404 (unknown route) to NOT_FOUND', async () => {
    node = fakeNode().on('GET', /stream$/, () => ({
      status: 404,
      body: { message: 'Route GET:/x not found', error: 'Not Found', statusCode: 404 },
    }));
    const error = await node
      .client()
      .openStream('t', 0)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'NOT_FOUND', statusCode: 404 });
  });

  it('maps a proxy page to UNEXPECTED_RESPONSE with a snippet', async () => {
    node = fakeNode().on('GET', /cluster$/, () => ({
      status: 502,
      body: '<html>Bad   Gateway</html>',
      headers: { 'content-type': 'text/html' },
    }));
    const error = (await node
      .client()
      .cluster()
      .catch((e: unknown) => e)) as RaftlogError;
    expect(error.code).toBe('UNEXPECTED_RESPONSE');
    expect(error.message).toContain('HTTP 502: <html>Bad Gateway</html>');
  });

  it('refuses invalid JSON in a 200', async () => {
    node = fakeNode().on('GET', /cluster$/, () => ({ status: 200, body: '{"clusterId":' }));
    await expect(node.client().cluster()).rejects.toMatchObject({
      code: 'UNEXPECTED_RESPONSE',
      statusCode: 200,
    });
  });

  it('refuses an answer over responseBytesMax', async () => {
    node = fakeNode().on('GET', /^\/v1\/topics$/, () => ({
      status: 200,
      body: { topics: [], pad: 'x'.repeat(5000) },
    }));
    await expect(node.client({ responseBytesMax: 1000 }).listTopics()).rejects.toMatchObject({
      code: 'UNEXPECTED_RESPONSE',
    });
  });

  it('maps connection failures to RaftlogNetworkError with a reason', async () => {
    node = fakeNode()
      .on('GET', /^\/v1\/cluster$/, () => {
        throw connectionRefused();
      })
      .on('GET', /^\/v1\/topics$/, () => {
        throw connectionReset();
      });
    const once = { retry: { attemptsMax: 1 } };
    const refused = await node
      .client(once)
      .cluster()
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RaftlogNetworkError);
    expect(refused).toMatchObject({
      code: 'NETWORK_ERROR',
      failure: 'connection refused',
      notSent: true,
      url: 'http://127.0.0.1:9090',
      message: 'cannot reach http://127.0.0.1:9090 (connection refused)',
    });
    const reset = await node
      .client(once)
      .listTopics()
      .catch((e: unknown) => e);
    expect(reset).toMatchObject({ code: 'NETWORK_ERROR', failure: 'connection reset', notSent: false });
    expect(surelyNotApplied(reset)).toBe(false);
  });

  it('reports a real refused connection on 127.0.0.1', async () => {
    // Bind then close a port, so nothing listens there.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const client = new Raftlog({ url: `http://127.0.0.1:${port}`, retry: { attemptsMax: 1 } });
    try {
      await expect(client.cluster()).rejects.toMatchObject({
        code: 'NETWORK_ERROR',
        failure: 'connection refused',
      });
    } finally {
      await client.close();
    }
  });

  it('times out a request that gets no headers within requestTimeoutMs', async () => {
    const server = createServer(() => {
      // Never answers.
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const client = new Raftlog({
      url: `http://127.0.0.1:${port}`,
      requestTimeoutMs: 200,
      retry: { attemptsMax: 1 },
    });
    try {
      await expect(client.cluster()).rejects.toMatchObject({
        code: 'NETWORK_ERROR',
        failure: 'response timeout',
      });
    } finally {
      await client.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('rejects with the abort reason when the signal aborts', async () => {
    node = fakeNode().on('GET', /cluster$/, () => ({ status: 200, body: {} }));
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(node.client().cluster({ signal: controller.signal })).rejects.toThrow('stop');
  });

  it('fails a call whose timeoutMs passes with TIMEOUT, retries included', async () => {
    const server = createServer(() => {
      // Never answers.
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const client = new Raftlog({ url: `http://127.0.0.1:${port}` });
    try {
      const startedMs = Date.now();
      const error = await client.listTopics({ timeoutMs: 150 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RaftlogError);
      expect(error).toMatchObject({ code: 'TIMEOUT', statusCode: 0 });
      expect(Date.now() - startedMs).toBeLessThan(5000);
    } finally {
      await client.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('stops retrying when the signal aborts, with its reason', async () => {
    node = fakeNode().on('GET', /^\/v1\/topics$/, () => errorReply(503, 'NO_LEADER', 'electing'));
    const controller = new AbortController();
    const listing = node.client().listTopics({ signal: controller.signal });
    setTimeout(() => controller.abort(new Error('enough')), 50);
    await expect(listing).rejects.toThrow('enough');
    expect(node.requests.length).toBeLessThan(4);
  });

  it('keeps RaftlogClient as the old name of Raftlog', () => {
    expect(RaftlogClient).toBe(Raftlog);
  });

  it('refuses a server URL with a path or another scheme', () => {
    expect(() => new RaftlogClient({ url: 'http://127.0.0.1:9090/v1' })).toThrow(
      /only scheme, host and port/,
    );
    expect(() => new RaftlogClient({ url: 'ftp://x' })).toThrow(/http/);
    expect(() => new RaftlogClient({ url: 'nonsense' })).toThrow(/invalid server URL/);
    expect(new RaftlogClient({ url: 'http://127.0.0.1:9090/' }).url).toBe('http://127.0.0.1:9090');
    expect(() => new Raftlog({ urls: [] })).toThrow(/at least one/);
    expect(new Raftlog({ urls: ['http://a:1/', 'http://a:1', 'http://b:2'] }).urls).toEqual([
      'http://a:1',
      'http://b:2',
    ]);
  });
});
