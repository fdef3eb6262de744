// The Producer batches by linger, records and bytes; sends one request per partition; retries
// only what is safe, with the same sequence when idempotent; and stays bounded.

import { afterEach, describe, expect, it } from 'vitest';
import { type ProduceRequest, partitionForKey, RaftlogError } from '../../src/client/index.js';
import {
  connectionRefused,
  connectionReset,
  errorReply,
  FakeNode,
  type FakeReply,
  topicDescription,
} from './fake-node.js';

const nodes: FakeNode[] = [];
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.close();
});

/** A node whose produce route assigns dense offsets per partition and remembers each request. */
function logNode(partitions = 3) {
  const node = new FakeNode();
  nodes.push(node);
  const next = new Map<number, number>();
  const produced: ProduceRequest[] = [];
  let failures: Array<() => FakeReply> = [];
  node.on('GET', /^\/v1\/topics\/t$/, () => ({ status: 200, body: topicDescription('t', partitions) }));
  node.on('POST', /^\/v1\/topics\/t\/records$/, (request) => {
    const failure = failures.shift();
    if (failure) return failure();
    const body = request.body as ProduceRequest;
    produced.push(body);
    const offsets = body.records.map((record) => {
      const partition = record.partition ?? 0;
      const offset = next.get(partition) ?? 0;
      next.set(partition, offset + 1);
      return { partition, offset };
    });
    return { status: 200, body: { offsets, duplicate: false } };
  });
  return {
    node,
    produced,
    failWith(...replies: Array<() => FakeReply>) {
      failures = replies;
    },
  };
}

const fastRetry = { backoffMs: 1, backoffMsMax: 2 };

describe('batching', () => {
  it('collects sends within lingerMs into one request, resolving each with its offset', async () => {
    const { node, produced } = logNode();
    const producer = node.client().producer({ lingerMs: 20 });
    const results = await Promise.all(['a', 'b', 'c'].map((value) => producer.send('t', { value })));
    expect(produced).toHaveLength(1);
    expect(produced[0]!.records.map((r) => r.value)).toEqual(['a', 'b', 'c']);
    expect(produced[0]!.producer).toBeUndefined();
    expect(results.map((r) => r.offset)).toEqual([0, 1, 2]);
    expect(results[0]).toEqual({ topic: 't', partition: 0, offset: 0, duplicate: false });
  });

  it('sends a batch as soon as it holds batchRecordsMax records', async () => {
    const { node, produced } = logNode();
    const producer = node.client().producer({ lingerMs: 60_000, batchRecordsMax: 2 });
    await Promise.all(['a', 'b', 'c', 'd'].map((value) => producer.send('t', { value })));
    expect(produced.map((p) => p.records.length)).toEqual([2, 2]);
  });

  it('splits batches at batchBytesMax (about 164 bytes per record here)', async () => {
    const { node, produced } = logNode();
    const producer = node.client().producer({ lingerMs: 60_000, batchBytesMax: 400 });
    const sends = Array.from({ length: 4 }, () => producer.send('t', { value: 'x'.repeat(100) }));
    await producer.flush();
    await Promise.all(sends);
    expect(produced.map((p) => p.records.length)).toEqual([2, 2]);
  });

  it('sends one request per partition, in order within each', async () => {
    const { node, produced } = logNode();
    const producer = node.client().producer({ lingerMs: 10 });
    await Promise.all([
      producer.send('t', { value: 'a', partition: 0 }),
      producer.send('t', { value: 'b', partition: 1 }),
      producer.send('t', { value: 'c', partition: 0 }),
    ]);
    const byPartition = produced.map((p) => [p.records[0]!.partition, p.records.map((r) => r.value)]);
    expect(byPartition).toEqual(
      expect.arrayContaining([
        [0, ['a', 'c']],
        [1, ['b']],
      ]),
    );
    expect(produced).toHaveLength(2);
  });

  it('flush() sends at once and waits; close() refuses new records', async () => {
    const { node, produced } = logNode();
    const producer = node.client().producer({ lingerMs: 60_000 });
    const sent = producer.send('t', { value: 'a' });
    await producer.flush();
    expect(produced).toHaveLength(1);
    await expect(sent).resolves.toMatchObject({ offset: 0 });
    await producer.close();
    await expect(producer.send('t', { value: 'b' })).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('refuses records beyond bufferBytesMax with BUFFER_FULL', async () => {
    const { node } = logNode();
    const producer = node.client().producer({ lingerMs: 60_000, bufferBytesMax: 500 });
    const first = producer.send('t', { value: 'x'.repeat(300) });
    await expect(producer.send('t', { value: 'y'.repeat(300) })).rejects.toMatchObject({
      code: 'BUFFER_FULL',
    });
    await producer.flush();
    await first;
    // Room again once acknowledged.
    const again = producer.send('t', { value: 'y'.repeat(300) });
    await producer.flush();
    await expect(again).resolves.toMatchObject({ offset: 1 });
  });
});

describe('retries without idempotence', () => {
  it('retries a 503 after its retry-after', async () => {
    const { node, produced, failWith } = logNode();
    failWith(() => errorReply(503, 'NO_LEADER', 'electing', { headers: { 'retry-after': '0.05' } }));
    const producer = node.client().producer({ lingerMs: 0, retry: fastRetry });
    const started = Date.now();
    await expect(producer.send('t', { value: 'a' })).resolves.toMatchObject({ offset: 0 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(produced).toHaveLength(1);
  });

  it('retries a refused connection (never sent) but not a 504 or a reset (could duplicate)', async () => {
    const { node, produced, failWith } = logNode();
    failWith(() => {
      throw connectionRefused();
    });
    const producer = node.client().producer({ lingerMs: 0, retry: fastRetry });
    await expect(producer.send('t', { value: 'a' })).resolves.toMatchObject({ offset: 0 });
    failWith(() => errorReply(504, 'TIMEOUT', 'not committed in time'));
    await expect(producer.send('t', { value: 'b' })).rejects.toMatchObject({ code: 'TIMEOUT' });
    failWith(() => {
      throw connectionReset();
    });
    await expect(producer.send('t', { value: 'c' })).rejects.toMatchObject({ code: 'NETWORK_ERROR' });
    expect(produced.map((p) => p.records[0]!.value)).toEqual(['a']);
  });

  it('gives up after attemptsMax', async () => {
    const { node, failWith } = logNode();
    const noLeader = () => errorReply(503, 'NO_LEADER', 'electing');
    failWith(noLeader, noLeader, noLeader, noLeader);
    const producer = node.client().producer({ lingerMs: 0, retry: { ...fastRetry, attemptsMax: 3 } });
    await expect(producer.send('t', { value: 'a' })).rejects.toMatchObject({ code: 'NO_LEADER' });
    expect(node.sent('POST', /records$/)).toHaveLength(3);
  });

  it('does not retry a client error', async () => {
    const { node, failWith } = logNode();
    failWith(() => errorReply(413, 'RECORD_TOO_LARGE', 'record over 1 MiB'));
    const producer = node.client().producer({ lingerMs: 0, retry: fastRetry });
    await expect(producer.send('t', { value: 'a' })).rejects.toMatchObject({ code: 'RECORD_TOO_LARGE' });
    expect(node.sent('POST', /records$/)).toHaveLength(1);
  });
});

describe('idempotence', () => {
  it('targets each request at the key partition (murmur2) with sequences per partition', async () => {
    const { node, produced } = logNode(3);
    const producer = node.client().producer({ lingerMs: 5, idempotence: { id: 'p-1', epoch: 2 } });
    const keys = ['user-1', 'user-2', 'user-3', 'user-4', 'user-1'];
    const results = await Promise.all(keys.map((key) => producer.send('t', { key, value: key })));
    for (const [i, key] of keys.entries()) {
      expect(results[i]!.partition).toBe(partitionForKey(Buffer.from(key), 3));
    }
    for (const request of produced) {
      const partitions = new Set(request.records.map((r) => r.partition));
      expect(partitions.size).toBe(1);
      expect(request.producer).toEqual({ id: 'p-1', epoch: 2, sequence: 0 });
    }
    // A second round continues each partition's sequence where its first request ended.
    const before = new Map(produced.map((r) => [r.records[0]!.partition, r.records.length]));
    produced.length = 0;
    await Promise.all(keys.map((key) => producer.send('t', { key, value: key })));
    for (const request of produced)
      expect(request.producer!.sequence).toBe(before.get(request.records[0]!.partition));
    expect(node.sent('GET', /^\/v1\/topics\/t$/)).toHaveLength(1); // Partition count cached.
  });

  it('puts keyless records of one batch on one partition', async () => {
    const { node, produced } = logNode(4);
    const producer = node.client().producer({ lingerMs: 5, idempotence: true });
    await Promise.all(['a', 'b', 'c'].map((value) => producer.send('t', { value })));
    expect(produced).toHaveLength(1);
    expect(new Set(produced[0]!.records.map((r) => r.partition)).size).toBe(1);
    expect(produced[0]!.producer!.id).toMatch(/^p-/);
  });

  it('retries a 504 and a broken connection with the same sequence', async () => {
    const { node, failWith } = logNode(1);
    const producer = node.client().producer({ lingerMs: 0, idempotence: { id: 'p-1' }, retry: fastRetry });
    await producer.send('t', { value: 'a' });
    failWith(
      () => errorReply(504, 'TIMEOUT', 'not committed in time'),
      () => {
        throw connectionReset();
      },
      () => errorReply(503, 'NOT_ENOUGH_REPLICAS', 'no quorum'),
    );
    await expect(producer.send('t', { value: 'b' })).resolves.toMatchObject({ partition: 0, offset: 1 });
    const sequences = node.sent('POST', /records$/).map((r) => (r.body as ProduceRequest).producer!.sequence);
    expect(sequences).toEqual([0, 1, 1, 1, 1]);
  });

  it('passes duplicate: true through', async () => {
    const node = new FakeNode();
    nodes.push(node);
    node.on('POST', /records$/, () => ({
      status: 200,
      body: { offsets: [{ partition: 0, offset: 7 }], duplicate: true },
    }));
    const producer = node.client().producer({ lingerMs: 0, idempotence: true });
    await expect(producer.send('t', { value: 'a', partition: 0 })).resolves.toEqual({
      topic: 't',
      partition: 0,
      offset: 7,
      duplicate: true,
    });
  });

  it('fails the partition with PRODUCER_SEQUENCE_UNKNOWN once retries end with the outcome unknown', async () => {
    const { node, produced, failWith } = logNode(2);
    const timeout = () => errorReply(504, 'TIMEOUT', 'not committed in time');
    failWith(timeout, timeout);
    const producer = node
      .client()
      .producer({ lingerMs: 0, idempotence: true, retry: { ...fastRetry, attemptsMax: 2 } });
    await expect(producer.send('t', { value: 'a', partition: 0 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    const next = await producer.send('t', { value: 'b', partition: 0 }).catch((e: unknown) => e);
    expect(next).toBeInstanceOf(RaftlogError);
    expect(next).toMatchObject({ code: 'PRODUCER_SEQUENCE_UNKNOWN' });
    expect((next as Error).message).toContain('sequences 0..0');
    // Other partitions are unaffected.
    await expect(producer.send('t', { value: 'c', partition: 1 })).resolves.toMatchObject({ partition: 1 });
    expect(produced).toHaveLength(1);
  });

  it('keeps the sequence after a rejection that appended nothing', async () => {
    const { node, failWith } = logNode(1);
    failWith(() => errorReply(413, 'RECORD_TOO_LARGE', 'too large'));
    const producer = node.client().producer({ lingerMs: 0, idempotence: true, retry: fastRetry });
    await expect(producer.send('t', { value: 'a' })).rejects.toMatchObject({ code: 'RECORD_TOO_LARGE' });
    await producer.send('t', { value: 'b' });
    const sequences = node.sent('POST', /records$/).map((r) => (r.body as ProduceRequest).producer!.sequence);
    expect(sequences).toEqual([0, 0]);
  });

  it('stops the whole producer once fenced', async () => {
    const { node, failWith } = logNode(2);
    failWith(() => errorReply(409, 'PRODUCER_FENCED', 'epoch 1 exists'));
    const producer = node.client().producer({ lingerMs: 0, idempotence: true });
    await expect(producer.send('t', { value: 'a', partition: 0 })).rejects.toMatchObject({
      code: 'PRODUCER_FENCED',
    });
    await expect(producer.send('t', { value: 'b', partition: 1 })).rejects.toMatchObject({
      code: 'PRODUCER_FENCED',
    });
  });

  it('fails waiting records when the topic cannot be described', async () => {
    const node = new FakeNode();
    nodes.push(node);
    node.on('GET', /^\/v1\/topics\/nope$/, () =>
      errorReply(404, 'UNKNOWN_TOPIC', "topic 'nope' does not exist"),
    );
    const producer = node.client().producer({ lingerMs: 0, idempotence: true });
    await expect(producer.send('nope', { value: 'a' })).rejects.toMatchObject({ code: 'UNKNOWN_TOPIC' });
    await producer.flush();
  });
});
