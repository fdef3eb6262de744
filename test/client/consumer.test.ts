// The Consumer reads every partition from its position, stops at the high watermark when not
// following, resets on OFFSET_OUT_OF_RANGE, passes minOffset and consistency, and uses group
// offsets.

import { afterEach, describe, expect, it } from 'vitest';
import type { ConsumedRecord, FetchedRecord } from '../../src/client/index.js';
import { errorReply, FakeNode, topicDescription } from './fake-node.js';

const nodes: FakeNode[] = [];
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.close();
});

/** A node holding `logs[p]` committed values per partition, serving fetches by offset and limit. */
function logNode(logs: string[][], logStartOffset = 0) {
  const node = new FakeNode();
  nodes.push(node);
  node.on('GET', /^\/v1\/topics\/t$/, () => ({ status: 200, body: topicDescription('t', logs.length) }));
  node.on('GET', /^\/v1\/topics\/t\/partitions\/(\d+)\/records$/, (request, match) => {
    const log = logs[Number(match[1])]!;
    const highWatermark = log.length;
    const raw = request.query.offset ?? 'earliest';
    const offset = raw === 'earliest' ? logStartOffset : raw === 'latest' ? highWatermark : Number(raw);
    if (offset < logStartOffset) {
      return errorReply(416, 'OFFSET_OUT_OF_RANGE', 'below log start', {
        details: { logStartOffset, highWatermark },
      });
    }
    const limit = Number(request.query.limit ?? 1000);
    const records: FetchedRecord[] = log
      .slice(offset, offset + limit)
      .map((value, i) => ({ offset: offset + i, value, timestamp: 0, key: null }));
    return {
      status: 200,
      body: { records, nextOffset: offset + records.length, highWatermark, logStartOffset },
    };
  });
  return node;
}

async function collect(source: AsyncIterable<ConsumedRecord>): Promise<string[]> {
  const out: string[] = [];
  for await (const record of source) out.push(`${record.partition}:${record.offset}:${record.value}`);
  return out.sort();
}

describe('Consumer', () => {
  it('reads every partition up to its high watermark and stops (follow: false)', async () => {
    const node = logNode([['a', 'b', 'c'], [], ['x']]);
    const consumer = node.client().consumer({ topic: 't', limit: 2 });
    expect(await collect(consumer.records({ follow: false }))).toEqual(['0:0:a', '0:1:b', '0:2:c', '2:0:x']);
    expect(consumer.positions()).toEqual(
      new Map([
        [0, 3],
        [1, 0],
        [2, 1],
      ]),
    );
    // Not following: every fetch asked for no long-poll.
    expect(node.sent('GET', /records$/).every((r) => r.query.waitMs === '0')).toBe(true);
  });

  it('starts from latest, from an offset, or on chosen partitions', async () => {
    const node = logNode([
      ['a', 'b', 'c'],
      ['x', 'y'],
    ]);
    expect(
      await collect(node.client().consumer({ topic: 't', from: 'latest' }).records({ follow: false })),
    ).toEqual([]);
    expect(await collect(node.client().consumer({ topic: 't', from: 1 }).records({ follow: false }))).toEqual(
      ['0:1:b', '0:2:c', '1:1:y'],
    );
    const one = node.client().consumer({ topic: 't', partitions: [1] });
    expect(await collect(one.records({ follow: false }))).toEqual(['1:0:x', '1:1:y']);
  });

  it('follows with long-polls until the signal aborts, then ends without error', async () => {
    const node = logNode([['a']]);
    const consumer = node.client().consumer({ topic: 't', waitMs: 50 });
    const controller = new AbortController();
    const seen: string[] = [];
    for await (const record of consumer.records({ signal: controller.signal })) {
      seen.push(record.value);
      controller.abort();
    }
    expect(seen).toEqual(['a']);
    expect(node.sent('GET', /records$/)[0]!.query.waitMs).toBe('50');
  });

  it('restarts from the log start after OFFSET_OUT_OF_RANGE (retention)', async () => {
    const node = logNode([['gone', 'gone', 'c', 'd']], 2);
    const consumer = node.client().consumer({ topic: 't', from: 0 });
    expect(await collect(consumer.records({ follow: false }))).toEqual(['0:2:c', '0:3:d']);
  });

  it("surfaces OFFSET_OUT_OF_RANGE with onOutOfRange: 'error'", async () => {
    const node = logNode([['gone', 'b']], 1);
    const consumer = node.client().consumer({ topic: 't', from: 0, onOutOfRange: 'error' });
    await expect(collect(consumer.records({ follow: false }))).rejects.toMatchObject({
      code: 'OFFSET_OUT_OF_RANGE',
    });
  });

  it('passes consistency and minOffset until the replica has caught up', async () => {
    const node = logNode([['a', 'b']]);
    const consumer = node.client().consumer({
      topic: 't',
      consistency: 'linearizable',
      minOffsets: { 0: 1 },
      waitMs: 10,
    });
    await consumer.poll();
    await consumer.poll();
    const queries = node.sent('GET', /records$/).map((r) => r.query);
    expect(queries[0]).toMatchObject({ consistency: 'linearizable', minOffset: '1', offset: 'earliest' });
    expect(queries[1]).toMatchObject({ consistency: 'linearizable', offset: '2' });
    expect(queries[1]!.minOffset).toBeUndefined();
  });

  it('retries a 503 fetch and fails after attemptsMax', async () => {
    const node = new FakeNode();
    nodes.push(node);
    node.on('GET', /records$/, () => errorReply(503, 'NO_LEADER', 'electing'));
    const consumer = node
      .client()
      .consumer({ topic: 't', partitions: [0], retry: { attemptsMax: 3, backoffMs: 1, backoffMsMax: 1 } });
    await expect(consumer.poll()).rejects.toMatchObject({ code: 'NO_LEADER' });
    expect(node.sent('GET', /records$/)).toHaveLength(3);
  });

  it('starts from committed group offsets and commits its positions', async () => {
    const node = logNode([
      ['a', 'b', 'c'],
      ['x', 'y'],
    ]);
    node.on('GET', /^\/v1\/groups\/g\/offsets$/, () => ({
      status: 200,
      body: { offsets: [{ topic: 't', partition: 0, offset: 2 }] },
    }));
    node.on('PUT', /^\/v1\/groups\/g\/offsets$/, () => ({ status: 204 }));
    const consumer = node.client().consumer({ topic: 't', group: 'g' });
    expect(await collect(consumer.records({ follow: false }))).toEqual(['0:2:c', '1:0:x', '1:1:y']);
    await consumer.commit();
    expect(node.sent('GET', /groups/)[0]!.query).toEqual({ topic: 't' });
    expect(node.sent('PUT', /groups/)[0]!.body).toEqual({
      offsets: [
        { topic: 't', partition: 0, offset: 3 },
        { topic: 't', partition: 1, offset: 2 },
      ],
    });
  });

  it('pauses fetching while its buffer is full', async () => {
    const node = logNode([Array.from({ length: 50 }, (_, i) => `v${i}`)]);
    const consumer = node.client().consumer({ topic: 't', limit: 5, bufferRecordsMax: 5 });
    const iterator = consumer.records({ follow: false })[Symbol.asyncIterator]();
    await iterator.next();
    // Let the fetch loop run as far as it can: it must stop at the buffer bound.
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(node.sent('GET', /records$/).length).toBeLessThanOrEqual(2);
    await iterator.return?.();
  });
});
