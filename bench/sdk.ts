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
//   consumer throughput is measured by bench/consume.ts (npm run bench:consume).
//
// Prints progress to stderr, then one JSON document, then a table. Every wait is bounded.
//
//   npx tsx bench/sdk.ts [--requests 1000 --rounds 10 --persistence async]

import { cpus, loadavg, totalmem } from 'node:os';
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
    persistence: { type: 'string', default: 'async' },
  },
});

const VALUE = 'x'.repeat(100);
const LATENCY_TOPIC = 'bench-sdk-latency';
const SETTLE_TIMEOUT_MS = 60_000;

await main();

async function main(): Promise<void> {
  const requests = Number(args.requests);
  const rounds = Number(args.rounds);
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
    result.latency = await latency(urls, requests, rounds);
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
  console.log(lines.join('\n'));
}
