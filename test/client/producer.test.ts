// The Producer partitions on the client (murmur2 of a key, else round-robin), batches per
// partition by linger, records and bytes; resolves send() with one offset per record in order;
// retries only what is safe, with the same sequence when idempotent (the default); stays bounded;
// and honours every call's signal and deadline.

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

describe('partitioning', () => {
  it('sends keyed records to murmur2(key) % partitions, as Kafka does', async () => {
    const { node, produced } = logNode(3);
    const producer = node.client().producer({ lingerMs: 5 });
    const keys = ['user-1', 'user-2', 'user-3', 'user-4', 'user-1', ''];
    const results = await producer.send(
      't',
      keys.map((key) => ({ key, value: key })),
    );
    keys.forEach((key, i) => {
      expect(results[i]!.partition).toBe(partitionForKey(Buffer.from(key), 3));
    });
    for (const request of produced) expect(new Set(request.records.map((r) => r.partition)).size).toBe(1);
    const binary = await producer.send('t', [{ key: new Uint8Array([1, 2, 3]), value: 'b' }]);
    expect(binary[0]!.partition).toBe(partitionForKey(new Uint8Array([1, 2, 3]), 3));
  });

  it('spreads records without a key round-robin, and honours an explicit partition', async () => {
    const { node } = logNode(3);
    const producer = node.client().producer({ lingerMs: 5 });
    const results = await producer.send('t', [
      { value: 'a' },
      { value: 'b' },
      { value: 'c' },
      { value: 'd', key: null },
      { value: 'e', partition: 2 },
    ]);
    const spread = results.slice(0, 4).map((r) => r.partition);
    expect(new Set(spread.slice(0, 3)).size).toBe(3);
    expect(spread[3]).toBe(spread[0]);
    expect(results[4]!.partition).toBe(2);
    expect(node.sent('GET', /^\/v1\/topics\/t$/)).toHaveLength(1); // Partition count cached.
  });
});

describe('batching', () => {
  it('resolves send() with one offset per record, in order, from one request per partition', async () => {
    const { node, produced } = logNode(1);
    const producer = node.client().producer({ lingerMs: 20 });
    const [first, second] = await Promise.all([
      producer.send('t', [{ value: 'a' }, { value: 'b' }]),
      producer.send('t', [{ value: 'c' }]),
    ]);
    expect(produced).toHaveLength(1);
    expect(produced[0]!.records.map((r) => r.value)).toEqual(['a', 'b', 'c']);
    expect(first).toEqual([
      { topic: 't', partition: 0, offset: 0, duplicate: false },
      { topic: 't', partition: 0, offset: 1, duplicate: false },
    ]);
    expect(second!.map((r) => r.offset)).toEqual([2]);
    expect(await producer.send('t', [])).toEqual([]);
  });

  it('sends at once with lingerMs 0, one request for what was sent in the same tick', async () => {
    const { node, produced } = logNode(1);
    const producer = node.client().producer({ lingerMs: 0 });
    await Promise.all([producer.send('t', [{ value: 'a' }]), producer.send('t', [{ value: 'b' }])]);
    expect(produced.map((p) => p.records.length)).toEqual([2]);
  });

  it('sends a batch as soon as it holds batchRecordsMax records', async () => {
    const { node, produced } = logNode(1);
    const producer = node.client().producer({ lingerMs: 60_000, batchRecordsMax: 2 });
    await producer.send(
      't',
      ['a', 'b', 'c', 'd'].map((value) => ({ value })),
    );
    expect(produced.map((p) => p.records.length)).toEqual([2, 2]);
  });

  it('splits batches at batchBytesMax (about 164 bytes per record here)', async () => {
    const { node, produced } = logNode(1);
    const producer = node.client().producer({ lingerMs: 60_000, batchBytesMax: 400 });
    const sent = producer.send(
      't',
      Array.from({ length: 4 }, () => ({ value: 'x'.repeat(100) })),
    );
    await producer.flush();
    await sent;
    expect(produced.map((p) => p.records.length)).toEqual([2, 2]);
  });

  it('flush() sends at once and waits; close() refuses new records', async () => {
    const { node, produced } = logNode(1);
    const producer = node.client().producer({ lingerMs: 60_000 });
    const sent = producer.send('t', [{ value: 'a' }]);
    await producer.flush();
    expect(produced).toHaveLength(1);
    await expect(sent).resolves.toMatchObject([{ offset: 0 }]);
    await producer.close();
    await expect(producer.send('t', [{ value: 'b' }])).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('refuses records beyond bufferBytesMax with BUFFER_FULL, and has room again once acknowledged', async () => {
    const { node } = logNode(1);
    const producer = node.client().producer({ lingerMs: 60_000, bufferBytesMax: 500 });
    const first = producer.send('t', [{ value: 'x'.repeat(300) }]);
    await expect(producer.send('t', [{ value: 'y'.repeat(300) }])).rejects.toMatchObject({
      code: 'BUFFER_FULL',
    });
    await producer.flush();
    await first;
    const again = producer.send('t', [{ value: 'y'.repeat(300) }]);
    await producer.flush();
    await expect(again).resolves.toMatchObject([{ offset: 1 }]);
  });

  it('sends Uint8Array values and keys as base64, and JSON values with json: true', async () => {
    const { node, produced } = logNode(1);
    const producer = node.client().producer({ lingerMs: 0 });
    await producer.send('t', [{ key: 'k', value: new Uint8Array([0, 255]) }, { value: 'text' }]);
    expect(produced[0]).toMatchObject({
      encoding: 'base64',
      records: [
        { key: Buffer.from('k').toString('base64'), value: 'AP8=' },
        { value: Buffer.from('text').toString('base64') },
      ],
    });
    const json = node.client().producer({ lingerMs: 0, json: true });
    await json.send('t', [{ value: { id: 1, tags: ['a'] }, headers: { trace: 'abc' } }]);
    expect(produced[1]!.records[0]).toMatchObject({
      value: '{"id":1,"tags":["a"]}',
      headers: { trace: 'abc' },
    });
    expect(produced[1]!.encoding).toBeUndefined();
  });

  it('refuses a record whose value is not a string or bytes, naming it', async () => {
    const { node, produced } = logNode(1);
    const producer = node.client().producer({ lingerMs: 0 });
    const bad = [{ value: 'ok' }, { value: 42 }] as unknown as Array<{ value: string }>;
    await expect(producer.send('t', bad)).rejects.toThrow(/records\[1\]: value must be a string/);
    expect(produced).toHaveLength(0);
  });
});

describe('deadlines and signals', () => {
  it('send() rejects at its timeoutMs with TIMEOUT; its unsent records are dropped', async () => {
    const { node, produced } = logNode(1);
    const producer = node.client().producer({ lingerMs: 200 });
    const error = await producer.send('t', [{ value: 'a' }], { timeoutMs: 20 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RaftlogError);
    expect(error).toMatchObject({ code: 'TIMEOUT' });
    await producer.send('t', [{ value: 'b' }]);
    expect(produced.flatMap((p) => p.records.map((r) => r.value))).toEqual(['b']);
  });

  it('send() rejects with the abort reason', async () => {
    const { node } = logNode(1);
    const producer = node.client().producer({ lingerMs: 200 });
    const controller = new AbortController();
    const sent = producer.send('t', [{ value: 'a' }], { signal: controller.signal });
    controller.abort(new Error('user gave up'));
    await expect(sent).rejects.toThrow('user gave up');
    await producer.close();
  });

  it('close() with a deadline gives up on records it cannot deliver', async () => {
    const { node, failWith } = logNode(1);
    const noLeader = () => errorReply(503, 'NO_LEADER', 'electing', { headers: { 'retry-after': '0.05' } });
    failWith(...Array.from({ length: 100 }, () => noLeader));
    const producer = node.client().producer({ lingerMs: 0 });
    const sent = producer.send('t', [{ value: 'a' }]).catch((e: unknown) => e);
    await expect(producer.close({ timeoutMs: 100 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(await sent).toMatchObject({ code: 'CLOSED' });
  });

  it('flush() honours its signal', async () => {
    const { node, failWith } = logNode(1);
    failWith(...Array.from({ length: 100 }, () => () => errorReply(503, 'NO_LEADER', 'electing')));
    const producer = node.client().producer({ lingerMs: 0 });
    const sent = producer.send('t', [{ value: 'a' }]).catch((e: unknown) => e);
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('stop')), 30);
    await expect(producer.flush({ signal: controller.signal })).rejects.toThrow('stop');
    await producer.close({ timeoutMs: 10 }).catch(() => undefined);
    await sent;
  });
});

describe('retries without idempotence', () => {
  it('retries a 503 after its retry-after', async () => {
    const { node, produced, failWith } = logNode(1);
    failWith(() => errorReply(503, 'NO_LEADER', 'electing', { headers: { 'retry-after': '0.05' } }));
    const producer = node.client().producer({ lingerMs: 0, idempotent: false, retry: fastRetry });
    const started = Date.now();
    await expect(producer.send('t', [{ value: 'a' }])).resolves.toMatchObject([{ offset: 0 }]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(produced).toHaveLength(1);
    expect(produced[0]!.producer).toBeUndefined();
  });

  it('retries a refused connection (never sent) but not a 504 or a reset (could duplicate)', async () => {
    const { node, produced, failWith } = logNode(1);
    failWith(() => {
      throw connectionRefused();
    });
    const producer = node.client().producer({ lingerMs: 0, idempotent: false, retry: fastRetry });
    await expect(producer.send('t', [{ value: 'a' }])).resolves.toMatchObject([{ offset: 0 }]);
    failWith(() => errorReply(504, 'TIMEOUT', 'not committed in time'));
    await expect(producer.send('t', [{ value: 'b' }])).rejects.toMatchObject({ code: 'TIMEOUT' });
    failWith(() => {
      throw connectionReset();
    });
    await expect(producer.send('t', [{ value: 'c' }])).rejects.toMatchObject({ code: 'NETWORK_ERROR' });
    expect(produced.map((p) => p.records[0]!.value)).toEqual(['a']);
  });

  it('retries BUSY and THROTTLED (nothing appended)', async () => {
    const { node, produced, failWith } = logNode(1);
    failWith(
      () => errorReply(503, 'BUSY', 'draining', { headers: { 'retry-after': '0' } }),
      () => errorReply(429, 'THROTTLED', 'full', { headers: { 'retry-after': '0' } }),
    );
    const producer = node.client().producer({ lingerMs: 0, idempotent: false, retry: fastRetry });
    await expect(producer.send('t', [{ value: 'a' }])).resolves.toMatchObject([{ offset: 0 }]);
    expect(produced).toHaveLength(1);
  });

  it('gives up after attemptsMax', async () => {
    const { node, failWith } = logNode(1);
    const noLeader = () => errorReply(503, 'NO_LEADER', 'electing', { headers: { 'retry-after': '0' } });
    failWith(noLeader, noLeader, noLeader, noLeader);
    const producer = node.client().producer({ lingerMs: 0, retry: { ...fastRetry, attemptsMax: 3 } });
    await expect(producer.send('t', [{ value: 'a' }])).rejects.toMatchObject({ code: 'NO_LEADER' });
    expect(node.sent('POST', /records$/)).toHaveLength(3);
  });

  it('does not retry a client error', async () => {
    const { node, failWith } = logNode(1);
    failWith(() => errorReply(413, 'RECORD_TOO_LARGE', 'record over 1 MiB'));
    const producer = node.client().producer({ lingerMs: 0, retry: fastRetry });
    await expect(producer.send('t', [{ value: 'a' }])).rejects.toMatchObject({ code: 'RECORD_TOO_LARGE' });
    expect(node.sent('POST', /records$/)).toHaveLength(1);
  });
});

describe('idempotence (the default)', () => {
  it('numbers requests per partition with the producer id and epoch', async () => {
    const { node, produced } = logNode(3);
    const producer = node.client().producer({ lingerMs: 5, idempotent: { id: 'p-1', epoch: 2 } });
    const records = ['user-1', 'user-2', 'user-3', 'user-4', 'user-1'].map((key) => ({ key, value: key }));
    await producer.send('t', records);
    for (const request of produced) expect(request.producer).toEqual({ id: 'p-1', epoch: 2, sequence: 0 });
    // A second round continues each partition's sequence where its first request ended.
    const before = new Map(produced.map((r) => [r.records[0]!.partition, r.records.length]));
    produced.length = 0;
    await producer.send('t', records);
    for (const request of produced) {
      expect(request.producer!.sequence).toBe(before.get(request.records[0]!.partition));
    }
    const anonymous = node.client().producer({ lingerMs: 0 });
    await anonymous.send('t', [{ value: 'x' }]);
    expect(produced.at(-1)!.producer).toMatchObject({
      id: expect.stringMatching(/^p-/),
      epoch: 0,
      sequence: 0,
    });
  });

  it('retries a 504, a broken connection and a 503 with the same sequence', async () => {
    const { node, failWith } = logNode(1);
    const producer = node.client().producer({ lingerMs: 0, idempotent: { id: 'p-1' }, retry: fastRetry });
    await producer.send('t', [{ value: 'a' }]);
    failWith(
      () => errorReply(504, 'TIMEOUT', 'not committed in time'),
      () => {
        throw connectionReset();
      },
      () => errorReply(503, 'NOT_ENOUGH_REPLICAS', 'no quorum', { headers: { 'retry-after': '0' } }),
    );
    await expect(producer.send('t', [{ value: 'b' }])).resolves.toMatchObject([{ partition: 0, offset: 1 }]);
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
    const producer = node.client().producer({ lingerMs: 0 });
    await expect(producer.send('t', [{ value: 'a', partition: 0 }])).resolves.toEqual([
      { topic: 't', partition: 0, offset: 7, duplicate: true },
    ]);
  });

  it('fails the partition with PRODUCER_SEQUENCE_UNKNOWN once retries end with the outcome unknown', async () => {
    const { node, produced, failWith } = logNode(2);
    const timeout = () => errorReply(504, 'TIMEOUT', 'not committed in time');
    failWith(timeout, timeout);
    const producer = node.client().producer({ lingerMs: 0, retry: { ...fastRetry, attemptsMax: 2 } });
    await expect(producer.send('t', [{ value: 'a', partition: 0 }])).rejects.toMatchObject({
      code: 'TIMEOUT',
    });
    const next = await producer.send('t', [{ value: 'b', partition: 0 }]).catch((e: unknown) => e);
    expect(next).toBeInstanceOf(RaftlogError);
    expect(next).toMatchObject({ code: 'PRODUCER_SEQUENCE_UNKNOWN' });
    expect((next as Error).message).toContain('sequences 0..0');
    // Other partitions are unaffected.
    await expect(producer.send('t', [{ value: 'c', partition: 1 }])).resolves.toMatchObject([
      { partition: 1 },
    ]);
    expect(produced).toHaveLength(1);
  });

  it('keeps the sequence after a rejection that appended nothing', async () => {
    const { node, failWith } = logNode(1);
    failWith(() => errorReply(413, 'RECORD_TOO_LARGE', 'too large'));
    const producer = node.client().producer({ lingerMs: 0, retry: fastRetry });
    await expect(producer.send('t', [{ value: 'a' }])).rejects.toMatchObject({ code: 'RECORD_TOO_LARGE' });
    await producer.send('t', [{ value: 'b' }]);
    const sequences = node.sent('POST', /records$/).map((r) => (r.body as ProduceRequest).producer!.sequence);
    expect(sequences).toEqual([0, 0]);
  });

  it('stops the whole producer once fenced', async () => {
    const { node, failWith } = logNode(2);
    failWith(() => errorReply(409, 'PRODUCER_FENCED', 'epoch 1 exists'));
    const producer = node.client().producer({ lingerMs: 0 });
    await expect(producer.send('t', [{ value: 'a', partition: 0 }])).rejects.toMatchObject({
      code: 'PRODUCER_FENCED',
    });
    await expect(producer.send('t', [{ value: 'b', partition: 1 }])).rejects.toMatchObject({
      code: 'PRODUCER_FENCED',
    });
  });

  it('fails waiting records when the topic cannot be described', async () => {
    const node = new FakeNode();
    nodes.push(node);
    node.on('GET', /^\/v1\/topics\/nope$/, () =>
      errorReply(404, 'UNKNOWN_TOPIC', "topic 'nope' does not exist"),
    );
    const producer = node.client().producer({ lingerMs: 0 });
    await expect(producer.send('nope', [{ value: 'a' }])).rejects.toMatchObject({ code: 'UNKNOWN_TOPIC' });
    await producer.flush();
  });
});
