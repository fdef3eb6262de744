// The Consumer reads every partition from its position, stops at the high watermark when not
// following, resets on OFFSET_OUT_OF_RANGE, passes minOffset and consistency, and, above all,
// commits only what the application finished: never a record that was only fetched or delivered.
// (Group membership: group.test.ts.)

import { afterEach, describe, expect, it } from 'vitest';
import type { ConsumedRecord, FetchedRecord, GroupOffset, Raftlog } from '../../src/client/index.js';
import { RaftlogError } from '../../src/client/index.js';
import { errorReply, FakeNode, type FakeRequest, topicDescription } from './fake-node.js';

const nodes: FakeNode[] = [];
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.close();
});

interface LogNodeOptions {
  logStartOffset?: number;
  /** Records per partition that are committed (the rest is "not replicated here yet"). */
  committedOffsets?: GroupOffset[];
  keys?: boolean;
}

/** A node holding `logs[p]` committed values per partition, serving fetches by offset and limit. */
function logNode(logs: string[][], options: LogNodeOptions = {}) {
  const { logStartOffset = 0 } = options;
  const node = new FakeNode();
  nodes.push(node);
  const commits: Array<{ offsets: GroupOffset[] }> = [];
  node.on('GET', /^\/v1\/topics\/t$/, () => ({ status: 200, body: topicDescription('t', logs.length) }));
  node.on('GET', /^\/v1\/topics\/t\/partitions\/(\d+)\/records$/, (request, match) => {
    const log = logs[Number(match[1])]!;
    const highWatermark = log.length;
    const raw = request.query.offset ?? 'earliest';
    const offset = raw === 'earliest' ? logStartOffset : raw === 'latest' ? highWatermark : Number(raw);
    if (offset < logStartOffset || offset > highWatermark) {
      return errorReply(416, 'OFFSET_OUT_OF_RANGE', 'out of range', {
        details: { logStartOffset, highWatermark },
      });
    }
    const limit = Number(request.query.limit ?? 1000);
    const records: FetchedRecord[] = log.slice(offset, offset + limit).map((value, i) => ({
      offset: offset + i,
      value,
      timestamp: 0,
      key: options.keys ? `k${offset + i}` : null,
      headers: null,
    }));
    return {
      status: 200,
      body: { records, nextOffset: offset + records.length, highWatermark, logStartOffset },
    };
  });
  node.on('GET', /^\/v1\/groups\/g\/offsets$/, () => ({
    status: 200,
    body: { offsets: options.committedOffsets ?? [] },
  }));
  node.on('PUT', /^\/v1\/groups\/g\/offsets$/, (request) => {
    commits.push(request.body as { offsets: GroupOffset[] });
    return { status: 204 };
  });
  return { node, commits, fetches: () => node.sent('GET', /records$/) };
}

function label(record: ConsumedRecord<unknown>): string {
  return `${record.partition}:${record.offset}:${String(record.value)}`;
}

async function collect(source: AsyncIterable<ConsumedRecord<unknown>>): Promise<string[]> {
  const out: string[] = [];
  for await (const record of source) out.push(label(record));
  return out.sort();
}

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function client(node: FakeNode): Raftlog {
  return node.client();
}

describe('reading', () => {
  it('reads every partition up to its high watermark and stops (follow: false)', async () => {
    const { node } = logNode([['a', 'b'], ['c'], []]);
    const consumer = client(node).consumer({ topic: 't' });
    expect(await collect(consumer.records({ follow: false }))).toEqual(['0:0:a', '0:1:b', '1:0:c']);
  });

  it('starts from latest, from an offset, or on chosen partitions; seek before reading', async () => {
    const { node } = logNode([
      ['a', 'b'],
      ['c', 'd', 'e'],
    ]);
    const latest = client(node).consumer({ topic: 't', from: 'latest' });
    expect(await collect(latest.records({ follow: false }))).toEqual([]);
    const fromOne = client(node).consumer({ topic: 't', from: 1, partitions: [1] });
    expect(await collect(fromOne.records({ follow: false }))).toEqual(['1:1:d', '1:2:e']);
    const sought = client(node).consumer({ topic: 't' });
    sought.seek(1, 2);
    expect(await collect(sought.records({ follow: false }))).toEqual(['0:0:a', '0:1:b', '1:2:e']);
  });

  it('delivers records in order per partition, with the consumed shape', async () => {
    const { node } = logNode([['a', 'b', 'c']], { keys: true });
    const consumer = client(node).consumer({ topic: 't', limit: 2 });
    const records: ConsumedRecord[] = [];
    for await (const record of consumer.records({ follow: false })) records.push(record);
    expect(records[0]).toEqual({
      topic: 't',
      partition: 0,
      offset: 0,
      key: 'k0',
      value: 'a',
      headers: null,
      timestamp: 0,
    });
    expect(records.map((r) => r.offset)).toEqual([0, 1, 2]);
  });

  it('decodes JSON values with json: true, bytes with binary: true', async () => {
    const { node } = logNode([['{"n":1}', '[2]']]);
    const json = client(node).consumer<{ n: number } | number[]>({ topic: 't', json: true });
    const values: unknown[] = [];
    for await (const record of json.records({ follow: false })) values.push(record.value);
    expect(values).toEqual([{ n: 1 }, [2]]);
    expect(node.sent('GET', /records$/)[0]!.query.encoding).toBeUndefined();

    const { node: bytesNode } = logNode([[Buffer.from([0, 255]).toString('base64')]]);
    const binary = client(bytesNode).consumer({ topic: 't', binary: true });
    for await (const record of binary.records({ follow: false })) {
      expect(record.value).toBeInstanceOf(Uint8Array);
      expect([...record.value]).toEqual([0, 255]);
    }
    expect(bytesNode.sent('GET', /records$/)[0]!.query.encoding).toBe('base64');
  });

  it('fails the read with INVALID_JSON naming the record; the next read goes on after it', async () => {
    const { node } = logNode([['{"n":1}', 'not json', '{"n":3}']]);
    const consumer = client(node).consumer({ topic: 't', json: true });
    const seen: unknown[] = [];
    const error = await (async () => {
      for await (const record of consumer.records({ follow: false })) seen.push(record.value);
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RaftlogError);
    expect(error).toMatchObject({ code: 'INVALID_JSON', details: { partition: 0, offset: 1 } });
    for await (const record of consumer.records({ follow: false })) seen.push(record.value);
    expect(seen).toEqual([{ n: 1 }, { n: 3 }]);
  });

  it('follows with long-polls until the signal aborts, then ends without error', async () => {
    const { node } = logNode([['a']]);
    const consumer = client(node).consumer({ topic: 't', waitMs: 50 });
    const controller = new AbortController();
    const seen: string[] = [];
    for await (const record of consumer.records({ signal: controller.signal })) {
      seen.push(record.value);
      controller.abort();
    }
    expect(seen).toEqual(['a']);
    expect(node.sent('GET', /records$/)[0]!.query.waitMs).toBe('50');
  });

  it('iterates with for await on the consumer itself', async () => {
    const { node } = logNode([['a', 'b']]);
    const consumer = client(node).consumer({ topic: 't' });
    const seen: string[] = [];
    for await (const record of consumer) {
      seen.push(record.value);
      if (seen.length === 2) break;
    }
    expect(seen).toEqual(['a', 'b']);
    await consumer.close();
  });

  it('gives batches: one fetch per partition at a time', async () => {
    const { node } = logNode([['a', 'b', 'c'], ['d']]);
    const consumer = client(node).consumer({ topic: 't', limit: 2 });
    const batches: string[][] = [];
    for await (const batch of consumer.batches({ follow: false })) {
      batches.push(batch.records.map((r) => label(r)));
      expect(batch.topic).toBe('t');
    }
    expect(batches.sort()).toEqual([['0:0:a', '0:1:b'], ['0:2:c'], ['1:0:d']].sort());
  });

  it('refuses a second reader while one is reading', async () => {
    const { node } = logNode([['a', 'b']]);
    const consumer = client(node).consumer({ topic: 't' });
    const iterator = consumer.records();
    await iterator.next();
    expect(() => consumer.records()).toThrow(/one loop at a time/);
    await iterator.return?.();
    expect(() => consumer.records()).not.toThrow();
  });

  it('restarts from the log start after OFFSET_OUT_OF_RANGE below it (retention)', async () => {
    const { node } = logNode([['gone', 'gone', 'c', 'd']], { logStartOffset: 2 });
    const consumer = client(node).consumer({ topic: 't', from: 0 });
    expect(await collect(consumer.records({ follow: false }))).toEqual(['0:2:c', '0:3:d']);
  });

  it("surfaces OFFSET_OUT_OF_RANGE with onOutOfRange: 'error'", async () => {
    const { node } = logNode([['gone', 'b']], { logStartOffset: 1 });
    const consumer = client(node).consumer({ topic: 't', from: 0, onOutOfRange: 'error' });
    await expect(collect(consumer.records({ follow: false }))).rejects.toMatchObject({
      code: 'OFFSET_OUT_OF_RANGE',
    });
  });

  it('waits for a replica that is behind instead of resetting (an offset past its high watermark)', async () => {
    const logs = [['a']];
    const { node } = logNode(logs);
    const consumer = client(node).consumer({ topic: 't' });
    consumer.seek(0, 2); // Seen on another replica; this one has 1 record.
    const controller = new AbortController();
    const seen: string[] = [];
    const reading = (async () => {
      for await (const record of consumer.records({ signal: controller.signal })) {
        seen.push(label(record));
        controller.abort();
      }
    })();
    await until(() => node.sent('GET', /records$/).length >= 2);
    logs[0]!.push('b', 'c');
    await reading;
    expect(seen).toEqual(['0:2:c']);
  });

  it('passes consistency and minOffset until the replica has caught up', async () => {
    const { node, fetches } = logNode([['a', 'b']]);
    const consumer = client(node).consumer({
      topic: 't',
      consistency: 'linearizable',
      minOffsets: { 0: 1 },
      limit: 1,
    });
    expect(await collect(consumer.records({ follow: false }))).toEqual(['0:0:a', '0:1:b']);
    const queries = fetches().map((r) => r.query);
    expect(queries[0]).toMatchObject({ consistency: 'linearizable', minOffset: '1', offset: 'earliest' });
    expect(queries[1]).toMatchObject({ consistency: 'linearizable', offset: '1' });
    expect(queries[1]!.minOffset).toBeUndefined();
  });

  it('retries a 503 fetch and fails the read after attemptsMax', async () => {
    const node = new FakeNode();
    nodes.push(node);
    node.on('GET', /records$/, () =>
      errorReply(503, 'NO_LEADER', 'electing', { headers: { 'retry-after': '0' } }),
    );
    const consumer = client(node).consumer({
      topic: 't',
      partitions: [0],
      retry: { attemptsMax: 3, backoffMs: 1, backoffMsMax: 1 },
    });
    await expect(collect(consumer.records())).rejects.toMatchObject({ code: 'NO_LEADER' });
    expect(node.sent('GET', /records$/)).toHaveLength(3);
  });

  it('stops fetching while its buffer is full (backpressure)', async () => {
    const { node, fetches } = logNode([Array.from({ length: 50 }, (_, i) => `v${i}`)]);
    const consumer = client(node).consumer({ topic: 't', limit: 5, bufferRecordsMax: 5 });
    const iterator = consumer.records({ follow: false });
    await iterator.next();
    // Let fetching run as far as it can: it must stop at the buffer bound.
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(fetches().length).toBeLessThanOrEqual(2);
    await iterator.return?.();
  });

  it('pause() stops a partition until resume(); seek() drops what was fetched', async () => {
    const { node } = logNode([
      ['a', 'b', 'c'],
      ['x', 'y'],
    ]);
    const consumer = client(node).consumer({ topic: 't', partitions: [0, 1], limit: 1 });
    consumer.pause([1]);
    const iterator = consumer.records();
    const first = await iterator.next();
    expect(label(first.value!)).toBe('0:0:a');
    consumer.seek(0, 2);
    expect(label((await iterator.next()).value!)).toBe('0:2:c');
    expect(consumer.pausedPartitions()).toEqual([1]);
    consumer.resume([1]);
    expect(label((await iterator.next()).value!)).toBe('1:0:x');
    await iterator.return?.();
  });
});

describe('what is committed', () => {
  it('commits the offset after the last FINISHED record, never one only fetched or in hand', async () => {
    const { node, commits } = logNode([['a', 'b', 'c', 'd']]);
    const consumer = client(node).consumer({ topic: 't', group: 'g', partitions: [0], autoCommit: false });
    const iterator = consumer.records();
    expect(label((await iterator.next()).value!)).toBe('0:0:a');
    // Four records are fetched and 'a' is in hand, but nothing is finished yet.
    expect(await consumer.commit()).toEqual([]);
    expect(label((await iterator.next()).value!)).toBe('0:1:b'); // 'a' is finished now.
    expect(await consumer.commit()).toEqual([{ topic: 't', partition: 0, offset: 1 }]);
    expect(await consumer.commit()).toEqual([]); // Nothing moved since.
    await iterator.next(); // 'b' finished.
    await consumer.commit();
    expect(commits.map((c) => c.offsets[0]!.offset)).toEqual([1, 2]);
    expect(commits[0]).toEqual({ offsets: [{ topic: 't', partition: 0, offset: 1 }] });
    await iterator.return?.();
  });

  it('does not count the record in hand when the loop breaks or throws: the next loop gets it again', async () => {
    const { node, commits } = logNode([['a', 'b', 'c']]);
    const consumer = client(node).consumer({ topic: 't', group: 'g', partitions: [0], autoCommit: false });
    for await (const record of consumer.records()) if (record.value === 'b') break;
    await consumer.commit();
    expect(commits.at(-1)!.offsets[0]!.offset).toBe(1); // 'b' was in hand: not finished.
    const failed: string[] = [];
    const thrown = await (async () => {
      for await (const record of consumer.records()) {
        failed.push(record.value);
        throw new Error('handler failed');
      }
    })().catch((e: unknown) => e);
    expect(thrown).toEqual(new Error('handler failed'));
    expect(failed).toEqual(['b']); // Delivered again first.
    expect(await consumer.commit()).toEqual([]); // 'b' failed: still not finished.
    for await (const record of consumer.records()) {
      expect(record.value).toBe('b');
      consumer.markDone(record); // Finished explicitly, then leave.
      break;
    }
    expect(await consumer.commit()).toEqual([{ topic: 't', partition: 0, offset: 2 }]);
    const rest: string[] = [];
    for await (const record of consumer.records({ follow: false })) rest.push(record.value);
    expect(rest).toEqual(['c']);
  });

  it('counts the record in hand as finished when the loop ends by its signal', async () => {
    const { node } = logNode([['a', 'b', 'c']]);
    const consumer = client(node).consumer({ topic: 't', group: 'g', partitions: [0], autoCommit: false });
    const controller = new AbortController();
    for await (const record of consumer.records({ signal: controller.signal })) {
      if (record.value === 'b') controller.abort();
    }
    expect(await consumer.commit()).toEqual([{ topic: 't', partition: 0, offset: 2 }]);
  });

  it('finishes a batch when the next one is asked for', async () => {
    const { node } = logNode([['a', 'b', 'c', 'd']]);
    const consumer = client(node).consumer({
      topic: 't',
      group: 'g',
      partitions: [0],
      limit: 2,
      autoCommit: false,
    });
    const iterator = consumer.batches();
    await iterator.next();
    expect(await consumer.commit()).toEqual([]);
    await iterator.next();
    expect(await consumer.commit()).toEqual([{ topic: 't', partition: 0, offset: 2 }]);
    await iterator.return?.();
  });

  it('starts from the group offsets; a seek sets what a commit sends', async () => {
    const committedOffsets = [{ topic: 't', partition: 0, offset: 2 }];
    const { node, commits } = logNode(
      [
        ['a', 'b', 'c'],
        ['x', 'y'],
      ],
      { committedOffsets },
    );
    const consumer = client(node).consumer({ topic: 't', group: 'g', partitions: [0, 1], autoCommit: false });
    expect(await collect(consumer.records({ follow: false }))).toEqual(['0:2:c', '1:0:x', '1:1:y']);
    expect(node.sent('GET', /groups/)[0]!.query).toEqual({ topic: 't' });
    await consumer.commit();
    expect(commits[0]!.offsets).toEqual([
      { topic: 't', partition: 0, offset: 3 },
      { topic: 't', partition: 1, offset: 2 },
    ]);
    consumer.seek(1, 0);
    expect(await consumer.commit()).toEqual([{ topic: 't', partition: 1, offset: 0 }]);
  });

  it('commits automatically every intervalMs and on close()', async () => {
    const { node, commits } = logNode([['a', 'b', 'c']]);
    const consumer = client(node).consumer({
      topic: 't',
      group: 'g',
      partitions: [0],
      autoCommit: { intervalMs: 20 },
    });
    const iterator = consumer.records();
    await iterator.next();
    await iterator.next(); // 'a' finished.
    await until(() => commits.length >= 1);
    expect(commits[0]!.offsets[0]!.offset).toBe(1);
    await iterator.next(); // 'b' finished.
    await iterator.return?.();
    await consumer.close();
    expect(commits.at(-1)!.offsets[0]!.offset).toBe(2);
  });

  it('has no commit without a group', async () => {
    const { node } = logNode([['a']]);
    await expect(client(node).consumer({ topic: 't' }).commit()).rejects.toThrow(/no group/);
  });
});

describe('routing and deadlines', () => {
  it('honours timeoutMs of commit() and close()', async () => {
    const node = new FakeNode();
    nodes.push(node);
    node.on('GET', /records$/, () => ({
      status: 200,
      body: {
        records: [
          { offset: 0, value: 'a', timestamp: 0 },
          { offset: 1, value: 'b', timestamp: 0 },
        ],
        nextOffset: 2,
        highWatermark: 2,
        logStartOffset: 0,
      },
    }));
    node.on('PUT', /offsets$/, () => errorReply(503, 'NO_LEADER', 'electing'));
    node.on('GET', /offsets$/, () => ({ status: 200, body: { offsets: [] } }));
    const consumer = client(node).consumer({ topic: 't', group: 'g', partitions: [0], autoCommit: false });
    const iterator = consumer.records({ follow: false });
    await iterator.next();
    await iterator.next();
    await expect(consumer.commit({ timeoutMs: 50 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    await iterator.return?.();
    const closing = client(node).consumer({ topic: 't', group: 'g', partitions: [0] });
    const again = closing.records();
    await again.next();
    await again.next();
    await again.return?.();
    await expect(closing.close({ timeoutMs: 50 })).rejects.toMatchObject({ code: 'TIMEOUT' });
  });

  it('sends the group commit to the node it was given', async () => {
    const { node } = logNode([['a']]);
    const consumer = client(node).consumer({ topic: 't', group: 'g', partitions: [0] });
    for await (const _ of consumer.records({ follow: false })) {
      // read
    }
    await consumer.close();
    const put = node.sent('PUT', /offsets$/) as FakeRequest[];
    expect(put[0]!.origin).toBe(node.url);
  });
});
