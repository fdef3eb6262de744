// The built executable against a real node process: `raftlog tail` with --offset -N, --count,
// --format and --group, and `raftlog group describe | reset`, as a user runs them (stdout compared
// whole). It runs dist/: `npm run build` first. --offset @TIMESTAMP waits for the time-index
// route, so it is tested against a scripted node (tail-flags.test.ts).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessCluster } from '../integration/process-cluster.js';
import { type BinRun, runBin } from './run-bin.js';

const RUN_TIMEOUT_MS = 15_000;

let cluster: ProcessCluster;
let url: string;

beforeAll(async () => {
  cluster = await ProcessCluster.create(1);
  cluster.startAll();
  await cluster.waitReady(20_000);
  url = cluster.node(1).url;
  expect((await raftlog(['topic', 'create', 'demo', '--partitions', '2'])).code).toBe(0);
  // k0..k9 to partition 0, k10..k16 to partition 1.
  for (const [partition, from, to] of [
    [0, 0, 10],
    [1, 10, 17],
  ] as const) {
    const stdin = Array.from({ length: to - from }, (_, i) => `v${from + i}\n`).join('');
    const run = await raftlog(['produce', 'demo', '--partition', String(partition)], stdin);
    expect(run.code).toBe(0);
  }
}, 40_000);

afterAll(async () => {
  await cluster?.destroy();
});

/** Runs the executable against the test's node, to its exit. */
function raftlog(args: string[], stdin = ''): Promise<BinRun> {
  return runBin([...args, '--server', url], { stdin, timeoutMs: RUN_TIMEOUT_MS });
}

describe('raftlog tail (the executable, a real node)', () => {
  it('--offset -5 --count 5 prints exactly the last five records of a partition', async () => {
    const run = await raftlog(['tail', 'demo', '--partition', '0', '--offset', '-5', '--count', '5']);
    expect(run).toEqual({
      code: 0,
      stderr: '',
      stdout: '0:5 - v5\n0:6 - v6\n0:7 - v7\n0:8 - v8\n0:9 - v9\n',
    });
  });

  it('--offset -5 prints the last five of each partition', async () => {
    const run = await raftlog(['tail', 'demo', '--offset', '-5', '--format', '%p:%o %v\\n']);
    expect(run.code).toBe(0);
    expect(run.stdout.split('\n').filter(Boolean).sort()).toEqual([
      '0:5 v5',
      '0:6 v6',
      '0:7 v7',
      '0:8 v8',
      '0:9 v9',
      '1:2 v12',
      '1:3 v13',
      '1:4 v14',
      '1:5 v15',
      '1:6 v16',
    ]);
  });

  it("--format '%k=%v\\n' prints key=value, empty for no key", async () => {
    expect((await raftlog(['produce', 'demo', 'hello', '--key', 'greeting', '--partition', '1'])).code).toBe(
      0,
    );
    const run = await raftlog(['tail', 'demo', '--partition', '1', '--offset', '-2', '--format', '%k=%v\\n']);
    expect(run).toEqual({ code: 0, stderr: '', stdout: '=v16\ngreeting=hello\n' });
  });

  it('--group commits what it printed; group describe shows the lag, group reset moves it back', async () => {
    const first = await raftlog(['tail', 'demo', '--group', 'g', '--count', '4', '--format', '%p:%o\\n']);
    expect(first.code).toBe(0);
    expect(first.stdout.split('\n').filter(Boolean)).toHaveLength(4);
    const described = await raftlog(['group', 'describe', 'g', '--json']);
    expect(described.code).toBe(0);
    const description = JSON.parse(described.stdout) as {
      members: unknown[];
      offsets: Array<{ partition: number; offset: number; lag: number }>;
    };
    expect(description.members).toEqual([]); // tail left the group on exit.
    const committed = description.offsets.reduce((sum, o) => sum + o.offset, 0);
    expect(committed).toBe(4);

    // A second member goes on from there: the remaining 14 of the 18 records, none again.
    const rest = await raftlog(['tail', 'demo', '--group', 'g', '--format', '%p:%o\\n']);
    const both = [...first.stdout.split('\n'), ...rest.stdout.split('\n')].filter(Boolean);
    expect(both).toHaveLength(18);
    expect(new Set(both).size).toBe(18);

    const reset = await raftlog(['group', 'reset', 'g', '--topic', 'demo', '--to', 'earliest']);
    expect(reset).toEqual({
      code: 0,
      stderr: '',
      stdout: [
        "reset group 'g' on 'demo'",
        '',
        'TOPIC  PARTITION  FROM  TO',
        'demo   0          10    0',
        'demo   1          8     0',
        '',
      ].join('\n'),
    });
    const again = await raftlog(['tail', 'demo', '--group', 'g', '--count', '1', '--partition', '0']);
    expect(again.code).toBe(2); // --partition and --group exclude each other.
  });
});
