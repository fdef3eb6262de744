// bench:produce — produce over HTTP against a real 3-node cluster (three `raftlog start` processes
// on 127.0.0.1), one topic in async mode with 3 replicas, driven by autocannon.
//
//   latency:    one connection, one request at a time, one 100-byte record per request, sent to
//               the partition's leader (and, for comparison, through a follower that forwards).
//               Every 200 is a record committed by a majority, so the response time is the
//               commit latency a client sees. autocannon's own histogram has a 1 ms resolution,
//               so the exact response time of every request is taken from its 'response' event.
//   throughput: 64 connections, each request 100 records of 100 bytes; the topic has 3
//               partitions, one led by each node, and each node gets a third of the connections
//               writing to the partition it leads (what a partition-aware client does).
//
//   warm-up:    the nodes' JIT needs thousands of requests before the request path is compiled
//               (at one connection, measured: 300 requests/s in the first second, a steady 1,300
//               from the ninth). Each latency case is first driven by 8 connections for 3 s, then
//               at one connection in 1 s windows until the rate stops climbing (two windows in a
//               row within 5% of the best one, after at least 4; at most 15).
//               The JSON reports how long each warm-up took and its last rate.
//
// Prints JSON, then a table. Every run is bounded by --seconds and by a request cap.
//
//   npm run bench:produce [-- --seconds 10 --connections 64 --records-per-request 100]

import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { ProcessCluster } from '../test/integration/process-cluster.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '64' },
    'records-per-request': { type: 'string', default: '100' },
    'record-bytes': { type: 'string', default: '100' },
    persistence: { type: 'string', default: 'async' },
    nodes: { type: 'string', default: '3' },
  },
});
const SECONDS = Number(args.seconds);
const CONNECTIONS = Number(args.connections);
const RECORDS_PER_REQUEST = Number(args['records-per-request']);
const RECORD_BYTES = Number(args['record-bytes']);
const PERSISTENCE = String(args.persistence);
const NODES = Number(args.nodes);
/** Hard cap on requests per run, whatever the duration. */
const MAX_REQUESTS = 2_000_000;
const WARMUP_SECONDS = 2;
/** Warm-up of a latency case: a burst at several connections, then 1 s windows at one. */
const WARMUP_BURST_CONNECTIONS = 8;
const WARMUP_BURST_SECONDS = 3;
const WARMUP_WINDOWS_MIN = 4;
const WARMUP_WINDOWS_MAX = 15;
const WARMUP_STEADY_RATIO = 0.05;

interface LatencySummary {
  requests: number;
  errors: number;
  non2xx: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  requestsPerSecond: number;
}

interface ThroughputSummary {
  connections: number;
  recordsPerRequest: number;
  requests: number;
  errors: number;
  non2xx: number;
  recordsPerSecond: number;
  payloadMBps: number;
  p50Ms: number;
  p99Ms: number;
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function value(i: number): string {
  const head = `r${i}-`;
  return head + 'x'.repeat(Math.max(0, RECORD_BYTES - head.length));
}

function body(records: number, partition: number | null): string {
  return JSON.stringify({
    records: Array.from({ length: records }, (_, i) =>
      partition === null ? { value: value(i) } : { value: value(i), partition },
    ),
  });
}

/** One autocannon run; resolves with its result and the exact response time of each 200. */
function run(
  url: string,
  options: { connections: number; seconds: number; body: string },
): Promise<{ result: autocannon.Result; times: Float64Array }> {
  const times = new Float64Array(MAX_REQUESTS);
  let count = 0;
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: options.body,
        connections: options.connections,
        pipelining: 1,
        duration: options.seconds,
        amount: undefined,
        timeout: 10,
      },
      (error, result) => {
        if (error) reject(error);
        else resolve({ result, times: times.subarray(0, count).sort() });
      },
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode === 200 && count < MAX_REQUESTS) times[count++] = responseTime;
      if (count >= MAX_REQUESTS) instance.stop();
    });
  });
}

function latencySummary(result: autocannon.Result, times: Float64Array, seconds: number): LatencySummary {
  return {
    requests: times.length,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    p50Ms: quantile(times, 0.5),
    p90Ms: quantile(times, 0.9),
    p99Ms: quantile(times, 0.99),
    p999Ms: quantile(times, 0.999),
    maxMs: times.length ? times[times.length - 1]! : Number.NaN,
    requestsPerSecond: times.length / seconds,
  };
}

interface WarmUp {
  seconds: number;
  lastRequestsPerSecond: number;
}

/**
 * Drives a latency case until the JIT is done with its path: a burst, then one-connection windows
 * until two consecutive windows both come within WARMUP_STEADY_RATIO of the best window so far
 * (the rate has stopped climbing), after at least WARMUP_WINDOWS_MIN windows.
 */
async function warmUp(url: string, requestBody: string): Promise<WarmUp> {
  await run(url, { connections: WARMUP_BURST_CONNECTIONS, seconds: WARMUP_BURST_SECONDS, body: requestBody });
  let best = 0;
  let steadyWindows = 0;
  let rate = 0;
  let window = 1;
  for (; window <= WARMUP_WINDOWS_MAX; window++) {
    rate = (await run(url, { connections: 1, seconds: 1, body: requestBody })).times.length;
    best = Math.max(best, rate);
    steadyWindows = rate >= best * (1 - WARMUP_STEADY_RATIO) ? steadyWindows + 1 : 0;
    if (window >= WARMUP_WINDOWS_MIN && steadyWindows >= 2) break;
  }
  return {
    seconds: WARMUP_BURST_SECONDS + Math.min(window, WARMUP_WINDOWS_MAX),
    lastRequestsPerSecond: rate,
  };
}

async function main(): Promise<void> {
  const cluster = await ProcessCluster.create(NODES, PERSISTENCE);
  try {
    cluster.startAll();
    await cluster.waitReady(30_000);

    // Latency: one partition, three replicas.
    const created = await cluster.request(1, 'POST', '/v1/topics', {
      name: 'bench-latency',
      partitions: 1,
      replicationFactor: Math.min(3, NODES),
      config: { persistence: PERSISTENCE },
    });
    if (created.status !== 201) throw new Error(`create topic: ${JSON.stringify(created.body)}`);
    const leader: number = created.body.partitions[0].leader;
    const follower = [1, 2, 3].slice(0, NODES).find((id) => id !== leader) ?? leader;
    const latencyUrl = (id: number) => `${cluster.node(id).url}/v1/topics/bench-latency/records`;
    const one = body(1, null);

    const warmUpToLeader = await warmUp(latencyUrl(leader), one);
    const toLeader = await run(latencyUrl(leader), { connections: 1, seconds: SECONDS, body: one });
    const warmUpViaFollower = await warmUp(latencyUrl(follower), one);
    const viaFollower = await run(latencyUrl(follower), { connections: 1, seconds: SECONDS, body: one });

    // Throughput: three partitions, one led by each node (placement balances leaders).
    const topic = await cluster.request(1, 'POST', '/v1/topics', {
      name: 'bench-throughput',
      partitions: 3,
      replicationFactor: Math.min(3, NODES),
      config: { persistence: PERSISTENCE },
    });
    if (topic.status !== 201) throw new Error(`create topic: ${JSON.stringify(topic.body)}`);
    const leaders: { partition: number; leader: number }[] = topic.body.partitions;
    const perTarget = leaders.map((p, i) => ({
      url: `${cluster.node(p.leader).url}/v1/topics/bench-throughput/records`,
      partition: p.partition,
      connections: Math.floor(CONNECTIONS / leaders.length) + (i < CONNECTIONS % leaders.length ? 1 : 0),
    }));
    const warm = perTarget.map((t) =>
      run(t.url, {
        connections: t.connections,
        seconds: WARMUP_SECONDS,
        body: body(RECORDS_PER_REQUEST, t.partition),
      }),
    );
    await Promise.all(warm);
    const runs = await Promise.all(
      perTarget.map((t) =>
        run(t.url, {
          connections: t.connections,
          seconds: SECONDS,
          body: body(RECORDS_PER_REQUEST, t.partition),
        }),
      ),
    );
    const allTimes = Float64Array.from(runs.flatMap((r) => Array.from(r.times))).sort();
    const requests = allTimes.length;
    const throughput: ThroughputSummary = {
      connections: CONNECTIONS,
      recordsPerRequest: RECORDS_PER_REQUEST,
      requests,
      errors: runs.reduce((n, r) => n + r.result.errors + r.result.timeouts, 0),
      non2xx: runs.reduce((n, r) => n + r.result.non2xx, 0),
      recordsPerSecond: (requests * RECORDS_PER_REQUEST) / SECONDS,
      payloadMBps: (requests * RECORDS_PER_REQUEST * RECORD_BYTES) / SECONDS / 1e6,
      p50Ms: quantile(allTimes, 0.5),
      p99Ms: quantile(allTimes, 0.99),
    };

    const report = {
      bench: 'produce',
      persistence: PERSISTENCE,
      nodes: NODES,
      replicas: Math.min(3, NODES),
      recordBytes: RECORD_BYTES,
      seconds: SECONDS,
      latency: {
        toLeader: latencySummary(toLeader.result, toLeader.times, SECONDS),
        viaFollower: latencySummary(viaFollower.result, viaFollower.times, SECONDS),
        warmUp: { toLeader: warmUpToLeader, viaFollower: warmUpViaFollower },
      },
      throughput,
      goals: {
        p50AtMostMs: 0.45,
        p99AtMostMs: 2,
        recordsPerSecondAtLeast: 200_000,
      },
    };
    console.log(JSON.stringify(report, null, 2));
    printTable(report.latency.toLeader, report.latency.viaFollower, throughput);
    console.log(
      `warm-up before each latency case: to leader ${warmUpToLeader.seconds} s (last ` +
        `${warmUpToLeader.lastRequestsPerSecond} req/s), via follower ${warmUpViaFollower.seconds} s ` +
        `(last ${warmUpViaFollower.lastRequestsPerSecond} req/s)`,
    );
  } finally {
    await cluster.destroy();
  }
}

function printTable(
  toLeader: LatencySummary,
  viaFollower: LatencySummary,
  throughput: ThroughputSummary,
): void {
  const ms = (n: number) => n.toFixed(3);
  const rows = [
    ['case', 'requests', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'req/s', 'errors'],
    ...(
      [
        ['1 record, 1 conn, to leader', toLeader],
        ['1 record, 1 conn, via follower', viaFollower],
      ] as const
    ).map(([name, s]) => [
      name,
      String(s.requests),
      ms(s.p50Ms),
      ms(s.p90Ms),
      ms(s.p99Ms),
      ms(s.p999Ms),
      s.requestsPerSecond.toFixed(0),
      String(s.errors + s.non2xx),
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const row of rows) console.log(row.map((cell, c) => cell.padEnd(widths[c]!)).join('  '));
  console.log(
    `\n${throughput.connections} connections x ${throughput.recordsPerRequest} records of ${RECORD_BYTES} B: ` +
      `${Math.round(throughput.recordsPerSecond).toLocaleString('en-US')} records/s ` +
      `(${throughput.payloadMBps.toFixed(1)} MB/s of payload), request p50 ${ms(throughput.p50Ms)} ms, ` +
      `p99 ${ms(throughput.p99Ms)} ms, errors ${throughput.errors + throughput.non2xx}`,
  );
}

await main();
