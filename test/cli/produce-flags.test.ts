// The line formats and safety of `raftlog produce` (issue 18): --key-separator, --header,
// --json-lines, a bad line (named, exit 1, what was sent said), idempotent retries of a 504 and a
// leader change, a --server list, and the summary on stderr. In-process, on a fake node.

import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.js';
import { type ProduceRequest, partitionForKey } from '../../src/client/index.js';
import {
  connectionRefused,
  errorReply,
  type FakeHandler,
  FakeNode,
  topicDescription,
} from '../client/fake-node.js';
import { TestIo } from './cli-io.js';

const nodes: FakeNode[] = [];
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.close();
});

interface Stored {
  key: string | null;
  value: string;
  headers: Record<string, string | null> | undefined;
  timestamp: number | undefined;
}

const URLS = ['http://127.0.0.1:9090', 'http://127.0.0.1:9091'];

/** What the next produce request meets: no leader, a 504 before the commit, or a 504 after it. */
type Fault = 'no-leader' | 'timeout-uncommitted' | 'timeout-committed';

/**
 * A node (answering at URLS, unless down) that appends per partition and dedups as the broker
 * does: a request whose producer sequence it has committed gets the same offsets, `duplicate: true`.
 */
function dedupNode(partitions = 3) {
  const node = new FakeNode(URLS[0]);
  node.serve(URLS[1]!);
  nodes.push(node);
  const logs: Stored[][] = Array.from({ length: partitions }, () => []);
  const committed = new Map<string, Array<{ partition: number; offset: number }>>();
  const faults: Fault[] = [];
  const down = new Set<string>();
  /** The first node dies once it has answered this many produce requests. */
  const death = { afterProduces: Number.POSITIVE_INFINITY };
  const up =
    (handler: FakeHandler): FakeHandler =>
    (request, match) => {
      if (down.has(request.origin)) throw connectionRefused();
      const reply = handler(request, match);
      if (request.method === 'POST' && request.origin === URLS[0] && --death.afterProduces <= 0) {
        down.add(URLS[0]!);
      }
      return reply;
    };
  node.on(
    'GET',
    /^\/v1\/topics\/t$/,
    up(() => ({ status: 200, body: topicDescription('t', partitions) })),
  );
  node.on(
    'POST',
    /^\/v1\/topics\/t\/records$/,
    up((request) => {
      const body = request.body as ProduceRequest;
      const fault = faults.shift();
      if (fault === 'no-leader') {
        return errorReply(503, 'NO_LEADER', 'partition 0 has no leader', { headers: { 'retry-after': '0' } });
      }
      if (fault === 'timeout-uncommitted') return errorReply(504, 'TIMEOUT', 'not committed in time');
      const id = `${body.producer?.id}/${body.records[0]?.partition}/${body.producer?.sequence}`;
      let offsets = committed.get(id);
      const duplicate = offsets !== undefined;
      if (!offsets) {
        offsets = body.records.map((record) => {
          const partition = record.partition ?? 0;
          const log = logs[partition]!;
          log.push({
            key: record.key ?? null,
            value: record.value,
            headers: record.headers ?? undefined,
            timestamp: record.timestamp,
          });
          return { partition, offset: log.length - 1 };
        });
        committed.set(id, offsets);
      }
      if (fault === 'timeout-committed') return errorReply(504, 'TIMEOUT', 'not committed in time');
      return { status: 200, body: { offsets, duplicate } };
    }),
  );
  const all = () => logs.flat();
  const produces = () => node.sent('POST', /records$/).map((request) => request.body as ProduceRequest);
  return { node, logs, faults, down, death, all, produces };
}

/** Requests that carry the same producer sequence carry the same records. */
function expectRetriesIdentical(produces: ProduceRequest[]): void {
  const bySequence = new Map<string, ProduceRequest>();
  for (const body of produces) {
    const id = `${body.records[0]?.partition}/${body.producer?.sequence}`;
    const first = bySequence.get(id);
    if (first) expect(body).toEqual(first);
    else bySequence.set(id, body);
  }
}

describe('--key-separator', () => {
  it('takes the key from before the first separator, the value from after it', async () => {
    const { node, logs, all } = dedupNode(3);
    const io = new TestIo({
      dispatcher: node.agent,
      stdin: ['user-1::a\nuser-2::b::c\n::no key but empty\n'],
    });
    expect(await runCli(['produce', 't', '--key-separator', '::'], io)).toBe(0);
    expect(all().map(({ key, value }) => [key, value])).toEqual(
      expect.arrayContaining([
        ['user-1', 'a'],
        ['user-2', 'b::c'],
        ['', 'no key but empty'],
      ]),
    );
    // Keyed records land on murmur2(key) % partitions, as in Kafka.
    for (const key of ['user-1', 'user-2', '']) {
      const partition = partitionForKey(Buffer.from(key), 3);
      expect(logs[partition]!.some((record) => record.key === key)).toBe(true);
    }
  });

  it('keeps file order per key', async () => {
    const { node, all } = dedupNode(3);
    const lines = Array.from({ length: 3000 }, (_, i) => `k${i % 7},${i}`);
    const io = new TestIo({ dispatcher: node.agent, stdin: [`${lines.join('\n')}\n`] });
    expect(await runCli(['produce', 't', '--key-separator', ','], io)).toBe(0);
    for (let k = 0; k < 7; k++) {
      const values = all()
        .filter((record) => record.key === `k${k}`)
        .map((record) => Number(record.value));
      expect(values).toEqual(lines.map((_, i) => i).filter((i) => i % 7 === k));
    }
  });

  it('stops at a line without the separator: names it, exits 1, says what was sent', async () => {
    const { node, all } = dedupNode(1);
    const io = new TestIo({ dispatcher: node.agent, stdin: ['a:1\nb:2\nno separator\nc:3\n'] });
    expect(await runCli(['produce', 't', '--key-separator', ':'], io)).toBe(1);
    expect(all().map((record) => record.value)).toEqual(['1', '2']);
    expect(io.errLines).toHaveLength(2);
    expect(io.errLines[0]).toMatch(
      /^raftlog: produced 2 records \(4 B\) in .* s.*; lines 1 to 2 were acknowledged; nothing from line 3 on was sent$/,
    );
    expect(io.errLines[1]).toBe("raftlog: line 3: no key separator ':' in the line");
  });

  it('applies to VALUE too', async () => {
    const { node, all } = dedupNode(1);
    const io = new TestIo({ dispatcher: node.agent });
    expect(await runCli(['produce', 't', 'k=v', '--key-separator', '='], io)).toBe(0);
    expect(all()).toMatchObject([{ key: 'k', value: 'v' }]);
    const bad = new TestIo({ dispatcher: node.agent });
    expect(await runCli(['produce', 't', 'kv', '--key-separator', '='], bad)).toBe(2);
    expect(bad.err).toBe("raftlog: VALUE: no key separator '=' in the line\n");
  });

  it('refuses an empty separator, and --key beside it, as usage errors', async () => {
    const { node } = dedupNode(1);
    const empty = new TestIo({ dispatcher: node.agent, stdin: ['a\n'] });
    expect(await runCli(['produce', 't', '--key-separator', ''], empty)).toBe(2);
    expect(empty.err).toBe('raftlog: --key-separator: give a non-empty separator\n');
    const both = new TestIo({ dispatcher: node.agent, stdin: ['a\n'] });
    expect(await runCli(['produce', 't', '--key', 'k', '--key-separator', ':'], both)).toBe(2);
    expect(both.err).toBe('raftlog: --key and --key-separator both say where keys come from: give one\n');
    expect(node.sent('POST', /records$/)).toEqual([]);
  });
});

describe('--header', () => {
  it('puts every --header K=V on every record; V may hold = and be empty', async () => {
    const { node, all } = dedupNode(1);
    const io = new TestIo({ dispatcher: node.agent, stdin: ['a\nb\n'] });
    const argv = ['produce', 't', '--header', 'trace=abc', '--header', 'q=x=y', '--header', 'empty='];
    expect(await runCli(argv, io)).toBe(0);
    const headers = { trace: 'abc', q: 'x=y', empty: '' };
    expect(all()).toMatchObject([
      { value: 'a', headers },
      { value: 'b', headers },
    ]);
  });

  it('refuses a header without a name or =, and one given twice', async () => {
    for (const argv of [
      ['--header', 'novalue'],
      ['--header', '=v'],
      ['--header', 'a=1', '--header', 'a=2'],
    ]) {
      const { node } = dedupNode(1);
      const io = new TestIo({ dispatcher: node.agent, stdin: ['a\n'] });
      expect(await runCli(['produce', 't', ...argv], io)).toBe(2);
      expect(io.errLines).toHaveLength(1);
      expect(io.err).toMatch(/^raftlog: option '--header <K=V>' argument '.*' is invalid/);
      expect(node.sent('POST', /records$/)).toEqual([]);
    }
  });
});

describe('--json-lines', () => {
  it('reads key, value, headers, partition and timestamp; skips blank lines; merges --header', async () => {
    const { node, logs } = dedupNode(3);
    const lines = [
      '{"key": "k", "value": "v1", "headers": {"h": "line", "n": null}, "partition": 2}',
      '',
      '{"value": "v2", "key": null, "partition": 1, "timestamp": 1732262400000}',
      // The shape `tail --json` prints: its offset is ignored.
      '{"partition": 0, "offset": 17, "timestamp": 5, "key": "x", "value": "v3", "headers": null}',
    ];
    const io = new TestIo({ dispatcher: node.agent, stdin: [`${lines.join('\n')}\n`] });
    expect(await runCli(['produce', 't', '--json-lines', '--header', 'h=flag', '--header', 'f=1'], io)).toBe(
      0,
    );
    expect(logs[2]).toEqual([
      { key: 'k', value: 'v1', headers: { h: 'line', n: null, f: '1' }, timestamp: undefined },
    ]);
    expect(logs[1]).toEqual([
      { key: null, value: 'v2', headers: { h: 'flag', f: '1' }, timestamp: 1732262400000 },
    ]);
    expect(logs[0]).toEqual([{ key: 'x', value: 'v3', headers: { h: 'flag', f: '1' }, timestamp: 5 }]);
    expect(io.errLines).toEqual([expect.stringMatching(/^raftlog: produced 3 records \(8 B\) in /)]);
  });

  it.each([
    ['{"value": "a", ', /^raftlog: line 3: not valid JSON \(.+\)$/],
    ['["a"]', /^raftlog: line 3: expected a JSON object like \{"key": "k", "value": "v"\}$/],
    [
      '{"vaule": "a"}',
      /^raftlog: line 3: unknown field 'vaule' \(expected key, value, headers, partition, timestamp\)$/,
    ],
    ['{"value": 5}', /^raftlog: line 3: "value" must be a string$/],
    ['{"value": "a", "key": 1}', /^raftlog: line 3: "key" must be a string or null$/],
    ['{"value": "a", "partition": -1}', /^raftlog: line 3: "partition" must be an integer >= 0$/],
    ['{"value": "a", "headers": {"h": 1}}', /^raftlog: line 3: header 'h' must be a string or null$/],
  ])('stops at a bad line %s: names it, exits 1, says what was sent', async (bad, message) => {
    const { node, all } = dedupNode(1);
    const stdin = `{"value": "one"}\n{"value": "two"}\n${bad}\n{"value": "four"}\n`;
    const io = new TestIo({ dispatcher: node.agent, stdin: [stdin] });
    expect(await runCli(['produce', 't', '--json-lines'], io)).toBe(1);
    expect(all().map((record) => record.value)).toEqual(['one', 'two']);
    expect(io.errLines).toHaveLength(2);
    expect(io.errLines[0]).toMatch(/; lines 1 to 2 were acknowledged; nothing from line 3 on was sent$/);
    expect(io.errLines[1]).toMatch(message);
  });

  it('refuses --key and --key-separator beside it', async () => {
    const { node } = dedupNode(1);
    for (const flags of [
      ['--key', 'k'],
      ['--key-separator', ':'],
    ]) {
      const io = new TestIo({ dispatcher: node.agent, stdin: ['{"value": "a"}\n'] });
      expect(await runCli(['produce', 't', '--json-lines', ...flags], io)).toBe(2);
      expect(io.err).toMatch(/both say where keys come from: give one\n$/);
    }
  });
});

describe('safe retries', () => {
  it('retries a leader change and a 504 (committed or not) with the same sequence: each line once', async () => {
    const { node, all, faults, produces } = dedupNode(1);
    faults.push('no-leader', 'timeout-committed', 'timeout-uncommitted', 'timeout-committed');
    const lines = Array.from({ length: 50 }, (_, i) => `line-${i}`);
    const io = new TestIo({ dispatcher: node.agent, stdin: [`${lines.join('\n')}\n`] });
    expect(await runCli(['produce', 't'], io)).toBe(0);
    expect(all().map((record) => record.value)).toEqual(lines);
    expect(produces().length).toBeGreaterThanOrEqual(5);
    expect(produces().every((body) => body.producer !== undefined)).toBe(true);
    expectRetriesIdentical(produces());
  });

  it('carries on through the next --server when its node dies mid-stream', async () => {
    const { node, all, down, death, produces } = dedupNode(3);
    death.afterProduces = 1;
    const lines = Array.from({ length: 3000 }, (_, i) => `k${i % 5}:${i}`);
    const io = new TestIo({ dispatcher: node.agent, stdin: lines.map((line) => `${line}\n`) });
    expect(await runCli(['produce', 't', '--key-separator', ':', '--server', URLS.join(',')], io)).toBe(0);
    expect(down.has(URLS[0]!)).toBe(true);
    expect(node.requests.some((request) => request.origin === URLS[1])).toBe(true);
    for (let k = 0; k < 5; k++) {
      const values = all()
        .filter((record) => record.key === `k${k}`)
        .map((record) => Number(record.value));
      expect(values).toEqual(lines.map((_, i) => i).filter((i) => i % 5 === k));
    }
    expectRetriesIdentical(produces());
  });

  it('refuses a --server list with a bad URL as a usage error', async () => {
    const io = new TestIo({ stdin: ['a\n'] });
    expect(await runCli(['produce', 't', '--server', `${URLS[0]},ftp://x`], io)).toBe(2);
    expect(io.err).toMatch(/^raftlog: --server: /);
  });
});
