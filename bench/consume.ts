// bench:consume — issue 15, acceptance 5: how fast the SDK consumer reads, against a real 3-node
// cluster (three `raftlog start` processes on 127.0.0.1, the built CLI: npm run build first).
//
// --records (1,000,000) records of 100 B values on --partitions (6) partitions, 3 replicas,
// produced through the SDK first; then, --trials times each (the median is the figure):
//   raw    the floor without the SDK: one undici Pool per follower, fetches of `limit` records
//          per partition, all partitions at once, bodies parsed with JSON.parse (this process).
//   one    one SDK consumer in a child process, readFrom 'follower', no group: every record to
//          each partition's high watermark (follow: false); timed from its first next() to its
//          last record.
//   group  three child processes in one consumer group (a fresh group per trial), readFrom
//          'follower'; each pauses what it is given until the group has settled (every partition
//          owned once), then all start at once; timed from the start until their records add up.
// Goals: one >= 300,000 records/s; group >= 1.5 x one. Two cores shared with other work: the
// figures are noisy; the load average is printed with them.
//
// Progress on stderr; one JSON document, then a table, on stdout. Every wait is bounded.
//
//   npx tsx bench/consume.ts [--records 1000000 --partitions 6 --trials 3 --limit 10000
//                             --skip-raw --skip-group]

import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { Raftlog } from '../src/client/index.js';
import { ProcessCluster } from '../test/integration/process-cluster.js';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '1000000' },
    partitions: { type: 'string', default: '6' },
    trials: { type: 'string', default: '3' },
    limit: { type: 'string', default: '10000' },
    'skip-raw': { type: 'boolean', default: false },
    'skip-group': { type: 'boolean', default: false },
    child: { type: 'string' },
  },
});

const RECORDS = Number(args.records);
const PARTITIONS = Number(args.partitions);
const TRIALS = Number(args.trials);
const LIMIT = Number(args.limit);
const VALUE = 'x'.repeat(100);
const TOPIC = 'bench-consume';
const PRODUCE_BATCH = 5000;
const PRODUCE_WINDOW = 8;
const CONSUME_TIMEOUT_MS = 300_000;
const SETTLE_TIMEOUT_MS = 60_000;
const GROUP_SIZE = 3;
const PROGRESS_INTERVAL_MS = 20;
const GOAL_ONE_RECORDS_PER_SECOND = 300_000;
const GOAL_GROUP_RATIO = 1.5;

interface ChildStart {
  urls: string[];
  group?: string;
  expected: number;
  limit: number;
}

type ChildMessage =
  | { type: 'assigned'; partitions: number[] }
  | { type: 'progress'; records: number }
  | { type: 'done'; records: number; firstMs: number; lastMs: number; cpuMs: number };

interface Trial {
  records: number;
  seconds: number;
  recordsPerSecond: number;
  loadAverage: number;
  /** CPU time of the three nodes during the trial, per record (µs); null off Linux. */
  serverCpuUsPerRecord: number | null;
  /** CPU time of the consumer process(es) over the read, per record (µs). */
  clientCpuUsPerRecord: number;
}

/** CPU ms (user + system) a process has used so far, from /proc; null where there is none. */
function processCpuMs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime: fields 14 and 15 of stat (12 and 13 after the name), in ticks of 10 ms.
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

let nodePids: Array<number | undefined> = [];

function serverCpuMs(): number | null {
  let total = 0;
  for (const pid of nodePids) {
    const ms = processCpuMs(pid);
    if (ms === null) return null;
    total += ms;
  }
  return total;
}

function perRecordUs(cpuMs: number, records: number): number {
  return Math.round((cpuMs * 1000 * 100) / records) / 100;
}

function serverPerRecordUs(before: number | null, after: number | null, records: number): number | null {
  return before === null || after === null ? null : perRecordUs(after - before, records);
}

async function main(): Promise<void> {
  if (!(RECORDS >= 1 && RECORDS <= 10_000_000)) throw new Error('--records must be 1 to 10,000,000');
  if (!(TRIALS >= 1 && TRIALS <= 20)) throw new Error('--trials must be 1 to 20');
  const cluster = await ProcessCluster.create(3, 'async');
  const stopCluster = () => cluster.destroy();
  process.once('SIGINT', () => void stopCluster().finally(() => process.exit(130)));
  process.once('SIGTERM', () => void stopCluster().finally(() => process.exit(143)));
  try {
    cluster.startAll();
    await cluster.waitReady(30_000);
    const urls = [...cluster.nodes.values()].map((n) => n.url);
    nodePids = [...cluster.nodes.values()].map((n) => n.process?.pid);
    const produced = await produce(urls);
    const raw: Trial[] = [];
    const one: Trial[] = [];
    const group: Trial[] = [];
    for (let trial = 1; trial <= TRIALS; trial++) {
      if (!args['skip-raw']) raw.push(report('raw', trial, await rawFetch(urls)));
      one.push(report('one', trial, await consumeWith(urls, 1, undefined)));
      if (!args['skip-group'])
        group.push(report('group', trial, await consumeWith(urls, GROUP_SIZE, `g-${trial}`)));
    }
    const oneMedian = median(one);
    const groupMedian = group.length > 0 ? median(group) : null;
    const result = {
      bench: 'consume',
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version },
      records: RECORDS,
      partitions: PARTITIONS,
      valueBytes: VALUE.length,
      limit: LIMIT,
      produce: produced,
      raw: { trials: raw, medianRecordsPerSecond: raw.length > 0 ? median(raw) : null },
      one: { trials: one, medianRecordsPerSecond: oneMedian },
      group: { trials: group, medianRecordsPerSecond: groupMedian },
      groupRatio: groupMedian === null ? null : round3(groupMedian / oneMedian),
      goals: {
        one: `>= ${GOAL_ONE_RECORDS_PER_SECOND} records/s: ${oneMedian >= GOAL_ONE_RECORDS_PER_SECOND ? 'met' : 'NOT met'}`,
        group:
          groupMedian === null
            ? 'not run'
            : `>= ${GOAL_GROUP_RATIO} x one: ${groupMedian >= GOAL_GROUP_RATIO * oneMedian ? 'met' : 'NOT met'}`,
      },
    };
    console.log(JSON.stringify(result, null, 2));
    printTable(raw, one, group, result.groupRatio);
  } finally {
    await stopCluster();
  }
}

function report(name: string, trial: number, result: Trial): Trial {
  progress(
    `${name} trial ${trial}/${TRIALS}: ${result.records} records in ${result.seconds} s = ` +
      `${result.recordsPerSecond} records/s (load ${result.loadAverage})`,
  );
  return result;
}

/** Produces RECORDS records through the SDK, then waits until every replica has them all. */
async function produce(urls: string[]) {
  const client = new Raftlog({ urls });
  try {
    await client.createTopic({ name: TOPIC, partitions: PARTITIONS, replicationFactor: 3 });
    const producer = client.producer({ lingerMs: 20, batchRecordsMax: PRODUCE_BATCH });
    progress(`producing ${RECORDS} records of ${VALUE.length} B to ${PARTITIONS} partitions`);
    const startedMs = performance.now();
    // No keys: records go round-robin over the partitions, and a record is its 100 B value.
    const batch = Array.from({ length: PRODUCE_BATCH }, () => ({ value: VALUE }));
    const window: Promise<unknown>[] = [];
    for (let sent = 0; sent < RECORDS; sent += PRODUCE_BATCH) {
      window.push(producer.send(TOPIC, batch.slice(0, Math.min(PRODUCE_BATCH, RECORDS - sent))));
      if (window.length >= PRODUCE_WINDOW) await window.shift();
    }
    await Promise.all(window);
    await producer.close();
    const seconds = (performance.now() - startedMs) / 1000;
    progress(`produced in ${seconds.toFixed(1)} s; waiting for every replica`);
    await replicasCaughtUp(urls);
    return { seconds: round3(seconds), recordsPerSecond: Math.round(RECORDS / seconds) };
  } finally {
    await client.close();
  }
}

/** Every node's own high watermark of every partition adds up to RECORDS. */
async function replicasCaughtUp(urls: string[]): Promise<void> {
  const probes = urls.map((url) => new Raftlog({ url, direct: true }));
  try {
    const deadline = Date.now() + SETTLE_TIMEOUT_MS;
    for (;;) {
      const marks = await Promise.all(
        probes.flatMap((probe) =>
          Array.from({ length: PARTITIONS }, (_, p) =>
            probe.fetch(TOPIC, p, { offset: 'latest', limit: 1 }).then((r) => r.highWatermark),
          ),
        ),
      );
      if (marks.reduce((a, b) => a + b, 0) >= RECORDS * urls.length) return;
      if (Date.now() > deadline) throw new Error('replicas did not catch up');
      await sleep(200);
    }
  } finally {
    await Promise.all(probes.map((p) => p.close()));
  }
}

/** The floor: plain fetches from followers, one connection per partition, JSON.parse of each body. */
async function rawFetch(urls: string[]): Promise<Trial> {
  const client = new Raftlog({ urls });
  const description = await client.describeTopic(TOPIC);
  await client.close();
  const pools = new Map<number, Pool>();
  const load = loadavg()[0]!;
  const serverBefore = serverCpuMs();
  const clientBefore = process.cpuUsage();
  const startedMs = performance.now();
  let records = 0;
  await Promise.all(
    description.partitions.map(async (p) => {
      const follower = p.replicas.find((r) => r !== p.leader)!;
      let pool = pools.get(follower);
      if (!pool) {
        pool = new Pool(urls[follower - 1]!, { connections: PARTITIONS });
        pools.set(follower, pool);
      }
      let offset = 0;
      while (offset < p.highWatermark) {
        const response = await pool.request({
          method: 'GET',
          path: `/v1/topics/${TOPIC}/partitions/${p.partition}/records?offset=${offset}&limit=${LIMIT}`,
        });
        const body = JSON.parse(await response.body.text()) as { records: unknown[]; nextOffset: number };
        records += body.records.length;
        offset = body.nextOffset;
      }
    }),
  );
  const seconds = (performance.now() - startedMs) / 1000;
  const clientCpu = process.cpuUsage(clientBefore);
  const serverAfter = serverCpuMs();
  await Promise.all([...pools.values()].map((pool) => pool.close()));
  return {
    records,
    seconds: round3(seconds),
    recordsPerSecond: Math.round(records / seconds),
    loadAverage: round2(load),
    serverCpuUsPerRecord: serverPerRecordUs(serverBefore, serverAfter, records),
    clientCpuUsPerRecord: perRecordUs((clientCpu.user + clientCpu.system) / 1000, records),
  };
}

async function consumeWith(urls: string[], count: number, group: string | undefined): Promise<Trial> {
  const children: ChildProcess[] = [];
  const assigned = new Map<number, number[]>();
  const counts = new Array<number>(count).fill(0);
  const done: Array<Extract<ChildMessage, { type: 'done' }> | undefined> = new Array(count).fill(undefined);
  try {
    for (let i = 0; i < count; i++) {
      const start: ChildStart = { urls, group, expected: group ? 0 : RECORDS, limit: LIMIT };
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
      await waitFor(
        () => {
          const owned = [...assigned.values()].flat();
          return (
            assigned.size === count && owned.length === PARTITIONS && new Set(owned).size === owned.length
          );
        },
        SETTLE_TIMEOUT_MS,
        'the group to settle',
      );
    }
    const load = loadavg()[0]!;
    const serverBefore = serverCpuMs();
    const startedMs = Date.now();
    for (const child of children) child.send({ type: 'go' });
    await waitFor(() => counts.reduce((a, b) => a + b, 0) >= RECORDS, CONSUME_TIMEOUT_MS, 'the consumers');
    const serverAfter = serverCpuMs();
    const total = counts.reduce((a, b) => a + b, 0);
    // Each consumer reports its CPU time when it stops (a group member: when told to).
    if (group) for (const child of children) child.kill('SIGTERM');
    await waitFor(() => done.every((d) => d !== undefined), 20_000, 'the consumers to finish');
    const clientCpuMs = done.reduce((sum, d) => sum + d!.cpuMs, 0);
    // One consumer times itself: from its first next() to its last record; a group from the start
    // signal to the last record of any member (one clock: the same machine).
    const lastMs = Math.max(...done.map((d) => d!.lastMs));
    const seconds = group ? (lastMs - startedMs) / 1000 : (done[0]!.lastMs - done[0]!.firstMs) / 1000;
    return {
      records: total,
      seconds: round3(seconds),
      recordsPerSecond: Math.round(total / seconds),
      loadAverage: round2(load),
      serverCpuUsPerRecord: serverPerRecordUs(serverBefore, serverAfter, total),
      clientCpuUsPerRecord: perRecordUs(clientCpuMs, total),
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
    topic: TOPIC,
    group: start.group,
    limit: start.limit,
    waitMs: 500,
    bufferRecordsMax: 2 * start.limit,
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
  // CPU counts from the start signal, for one consumer and a group member alike (a member has
  // joined and waited before it).
  let cpuBefore = process.cpuUsage();
  const began = new Promise<void>((resolve) =>
    process.on('message', (message: { type: string }) => {
      if (message.type !== 'go') return;
      go = true;
      cpuBefore = process.cpuUsage();
      consumer.resume([...assigned]);
      resolve();
    }),
  );
  if (!start.group) await began;
  let records = 0;
  let lastMs = 0;
  // The count goes to the parent every 20 ms, so it sees the total reached (group members follow,
  // and stop only when told to); each record's time is kept to time the last one exactly.
  let reported = 0;
  const reporter = setInterval(() => {
    if (records === reported) return;
    reported = records;
    process.send?.({ type: 'progress', records });
  }, PROGRESS_INTERVAL_MS);
  const firstMs = Date.now();
  for await (const _ of consumer.records({ signal: controller.signal, follow: start.group !== undefined })) {
    records++;
    lastMs = Date.now();
    if (records === start.expected) break;
  }
  clearInterval(reporter);
  const cpu = process.cpuUsage(cpuBefore);
  process.send?.({ type: 'done', records, firstMs, lastMs, cpuMs: (cpu.user + cpu.system) / 1000 });
  await consumer.close().catch(() => undefined);
  await client.close();
  process.disconnect?.();
}

function printTable(raw: Trial[], one: Trial[], group: Trial[], ratio: number | null): void {
  const rows: string[][] = [];
  const add = (name: string, trials: Trial[]) => {
    if (trials.length === 0) return;
    rows.push([
      name,
      trials.map((t) => String(t.recordsPerSecond)).join(', '),
      String(median(trials)),
      trials.map((t) => String(t.serverCpuUsPerRecord ?? '-')).join(', '),
      trials.map((t) => String(t.clientCpuUsPerRecord)).join(', '),
      trials.map((t) => String(t.loadAverage)).join(', '),
    ]);
  };
  add('raw fetch, followers', raw);
  add('one SDK consumer, follower', one);
  add(`group of ${GROUP_SIZE} SDK consumers`, group);
  const header = [
    'case',
    'records/s per trial',
    'median',
    'server CPU µs/record',
    'client CPU µs/record',
    'load',
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log('');
  console.log(line(header));
  for (const row of rows) console.log(line(row));
  if (ratio !== null) console.log(`group / one: ${ratio} (goal >= ${GOAL_GROUP_RATIO})`);
}

function median(trials: Trial[]): number {
  const sorted = trials.map((t) => t.recordsPerSecond).sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

function progress(line: string): void {
  process.stderr.write(`bench:consume ${new Date().toISOString().slice(11, 19)} ${line}\n`);
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

if (args.child !== undefined) {
  runChild(JSON.parse(args.child) as ChildStart).then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
} else {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
