// `raftlog produce` (argument or stdin lines) and `raftlog tail` (to the high watermark, or
// following over the stream route with a fall back to long-poll fetch).

import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.js';
import type { ProduceRequest } from '../../src/client/index.js';
import type { FetchedRecord } from '../../src/wire/types.js';
import { errorReply, FakeNode, topicDescription } from '../client/fake-node.js';
import { TestIo, until } from './cli-io.js';

const nodes: FakeNode[] = [];
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.close();
});

/** A node that appends produced records to per-partition logs (partition 0 unless given). */
function logNode(partitions = 2) {
  const node = new FakeNode();
  nodes.push(node);
  const logs: FetchedRecord[][] = Array.from({ length: partitions }, () => []);
  node.on('GET', /^\/v1\/topics\/t$/, () => ({ status: 200, body: topicDescription('t', partitions) }));
  node.on('POST', /^\/v1\/topics\/t\/records$/, (request) => {
    const body = request.body as ProduceRequest;
    const offsets = body.records.map((record) => {
      const partition = record.partition ?? 0;
      const log = logs[partition]!;
      log.push({ offset: log.length, key: record.key ?? null, value: record.value, timestamp: 1 });
      return { partition, offset: log.length - 1 };
    });
    return { status: 200, body: { offsets, duplicate: false } };
  });
  node.on('GET', /^\/v1\/topics\/t\/partitions\/(\d+)\/records$/, (request, match) => {
    const log = logs[Number(match[1])]!;
    const raw = request.query.offset ?? 'earliest';
    const offset = raw === 'earliest' ? 0 : raw === 'latest' ? log.length : Number(raw);
    const records = log
      .slice(offset, offset + Number(request.query.limit ?? 1000))
      .map((record) => (request.query.encoding === 'base64' ? base64Record(record) : record));
    return {
      status: 200,
      body: { records, nextOffset: offset + records.length, highWatermark: log.length, logStartOffset: 0 },
    };
  });
  return { node, logs };
}

/** The record as the server sends it with encoding=base64 (tail reads bytes). */
function base64Record(record: FetchedRecord): FetchedRecord {
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  return { ...record, key: record.key == null ? record.key : b64(record.key), value: b64(record.value) };
}

describe('produce', () => {
  it('produces VALUE as one record with --key and --partition, printing partition:offset', async () => {
    const { node, logs } = logNode();
    const io = new TestIo({ dispatcher: node.agent });
    expect(await runCli(['produce', 't', 'hello', '--key', 'user-1', '--partition', '1'], io)).toBe(0);
    expect(io.out).toBe('1:0\n');
    expect(node.requests.at(-1)!.body).toMatchObject({
      records: [{ value: 'hello', key: 'user-1', partition: 1 }],
    });
    expect(logs[1]!.map((r) => r.value)).toEqual(['hello']);
  });

  it('produces one record per stdin line, split anywhere across chunks, with CRLF', async () => {
    const { node, logs } = logNode(1);
    const io = new TestIo({ dispatcher: node.agent, stdin: ['a\nb', 'b\r\n\nc'] });
    expect(await runCli(['produce', 't'], io)).toBe(0);
    // A blank line is an empty record, as in Kafka's console producer; no extra record at the end.
    expect(logs[0]!.map((r) => r.value)).toEqual(['a', 'bb', '', 'c']);
    expect(io.out).toBe('0:0\n0:1\n0:2\n0:3\n');
  });

  it('prints nothing for an empty stdin', async () => {
    const { node } = logNode(1);
    const io = new TestIo({ dispatcher: node.agent, stdin: [] });
    expect(await runCli(['produce', 't'], io)).toBe(0);
    expect(io.out).toBe('');
    expect(node.sent('POST', /records$/)).toEqual([]);
  });

  it('batches many lines into few requests and prints a summary', async () => {
    const { node } = logNode(1);
    const lines = Array.from({ length: 2500 }, (_, i) => `line-${i}`).join('\n');
    const io = new TestIo({ dispatcher: node.agent, stdin: [lines] });
    expect(await runCli(['produce', 't'], io)).toBe(0);
    expect(io.outLines).toEqual([
      "produced 2500 records to 't'",
      'partition 0: 2500 records, offsets 0..2499',
    ]);
    const requests = node.sent('POST', /records$/);
    expect(requests.length).toBeLessThanOrEqual(5);
    expect(requests.every((r) => (r.body as ProduceRequest).records.length <= 1000)).toBe(true);
  });

  it('prints one JSON line per record with --json', async () => {
    const { node } = logNode(1);
    const io = new TestIo({ dispatcher: node.agent, stdin: ['x\ny\n'] });
    expect(await runCli(['produce', 't', '--json'], io)).toBe(0);
    expect(io.outLines.map((line) => JSON.parse(line))).toEqual([
      { topic: 't', partition: 0, offset: 0, duplicate: false },
      { topic: 't', partition: 0, offset: 1, duplicate: false },
    ]);
  });

  it('refuses a line over 1 MiB with one line and exit 1', async () => {
    const { node } = logNode(1);
    const io = new TestIo({ dispatcher: node.agent, stdin: ['ok\n', 'x'.repeat(1024 * 1024 + 1)] });
    expect(await runCli(['produce', 't'], io)).toBe(1);
    expect(io.out).toBe('0:0\n');
    expect(io.errLines).toHaveLength(2);
    expect(io.errLines[0]).toMatch(
      /^raftlog: produced 1 record \(2 B\) in .*; line 1 was acknowledged; nothing from line 2 on was sent$/,
    );
    expect(io.errLines[1]).toBe('raftlog: line 2 is longer than 1048576 bytes');
  });

  it('stops at the first failed batch and exits 1', async () => {
    const node = new FakeNode();
    nodes.push(node);
    node.on('GET', /^\/v1\/topics\/t$/, () => ({ status: 200, body: topicDescription('t', 1) }));
    node.on('POST', /records$/, () => errorReply(404, 'UNKNOWN_TOPIC', "topic 't' does not exist"));
    const io = new TestIo({ dispatcher: node.agent, stdin: ['a\nb\n'] });
    expect(await runCli(['produce', 't'], io)).toBe(1);
    expect(io.errLines).toHaveLength(2);
    expect(io.errLines[0]).toMatch(
      /^raftlog: produced 0 records .*; 2 of the 2 records from line 1 on were not acknowledged$/,
    );
    expect(io.errLines[1]).toBe("raftlog: line 1: topic 't' does not exist (UNKNOWN_TOPIC)");
  });
});

describe('tail', () => {
  function seeded() {
    const fixture = logNode(2);
    fixture.logs[0]!.push(
      { offset: 0, key: 'k', value: 'a', timestamp: 1 },
      { offset: 1, key: null, value: 'b\nc', timestamp: 2 },
    );
    fixture.logs[1]!.push({ offset: 0, value: 'x', timestamp: 3 });
    return fixture;
  }

  it('prints every partition from earliest to the high watermark and exits 0', async () => {
    const { node } = seeded();
    const io = new TestIo({ dispatcher: node.agent });
    expect(await runCli(['tail', 't'], io)).toBe(0);
    expect(io.outLines.sort()).toEqual(['0:0 k a', '0:1 - b\\nc', '1:0 - x']);
  });

  it('honours --partition and --from OFFSET, and prints NDJSON with --json', async () => {
    const { node } = seeded();
    const io = new TestIo({ dispatcher: node.agent });
    expect(await runCli(['tail', 't', '--partition', '0', '--from', '1', '--json'], io)).toBe(0);
    expect(io.outLines.map((line) => JSON.parse(line))).toEqual([
      { partition: 0, offset: 1, timestamp: 2, key: null, value: 'b\nc', headers: null },
    ]);
    expect(node.sent('GET', /partitions\/1\//)).toEqual([]);
  });

  it('--from latest prints nothing without --follow', async () => {
    const { node } = seeded();
    const io = new TestIo({ dispatcher: node.agent });
    expect(await runCli(['tail', 't', '--from', 'latest'], io)).toBe(0);
    expect(io.out).toBe('');
  });

  it('--follow uses the stream route when the server has it', async () => {
    const { node } = seeded();
    node.on('GET', /^\/v1\/topics\/t\/stream$/, () => ({
      status: 200,
      body: '{"partition":1,"offset":0,"value":"eA==","timestamp":3}\n',
      headers: { 'content-type': 'application/x-ndjson' },
    }));
    const io = new TestIo({ dispatcher: node.agent });
    const done = runCli(['tail', 't', '--follow', '--from', 'earliest'], io);
    // The mock ends the stream after one line: tail says so and goes on by fetch.
    await until(() => io.err.includes('following by fetch'), 'the switch to fetch');
    await until(() => io.outLines.includes('0:1 - b\\nc'), 'partition 0 by fetch');
    expect(io.interrupt('SIGINT')).toBe(true);
    expect(await done).toBe(0);
    expect(node.sent('GET', /stream$/)[0]!.query).toEqual({ offset: 'earliest', encoding: 'base64' });
    // Partition 1 continued after what the stream had shown: no duplicate of 1:0.
    expect(io.outLines.filter((line) => line === '1:0 - x')).toHaveLength(1);
  });

  it('--follow falls back to long-poll fetch when the stream route is missing, until Ctrl-C', async () => {
    const { node, logs } = seeded();
    const io = new TestIo({ dispatcher: node.agent });
    const done = runCli(['tail', 't', '--follow'], io);
    await until(() => node.sent('GET', /records$/).length >= 2, 'the first fetches');
    // --follow starts at latest: only records produced from now on appear.
    logs[1]!.push({ offset: 1, value: 'new', timestamp: 4 });
    await until(() => io.out.includes('1:1 - new'), 'the new record');
    expect(io.outLines).toEqual(['1:1 - new']);
    expect(io.err).toBe(''); // A missing route is not worth a message.
    const fetch = node.sent('GET', /records$/)[0]!;
    expect(fetch.query).toMatchObject({ offset: 'latest', waitMs: '5000' });
    io.interrupt('SIGINT');
    expect(await done).toBe(0);
  });

  it('reports an unknown topic instead of falling back', async () => {
    const node = new FakeNode();
    nodes.push(node);
    const unknown = () => errorReply(404, 'UNKNOWN_TOPIC', "topic 'nope' does not exist");
    node.on('GET', /stream$/, unknown).on('GET', /^\/v1\/topics\/nope$/, unknown);
    const io = new TestIo({ dispatcher: node.agent });
    expect(await runCli(['tail', 'nope', '--follow'], io)).toBe(1);
    expect(io.err).toBe("raftlog: topic 'nope' does not exist (UNKNOWN_TOPIC)\n");
  });
});
