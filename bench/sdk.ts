// bench:sdk — what the SDK costs and delivers against a real 3-node cluster (three `raftlog start`
// processes on 127.0.0.1, async persistence unless --persistence):
//
//   produce latency (issue 15, acceptance 4): one 100 B record at a time, sequentially, on one
//     topic of 1 partition and 3 replicas. `sdk`: Producer.send() with lingerMs 0 (idempotent,
//     the default), the client given all three URLs. `raw`: an undici Pool to the partition
//     leader, POST …/records with the same body the SDK sends (record with its partition, producer
//     id, epoch and sequence), the answer read and parsed. Both in this process, interleaved one
//     request each in turn (--rounds of --requests each, after a warm-up of the same size), each
//     send timed with performance.now() in an HDR histogram. The SDK is the built one (dist/).
//     Goal: sdk p50 within 10% of raw p50.
//   consumer throughput (acceptance 5): --records (1,000,000) records of 100 B on --partitions (6)
//     partitions, 3 replicas, produced through the SDK first. `one`: one consumer in a child
//     process (no group) reads every record with readFrom 'follower', to each partition's high
//     watermark; the time runs from its first fetch to its last record. `group`: three child
//     processes in one consumer group, readFrom 'follower'; each pauses what it is assigned
//     until the group is settled (every partition owned once, nothing being revoked), then all
//     start at once; the time runs from the start to the moment their records add up to
//     --records. Goals: one >= 300,000 records/s; group >= 1.5 x one.
//
// The child processes run this file with --child. Prints progress to stderr, then one JSON
// document, then a table. Every wait is bounded.
//
//   npx tsx bench/sdk.ts [--requests 1000 --rounds 10 --records 1000000 --partitions 6
//                         --persistence async --skip-latency --skip-throughput --skip-group]

import { type ChildProcess, fork } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build, type Histogram } from 'hdr-histogram-js';
import { Pool } from 'undici';
import { ProcessCluster } from '../test/integration/process-cluster.js';

// The SDK as users run it: the built package (dist/, which the nodes run too), not the sources
// through tsx, whose transform adds work to every closure. Typed by the sources.
const { Raftlog } = (await import(
  new URL('../dist/client/index.js', import.meta.url).href
)) as typeof import('../src/client/index.js');
type Raftlog = InstanceType<typeof Raftlog>;

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '10' },
    records: { type: 'string', default: '1000000' },
    partitions: { type: 'string', default: '6' },
    persistence: { type: 'string', default: 'async' },
    'skip-latency': { type: 'boolean', default: false },
    'skip-throughput': { type: 'boolean', default: false },
    'skip-group': { type: 'boolean', default: false },
    child: { type: 'string' },
  },
});

const VALUE = 'x'.repeat(100);
const LATENCY_TOPIC = 'bench-sdk-latency';
const READS_TOPIC = 'bench-sdk-reads';
const GROUP = 'bench-sdk-group';
const PRODUCE_BATCH = 5000;
const CHILD_TIMEOUT_MS = 300_000;
const SETTLE_TIMEOUT_MS = 60_000;

interface ChildStart {
  urls: string[];
  topic: string;
  group?: string;
  expected: number;
}

type ChildMessage =
  | { type: 'assigned'; partitions: number[] }
  | { type: 'progress'; records: number }
  | { type: 'done'; records: number; firstFetchMs: number; lastRecordMs: number };

if (args.child !== undefined) {
  await runChild(JSON.parse(args.child) as ChildStart);
} else {
  await main();
}

async function main(): Promise<void> {
  const requests = Number(args.requests);
  const rounds = Number(args.rounds);
  const records = Number(args.records);
  const partitions = Number(args.partitions);
  const cluster = await ProcessCluster.create(3, String(args.persistence));
  const startedAt = new Date().toISOString();
  const loadBefore = loadavg()[0];
  try {
    cluster.startAll();
    await cluster.waitReady(30_000);
    const urls = [...cluster.nodes.values()].map((n) => n.url);
    const result: Record<string, unknown> = {
      startedAt,
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memoryBytes: totalmem(), node: process.version },
      persistence: args.persistence,
    };
    if (!args['skip-latency']) result.latency = await latency(urls, requests, rounds);
    if (!args['skip-throughput'])
      result.throughput = await throughput(urls, records, partitions, !args['skip-group']);
    result.load = { before: loadBefore, after: loadavg()[0] };
    console.log(JSON.stringify(result, null, 2));
    printTable(result);
  } finally {
    await cluster.destroy();
  }
}

// Produce latency.

async function latency(urls: string[], requests: number, rounds: number) {
  const client = new Raftlog({ urls });
  await client.createTopic({ name: LATENCY_TOPIC, partitions: 1, replicationFactor: 3 });
  const leader = await stableLeader(client, LATENCY_TOPIC);
  const leaderUrl = urls[leader - 1]!;
  const producer = client.producer({ lingerMs: 0 });
  const pool = new Pool(leaderUrl, { connections: 1 });
  const rawId = `raw-${process.pid}`;
  let rawSequence = 0;
  const sdkOnce = async () => {
    await producer.send(LATENCY_TOPIC, [{ value: VALUE }]);
  };
  const rawOnce = async () => {
    const response = await pool.request({
      method: 'POST',
      path: `/v1/topics/${LATENCY_TOPIC}/records`,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        records: [{ value: VALUE, partition: 0 }],
        producer: { id: rawId, epoch: 0, sequence: rawSequence++ },
      }),
    });
    const body = (await response.body.json()) as { offsets?: unknown[] };
    if (response.statusCode !== 200 || body.offsets?.length !== 1) {
      throw new Error(`raw produce answered ${response.statusCode}: ${JSON.stringify(body)}`);
    }
  };
  const histograms = { sdk: histogram(), raw: histogram() };
  progress(`latency: warm-up, ${requests} of each`);
  await alternating(sdkOnce, rawOnce, requests, histogram(), histogram());
  for (let round = 0; round < rounds; round++) {
    await alternating(sdkOnce, rawOnce, requests, histograms.sdk, histograms.raw);
    progress(
      `latency: round ${round + 1}/${rounds}: sdk p50 ${ms(histograms.sdk, 50)} ms, raw p50 ${ms(histograms.raw, 50)} ms`,
    );
  }
  await producer.close();
  await pool.close();
  await client.close();
  const summary = (h: Histogram) => ({
    requests: h.totalCount,
    p50Ms: ms(h, 50),
    p90Ms: ms(h, 90),
    p99Ms: ms(h, 99),
    maxMs: h.maxValue / 1000,
  });
  const sdk = summary(histograms.sdk);
  const raw = summary(histograms.raw);
  return { leader, sdk, raw, p50Ratio: round3(sdk.p50Ms / raw.p50Ms), goal: 'sdk p50 <= 1.10 x raw p50' };
}

/**
 * `count` of each, interleaved one by one (sdk, raw, raw, sdk, ...): both see the same load of a
 * shared machine, and neither always follows the other's garbage.
 */
async function alternating(
  sdkOnce: () => Promise<void>,
  rawOnce: () => Promise<void>,
  count: number,
  sdkInto: Histogram,
  rawInto: Histogram,
): Promise<void> {
  for (let i = 0; i < count; i++) {
    if (i % 2 === 0) {
      await timed(sdkOnce, sdkInto);
      await timed(rawOnce, rawInto);
    } else {
      await timed(rawOnce, rawInto);
      await timed(sdkOnce, sdkInto);
    }
  }
}

async function timed(once: () => Promise<void>, into: Histogram): Promise<void> {
  const startedMs = performance.now();
  await once();
  into.recordValue(Math.round((performance.now() - startedMs) * 1000));
}

/** The partition's leader once every node has named the same one three polls in a row. */
async function stableLeader(client: Raftlog, topic: string): Promise<number> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  let streak = 0;
  let last = -1;
  while (Date.now() < deadline) {
    const leader = (await client.describeTopic(topic)).partitions[0]!.leader;
    streak = leader !== null && leader === last ? streak + 1 : 0;
    last = leader ?? -1;
    if (streak >= 3) return last;
    await sleep(300);
  }
  throw new Error(`no stable leader for ${topic}`);
}

// Consumer throughput.

async function throughput(urls: string[], records: number, partitions: number, withGroup: boolean) {
  const client = new Raftlog({ urls });
  await client.createTopic({ name: READS_TOPIC, partitions, replicationFactor: 3 });
  const producer = client.producer({ lingerMs: 20, batchRecordsMax: PRODUCE_BATCH });
  progress(`throughput: producing ${records} records of ${VALUE.length} B to ${partitions} partitions`);
  const produceStartedMs = performance.now();
  const batch = Array.from({ length: PRODUCE_BATCH }, (_, i) => ({ key: `k${i}`, value: VALUE }));
  const window: Promise<unknown>[] = [];
  for (let sent = 0; sent < records; sent += PRODUCE_BATCH) {
    window.push(producer.send(READS_TOPIC, batch.slice(0, Math.min(PRODUCE_BATCH, records - sent))));
    if (window.length >= 8) await window.shift();
  }
  await Promise.all(window);
  await producer.close();
  const produceSeconds = (performance.now() - produceStartedMs) / 1000;
  progress(`throughput: produced in ${produceSeconds.toFixed(1)} s; waiting for every replica`);
  await replicasCaughtUp(urls, partitions, client);
  await client.close();

  const one = await consumeWith(urls, records, 1, undefined);
  progress(`throughput: one consumer: ${Math.round(one.recordsPerSecond)} records/s`);
  const group = withGroup ? await consumeWith(urls, records, 3, GROUP) : null;
  if (group) progress(`throughput: group of 3: ${Math.round(group.recordsPerSecond)} records/s`);
  return {
    records,
    partitions,
    valueBytes: VALUE.length,
    produce: { seconds: round3(produceSeconds), recordsPerSecond: Math.round(records / produceSeconds) },
    one,
    group,
    groupRatio: group ? round3(group.recordsPerSecond / one.recordsPerSecond) : null,
    goals: 'one >= 300,000 records/s from a follower; group of 3 >= 1.5 x one',
  };
}

/** Every node's own high watermark of every partition is at the total. */
async function replicasCaughtUp(urls: string[], partitions: number, client: Raftlog): Promise<void> {
  const described = await client.describeTopic(READS_TOPIC);
  const total = described.partitions.reduce((sum, p) => sum + p.highWatermark, 0);
  const probes = urls.map((url) => new Raftlog({ url, direct: true }));
  try {
    const deadline = Date.now() + SETTLE_TIMEOUT_MS;
    for (;;) {
      const marks = await Promise.all(
        probes.flatMap((probe) =>
          Array.from({ length: partitions }, (_, p) =>
            probe.fetch(READS_TOPIC, p, { offset: 'latest', limit: 1 }).then((r) => r.highWatermark),
          ),
        ),
      );
      if (marks.reduce((a, b) => a + b, 0) >= total * urls.length) return;
      if (Date.now() > deadline) throw new Error('replicas did not catch up');
      await sleep(200);
    }
  } finally {
    await Promise.all(probes.map((p) => p.close()));
  }
}

async function consumeWith(urls: string[], records: number, count: number, group: string | undefined) {
  const children: ChildProcess[] = [];
  const assigned = new Map<number, number[]>();
  const counts = new Array<number>(count).fill(0);
  const done: Array<Extract<ChildMessage, { type: 'done' }> | undefined> = new Array(count).fill(undefined);
  try {
    for (let i = 0; i < count; i++) {
      const start: ChildStart = { urls, topic: READS_TOPIC, group, expected: group ? 0 : records };
      const child = fork(fileURLToPath(import.meta.url), ['--child', JSON.stringify(start)], {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      child.on('message', (message: ChildMessage) => {
        if (message.type === 'assigned') assigned.set(i, message.partitions);
        if (message.type === 'progress') counts[i] = message.records;
        if (message.type === 'done') {
          counts[i] = message.records;
          done[i] = message;
        }
      });
      children.push(child);
    }
    if (group) {
      // Start together once the group has settled: every partition owned by exactly one member.
      await waitFor(
        () => {
          const owned = [...assigned.values()].flat();
          return (
            assigned.size === count &&
            owned.length === Number(args.partitions) &&
            new Set(owned).size === owned.length
          );
        },
        SETTLE_TIMEOUT_MS,
        'the group to settle',
      );
      progress(
        `throughput: group settled: ${[...assigned.entries()].map(([i, p]) => `c${i}=${p}`).join(' ')}`,
      );
    }
    const startedMs = Date.now();
    for (const child of children) child.send({ type: 'go' });
    await waitFor(() => counts.reduce((a, b) => a + b, 0) >= records, CHILD_TIMEOUT_MS, 'the consumers');
    const endedMs = Date.now();
    if (!group) {
      // One consumer times itself: from its first fetch to its last record.
      await waitFor(() => done[0] !== undefined, 10_000, 'the consumer to finish');
      const seconds = (done[0]!.lastRecordMs - done[0]!.firstFetchMs) / 1000;
      return {
        consumers: 1,
        records: counts[0]!,
        seconds: round3(seconds),
        recordsPerSecond: Math.round(counts[0]! / seconds),
      };
    }
    const seconds = (endedMs - startedMs) / 1000;
    const total = counts.reduce((a, b) => a + b, 0);
    return {
      consumers: count,
      records: total,
      perConsumer: counts,
      seconds: round3(seconds),
      recordsPerSecond: Math.round(total / seconds),
    };
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.all(
      children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null)),
    );
  }
}

/** A consumer process: reads until told to stop (group) or until `expected` records (alone). */
async function runChild(start: ChildStart): Promise<void> {
  const client = new Raftlog({ urls: start.urls, readFrom: 'follower' });
  let go = false;
  const assigned = new Set<number>();
  const consumer = client.consumer({
    topic: start.topic,
    group: start.group,
    limit: 10_000,
    waitMs: 500,
    bufferRecordsMax: 20_000,
    autoCommit: { intervalMs: 1000 },
    onAssign: (partitions) => {
      for (const { partition } of partitions) assigned.add(partition);
      if (!go) consumer.pause(partitions.map((p) => p.partition));
      process.send?.({ type: 'assigned', partitions: [...assigned] });
    },
    onRevoke: (partitions) => {
      for (const { partition } of partitions) assigned.delete(partition);
      process.send?.({ type: 'assigned', partitions: [...assigned] });
    },
  });
  const controller = new AbortController();
  process.on('SIGTERM', () => controller.abort());
  process.on('disconnect', () => controller.abort());
  const began = new Promise<void>((resolve) =>
    process.on('message', (message: { type: string }) => {
      if (message.type !== 'go') return;
      go = true;
      consumer.resume([...assigned]);
      resolve();
    }),
  );
  if (!start.group) await began;
  const firstFetchMs = Date.now();
  let records = 0;
  let lastRecordMs = firstFetchMs;
  for await (const _ of consumer.records({ signal: controller.signal, follow: start.group !== undefined })) {
    records++;
    if ((records & 0x3fff) === 0) process.send?.({ type: 'progress', records });
    if (records === start.expected) break;
  }
  lastRecordMs = Date.now();
  process.send?.({ type: 'done', records, firstFetchMs, lastRecordMs });
  await consumer.close().catch(() => undefined);
  await client.close();
  process.disconnect?.();
}

// Helpers.

function histogram(): Histogram {
  return build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

function ms(h: Histogram, percentile: number): number {
  return round3(h.getValueAtPercentile(percentile) / 1000);
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

function progress(line: string): void {
  process.stderr.write(`bench:sdk ${line}\n`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function printTable(result: Record<string, unknown>): void {
  const lines: string[] = [];
  const latency = result.latency as
    | {
        sdk: { p50Ms: number; p90Ms: number; p99Ms: number };
        raw: { p50Ms: number; p90Ms: number; p99Ms: number };
        p50Ratio: number;
      }
    | undefined;
  if (latency) {
    lines.push('produce, 1 record of 100 B     p50 ms   p90 ms   p99 ms');
    for (const name of ['sdk', 'raw'] as const) {
      const h = latency[name];
      lines.push(
        `  ${name.padEnd(29)}${String(h.p50Ms).padStart(7)}${String(h.p90Ms).padStart(9)}${String(h.p99Ms).padStart(9)}`,
      );
    }
    lines.push(`  sdk / raw p50: ${latency.p50Ratio} (goal <= 1.10)`);
  }
  const throughputResult = result.throughput as
    | {
        one: { recordsPerSecond: number; seconds: number };
        group: { recordsPerSecond: number; seconds: number } | null;
        groupRatio: number | null;
      }
    | undefined;
  if (throughputResult) {
    lines.push('consume from followers           records/s   seconds');
    lines.push(
      `  one consumer                  ${String(throughputResult.one.recordsPerSecond).padStart(10)}${String(throughputResult.one.seconds).padStart(10)}`,
    );
    if (throughputResult.group) {
      lines.push(
        `  group of 3                    ${String(throughputResult.group.recordsPerSecond).padStart(10)}${String(throughputResult.group.seconds).padStart(10)}`,
      );
      lines.push(`  group / one: ${throughputResult.groupRatio} (goal >= 1.5; one goal >= 300,000)`);
    }
  }
  console.log(lines.join('\n'));
}
