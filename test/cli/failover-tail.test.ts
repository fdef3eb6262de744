// Issue 18, acceptance 4: `raftlog tail --follow` and `raftlog produce` (stdin), both given only
// node 2, as real processes against a real 3-node cluster. Node 2 is killed (SIGKILL) halfway:
// both carry on through the other nodes, tail says so in one line, and prints every produced
// record exactly once, in order. It runs the built CLI (dist/): `npm run build` first.

import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { Raftlog } from '../../src/client/index.js';
import { ProcessCluster } from '../integration/process-cluster.js';
import { until } from './cli-io.js';

const BIN = fileURLToPath(new URL('../../bin/raftlog', import.meta.url));
const TOPIC = 'demo';
const BEFORE_KILL = 100;
const AFTER_KILL = 100;

interface Cli {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
}

const children: ChildProcess[] = [];
const clusters: ProcessCluster[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
  }
  for (const cluster of clusters.splice(0)) await cluster.destroy();
});

function raftlog(args: string[]): Cli {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, RAFTLOG_URL: '', NO_COLOR: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  const cli: Cli = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.on('close', (code) => resolve(code))),
  };
  child.stdout!.on('data', (chunk: Buffer) => (cli.stdout += chunk));
  child.stderr!.on('data', (chunk: Buffer) => (cli.stderr += chunk));
  return cli;
}

const lines = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => `v${from + i}\n`).join('');

it('tail --follow and produce against node 2 carry on when node 2 is killed; tail prints each record once, in order', async () => {
  const cluster = await ProcessCluster.create(3);
  clusters.push(cluster);
  cluster.startAll();
  await cluster.waitReady(20_000);
  const node2 = cluster.node(2).url;
  const admin = new Raftlog({ urls: [1, 2, 3].map((id) => cluster.node(id).url) });
  try {
    await admin.createTopic({ name: TOPIC, partitions: 2, replicationFactor: 3 });
    // Node 2 leads partition 0: its death also moves a leadership that produce depends on.
    await admin.transferLeader(TOPIC, 0, 2, { timeoutMs: 10_000 });
  } finally {
    await admin.close();
  }

  const tail = raftlog(['tail', TOPIC, '--follow', '--offset', 'earliest', '--server', node2]);
  const produce = raftlog(['produce', TOPIC, '--server', node2]);
  const printed = () => tail.stdout.split('\n').filter((line) => line !== '');
  produce.child.stdin!.write(lines(0, BEFORE_KILL));
  await until(() => printed().length >= BEFORE_KILL, 'the first records printed', 10_000);

  expect(await cluster.kill(2, 'SIGKILL')).not.toBe(0);
  // Written while partition 0 elects a new leader: produce retries (idempotently) through it.
  produce.child.stdin!.end(lines(BEFORE_KILL, BEFORE_KILL + AFTER_KILL));
  const produced = await Promise.race([
    produce.exited,
    until(() => false, 'produce to exit', 15_000).then(() => -1),
  ]);
  expect(produced, produce.stderr).toBe(0);
  expect(produce.stderr).toMatch(/^raftlog: produced 200 records \(.*\) in [\d.]+ s, \d+ records\/s\n$/);
  await until(
    () => printed().length >= BEFORE_KILL + AFTER_KILL,
    `every record printed (${printed().length} so far; stderr: ${tail.stderr})`,
    10_000,
  );

  // Each record once: every value, no more lines than records.
  const records = printed().map((line) => {
    const [position, key, value] = line.split(' ');
    const [partition, offset] = position!.split(':').map(Number);
    expect(key).toBe('-');
    return { partition: partition!, offset: offset!, index: Number(value!.slice(1)) };
  });
  expect(records.map((r) => r.index).sort((a, b) => a - b)).toEqual(
    Array.from({ length: BEFORE_KILL + AFTER_KILL }, (_, i) => i),
  );
  // In order: per partition, dense offsets from 0, values in the order produced.
  for (const partition of [0, 1]) {
    const mine = records.filter((r) => r.partition === partition);
    expect(mine.map((r) => r.offset)).toEqual(mine.map((_, i) => i));
    expect(mine.map((r) => r.index)).toEqual([...mine.map((r) => r.index)].sort((a, b) => a - b));
  }
  // Node 2's death was said once, on one line naming it.
  expect(tail.stderr.split('\n').filter((line) => line !== '')).toEqual([
    `raftlog: lost ${node2} (connection reset); following by fetch from the other nodes`,
  ]);

  process.kill(tail.child.pid!, 'SIGINT');
  expect(await tail.exited).toBe(0);
}, 60_000);
