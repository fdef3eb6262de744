// `raftlog tail` flags, in-process against a scripted node: --offset (earliest, N, -N, @TIMESTAMP,
// and the hidden --from), --count, --partition lists, --format, --json, binary values, and which
// flag combinations are refused before anything is sent.

import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.js';
import type { FakeNode } from '../client/fake-node.js';
import { TestIo, until } from './cli-io.js';
import { logNode, type StoredRecord, text } from './tail-fake.js';

const nodes: FakeNode[] = [];
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.close();
});

/** Records `v0..v{n-1}` with keys `k0..`, timestamps 1000, 1010, ... */
function numbered(n: number, prefix = 'v'): StoredRecord[] {
  return Array.from({ length: n }, (_, i) =>
    text(`${prefix}${i}`, { key: `k${i}`, timestamp: 1000 + 10 * i }),
  );
}

function fixture(logs: StoredRecord[][]) {
  const log = logNode('t', logs);
  nodes.push(log.node);
  return log;
}

async function tail(node: FakeNode, ...args: string[]) {
  const io = new TestIo({ dispatcher: node.agent });
  const code = await runCli(['tail', 't', ...args], io);
  return { code, io };
}

describe('tail --offset', () => {
  it('-5 --count 5 prints exactly the last five records of the partition', async () => {
    const { node } = fixture([numbered(12)]);
    const { code, io } = await tail(node, '--offset', '-5', '--count', '5');
    expect(code).toBe(0);
    expect(io.outLines).toEqual(['0:7 k7 v7', '0:8 k8 v8', '0:9 k9 v9', '0:10 k10 v10', '0:11 k11 v11']);
  });

  it('-5 prints the last five of each partition, all of a partition with fewer retained', async () => {
    const log = fixture([numbered(12), numbered(3, 'w')]);
    log.logStart[1] = 1; // w0 is gone (retention): -5 starts at the log start.
    const { code, io } = await tail(log.node, '--offset=-5');
    expect(code).toBe(0);
    expect(io.outLines.filter((l) => l.startsWith('0:'))).toEqual([
      '0:7 k7 v7',
      '0:8 k8 v8',
      '0:9 k9 v9',
      '0:10 k10 v10',
      '0:11 k11 v11',
    ]);
    expect(io.outLines.filter((l) => l.startsWith('1:'))).toEqual(['1:1 k1 w1', '1:2 k2 w2']);
  });

  it('N starts every partition at offset N; the old --from still works', async () => {
    const { node } = fixture([numbered(4), numbered(4, 'w')]);
    const offset = await tail(node, '--offset', '2', '--partition', '1');
    expect(offset.io.outLines).toEqual(['1:2 k2 w2', '1:3 k3 w3']);
    const from = await tail(node, '--from', '3', '--partition', '0');
    expect(from.io.outLines).toEqual(['0:3 k3 v3']);
  });

  it('@TIMESTAMP starts each partition at its first record at or after that time', async () => {
    const { node } = fixture([numbered(5), numbered(5, 'w')]);
    // 1020 is v2's time exactly; 1025 falls between w2 and w3 (same times in both partitions).
    const exact = await tail(node, '--offset', '@1020', '--partition', '0');
    expect(exact.io.outLines).toEqual(['0:2 k2 v2', '0:3 k3 v3', '0:4 k4 v4']);
    const between = await tail(node, '--offset', '@1035');
    expect(between.io.outLines.sort()).toEqual(['0:4 k4 v4', '1:4 k4 w4']);
    expect(node.sent('GET', /offsets$/).map((r) => r.query.timestamp)).toEqual(['1020', '1035', '1035']);
  });

  it('@ISO-8601 is a time too; a time after every record prints nothing', async () => {
    const { node } = fixture([numbered(3)]);
    const { code, io } = await tail(node, '--offset', '@2030-01-01T00:00:00Z');
    expect(code).toBe(0);
    expect(io.out).toBe('');
    expect(node.sent('GET', /offsets$/)[0]!.query.timestamp).toBe(String(Date.parse('2030-01-01T00:00:00Z')));
  });

  it('--follow with -N follows by fetch from the resolved offsets', async () => {
    const log = fixture([numbered(6)]);
    const io = new TestIo({ dispatcher: log.node.agent });
    const done = runCli(['tail', 't', '--follow', '--offset', '-2'], io);
    await until(() => io.outLines.length === 2, 'the last two records');
    log.logs[0]!.push(text('new', { key: 'k6' }));
    await until(() => io.outLines.length === 3, 'the new record');
    io.interrupt('SIGINT');
    expect(await done).toBe(0);
    expect(io.outLines).toEqual(['0:4 k4 v4', '0:5 k5 v5', '0:6 k6 new']);
    expect(log.node.sent('GET', /stream$/)).toEqual([]); // One stream cannot start partitions apart.
  });
});

describe('tail --count and --partition', () => {
  it('--count N stops after N records in all', async () => {
    const { node } = fixture([numbered(4), numbered(4, 'w')]);
    const { code, io } = await tail(node, '--count', '3');
    expect(code).toBe(0);
    expect(io.outLines).toHaveLength(3);
  });

  it('--count ends --follow too, with exit 0', async () => {
    const { node } = fixture([numbered(4)]);
    const { code, io } = await tail(node, '--follow', '--offset', 'earliest', '--count', '2');
    expect(code).toBe(0);
    expect(io.outLines).toEqual(['0:0 k0 v0', '0:1 k1 v1']);
  });

  it('--partition 0,2 reads only those partitions', async () => {
    const { node } = fixture([numbered(1), numbered(1, 'w'), numbered(1, 'x')]);
    const { io } = await tail(node, '--partition', '0,2');
    expect(io.outLines.sort()).toEqual(['0:0 k0 v0', '2:0 k0 x0']);
    expect(node.sent('GET', /partitions\/1\//)).toEqual([]);
  });
});

describe('tail --format and --json', () => {
  it("'%k=%v\\n' prints key=value lines; a missing key prints nothing", async () => {
    const { node } = fixture([[text('a', { key: 'x' }), text('b')]]);
    const { io } = await tail(node, '--format', '%k=%v\\n');
    expect(io.out).toBe('x=a\n=b\n');
  });

  it('every field, escape and %%', async () => {
    const record = text('v\n1', { key: 'k', timestamp: 1700, headers: { trace: 'abc', flag: null } });
    const { node } = fixture([[record]]);
    const { io } = await tail(node, '--format', '%t|%p|%o|%k|%v|%h|%T|100%%\\t\\\\\\n');
    expect(io.out).toBe('t|0|0|k|v\\n1|trace=abc,flag|1700|100%\t\\\n');
  });

  it('an unknown field or escape is a usage error (exit 2, one line)', async () => {
    const { node } = fixture([numbered(1)]);
    for (const template of ['%x', 'ends with %', '\\r']) {
      const { code, io } = await tail(node, '--format', template);
      expect(code).toBe(2);
      expect(io.errLines).toHaveLength(1);
      expect(io.err).toMatch(/--format.*is not one of %t %p %o %k %v %h %T/);
    }
    expect(node.requests).toEqual([]);
  });

  it('binary values print escaped, byte by byte; text keeps its characters, control ones escaped', async () => {
    const binary: StoredRecord = { key: null, value: Uint8Array.of(0xff, 0x00, 0x61, 0x5c), timestamp: 1 };
    const { node } = fixture([[binary, text('é\u0007\ttab')]]);
    const { io } = await tail(node);
    expect(io.outLines).toEqual(['0:0 - \\xff\\x00a\\x5c', '0:1 - é\\u0007\\ttab']);
  });

  it('--json prints text as strings, and bytes that are not UTF-8 as base64 with "encoding"', async () => {
    const binary: StoredRecord = { key: Buffer.from('k'), value: Uint8Array.of(0xff, 0xfe), timestamp: 5 };
    const { node } = fixture([[text('hi', { key: 'k', timestamp: 4, headers: { h: 'v' } }), binary]]);
    const { io } = await tail(node, '--json');
    expect(io.outLines.map((line) => JSON.parse(line))).toEqual([
      { partition: 0, offset: 0, timestamp: 4, key: 'k', value: 'hi', headers: { h: 'v' } },
      {
        partition: 0,
        offset: 1,
        timestamp: 5,
        key: 'aw==',
        value: '//4=',
        headers: null,
        encoding: 'base64',
      },
    ]);
  });
});

describe('tail flags refused before anything is sent (exit 2)', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['--offset yesterday', ['--offset', 'yesterday'], /earliest, latest or an offset/],
    ['--offset @soon', ['--offset', '@soon'], /@TIMESTAMP/],
    ['--offset and --from', ['--offset', '1', '--from', '2'], /--from is the old name of --offset/],
    ['--partition 0,x', ['--partition', '0,x'], /'x' is not a partition/],
    ['--count 0', ['--count', '0'], /--count.*integer from 1/],
    ['--format with --json', ['--format', '%v', '--json'], /exclude each other/],
    ['--group with --partition', ['--group', 'g', '--partition', '0'], /the group assigns partitions/],
    [
      '--group with --offset -5',
      ['--group', 'g', '--offset', '-5'],
      /with --group, --offset is earliest or latest/,
    ],
  ];
  for (const [name, args, message] of cases) {
    it(name, async () => {
      const { node } = fixture([numbered(1)]);
      const { code, io } = await tail(node, ...args);
      expect(code).toBe(2);
      expect(io.errLines).toHaveLength(1);
      expect(io.err).toMatch(message);
      expect(node.requests).toEqual([]);
    });
  }
});
