// chaos:memory — memory topics at full size on three real `raftlog start` processes (harness:
// test/integration/memory-topics.ts). Three scenarios, each on a fresh cluster:
//   size:  a memory topic with retentionBytes 1 MiB receives --megabytes (100 MB); afterwards every
//          replica must hold at most --held-max-mib for it, with its log start moved and 416 below it;
//   time:  the same with retentionMs --retention-ms instead; once that time has passed, every
//          replica must hold at most --time-held-max-mib (the open chunk);
//   bound: nodes started with --memory-topics-max-bytes (--bound-mib) and a memory topic without
//          retention fed until 507 MEMORY_FULL; the node must stay up, serve fetches and a disk
//          topic, and its resident memory must stay within idle + bound + --overhead-mib.
//
// Progress goes to stderr; JSON and tables to stdout. Exits 1 when a check fails.
//
//   npx tsx test/chaos/memory-topics.ts [--megabytes 100 --scenarios size,time,bound --bound-mib 256]

import { parseArgs } from 'node:util';
import {
  createTopic,
  type FeedResult,
  feed,
  formatReports,
  leaderOf,
  mib,
  type ReplicaReport,
  replicaReports,
  rssOf,
  waitForRetention,
} from '../integration/memory-topics.js';
import { ProcessCluster } from '../integration/process-cluster.js';

const { values: args } = parseArgs({
  options: {
    megabytes: { type: 'string', default: '100' },
    scenarios: { type: 'string', default: 'size,time,bound' },
    'record-bytes': { type: 'string', default: '1000' },
    'records-per-request': { type: 'string', default: '100' },
    clients: { type: 'string', default: '4' },
    'retention-ms': { type: 'string', default: '5000' },
    'held-max-mib': { type: 'string', default: '4' },
    'time-held-max-mib': { type: 'string', default: '1.25' },
    'bound-mib': { type: 'string', default: '256' },
    'overhead-mib': { type: 'string', default: '256' },
  },
});
const MIB = 1024 * 1024;
const BYTES = Number(args.megabytes) * 1e6;
const FEED = {
  recordBytes: Number(args['record-bytes']),
  recordsPerRequest: Number(args['records-per-request']),
  clients: Number(args.clients),
};
const RETENTION_MS = Number(args['retention-ms']);
const HELD_MAX_BYTES = Number(args['held-max-mib']) * MIB;
/** By time, once retentionMs has passed, only the open chunk (1 MiB) stays. */
const TIME_HELD_MAX_BYTES = Number(args['time-held-max-mib']) * MIB;
const BOUND_BYTES = Number(args['bound-mib']) * MIB;
const OVERHEAD_BYTES = Number(args['overhead-mib']) * MIB;
const NODE_IDS = [1, 2, 3];

interface ScenarioResult {
  scenario: string;
  ok: boolean;
  problems: string[];
  feed: Omit<FeedResult, 'peakRssBytes' | 'refusal'> & { peakRssMiB: Record<number, string> };
  idleRssMiB?: Record<number, string>;
  refusal?: { status: number; code: string; retryAfter: string | undefined };
  replicas: ReplicaReport[];
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

async function withCluster<T>(
  extraArgs: string[],
  body: (cluster: ProcessCluster) => Promise<T>,
): Promise<T> {
  const cluster = await ProcessCluster.create(3, 'async');
  try {
    for (const id of NODE_IDS) cluster.extraArgs.set(id, extraArgs);
    cluster.startAll();
    await cluster.waitReady(30_000);
    return await body(cluster);
  } finally {
    await cluster.destroy();
  }
}

function feedSummary(result: FeedResult): ScenarioResult['feed'] {
  return {
    acknowledgedRecords: result.acknowledgedRecords,
    acknowledgedBytes: result.acknowledgedBytes,
    seconds: result.seconds,
    peakRssMiB: Object.fromEntries([...result.peakRssBytes].map(([id, bytes]) => [id, mib(bytes)])),
  };
}

function checkRetained(reports: readonly ReplicaReport[], records: number, heldMax: number): string[] {
  const problems: string[] = [];
  for (const r of reports) {
    if (r.highWatermark < records)
      problems.push(`node ${r.node}: highWatermark ${r.highWatermark} < ${records}`);
    if (r.logStartOffset <= 0) problems.push(`node ${r.node}: log start did not move`);
    if (r.memoryBytes > heldMax) problems.push(`node ${r.node}: holds ${mib(r.memoryBytes)} MiB`);
    if (r.belowStart !== '416 OFFSET_OUT_OF_RANGE')
      problems.push(`node ${r.node}: below start ${r.belowStart}`);
  }
  return problems;
}

async function retentionScenario(
  scenario: string,
  config: Record<string, unknown>,
  heldMax: number,
  waitMs: number,
): Promise<ScenarioResult> {
  return withCluster([], async (cluster) => {
    const topic = `memory-${scenario}`;
    const idle = new Map(NODE_IDS.map((id) => [id, rssOf(cluster, id)]));
    await createTopic(cluster, topic, { persistence: 'memory', ...config });
    log(`${scenario}: feeding ${BYTES / 1e6} MB to ${topic} ${JSON.stringify(config)}`);
    const result = await feed(cluster, { topic, bytes: BYTES, ...FEED });
    log(`${scenario}: ${result.acknowledgedBytes / 1e6} MB acknowledged in ${result.seconds.toFixed(1)} s`);
    const reports = await waitForRetention(cluster, topic, result.acknowledgedRecords, heldMax, waitMs);
    const problems = checkRetained(reports, result.acknowledgedRecords, heldMax);
    process.stdout.write(`${formatReports(`${scenario}: after ${BYTES / 1e6} MB`, reports)}\n`);
    const idleRssMiB = Object.fromEntries([...idle].map(([id, bytes]) => [id, mib(bytes)]));
    process.stdout.write(
      `idle RSS MiB ${JSON.stringify(idleRssMiB)}, peak RSS MiB ${JSON.stringify(feedSummary(result).peakRssMiB)}\n`,
    );
    return {
      scenario,
      ok: problems.length === 0,
      problems,
      feed: feedSummary(result),
      idleRssMiB,
      replicas: reports,
    };
  });
}

async function boundScenario(): Promise<ScenarioResult> {
  return withCluster(['--memory-topics-max-bytes', String(BOUND_BYTES)], async (cluster) => {
    const idle = new Map(NODE_IDS.map((id) => [id, rssOf(cluster, id)]));
    await createTopic(cluster, 'memory-full', { persistence: 'memory', retentionMs: -1 });
    await createTopic(cluster, 'disk', { persistence: 'async' });
    log(`bound: feeding memory-full until 507, bound ${BOUND_BYTES / MIB} MiB`);
    const result = await feed(cluster, {
      topic: 'memory-full',
      bytes: 4 * BOUND_BYTES,
      untilFull: true,
      ...FEED,
    });
    const problems: string[] = [];
    const refusal = result.refusal;
    if (refusal === null) problems.push('no 507 before 4 x the bound was acknowledged');
    else if (refusal.body?.error?.code !== 'MEMORY_FULL')
      problems.push(`refused with ${JSON.stringify(refusal.body)}`);
    // Up, serving fetches, the disk topic, and still refusing memory topics.
    const leader = await leaderOf(cluster, 'memory-full');
    for (const id of NODE_IDS) {
      if (!cluster.isRunning(id)) problems.push(`node ${id} exited`);
      const health = await cluster.request(id, 'GET', '/healthz');
      if (health.status !== 200) problems.push(`node ${id}: /healthz ${health.status}`);
      const read = await cluster.request(
        id,
        'GET',
        '/v1/topics/memory-full/partitions/0/records?offset=0&limit=10',
      );
      if (read.status !== 200 || read.body.records.length !== 10)
        problems.push(`node ${id}: fetch ${read.status}`);
    }
    const disk = await cluster.produceRetrying(
      leader,
      'disk',
      [{ value: 'still writable' }],
      Date.now() + 10_000,
    );
    if (disk.status !== 200) problems.push(`disk topic: ${disk.status} ${JSON.stringify(disk.body)}`);
    // A request like the refused one is refused again (a small one may still fit: the bound is
    // on bytes, not a switch).
    const value = 'v'.repeat(FEED.recordBytes);
    const again = await cluster.request(leader, 'POST', '/v1/topics/memory-full/records', {
      records: Array.from({ length: FEED.recordsPerRequest }, () => ({ value })),
    });
    if (again.status !== 507) problems.push(`memory topic after the bound: ${again.status}`);
    const reports = await replicaReports(cluster, 'memory-full');
    for (const r of reports) {
      const peak = result.peakRssBytes.get(r.node)!;
      const limit = idle.get(r.node)! + BOUND_BYTES + OVERHEAD_BYTES;
      if (Math.max(peak, r.rssBytes) > limit)
        problems.push(
          `node ${r.node}: RSS peak ${mib(peak)} MiB > idle + bound + overhead ${mib(limit)} MiB`,
        );
      if (r.nodeMemoryTopicsBytes > BOUND_BYTES)
        problems.push(`node ${r.node}: holds ${mib(r.nodeMemoryTopicsBytes)} MiB`);
    }
    process.stdout.write(
      `${formatReports(`bound: ${BOUND_BYTES / MIB} MiB, after the first 507`, reports)}\n`,
    );
    process.stdout.write(
      `idle RSS MiB ${JSON.stringify(Object.fromEntries([...idle].map(([id, b]) => [id, mib(b)])))}, ` +
        `peak RSS MiB ${JSON.stringify(feedSummary(result).peakRssMiB)}\n`,
    );
    return {
      scenario: 'bound',
      ok: problems.length === 0,
      problems,
      feed: feedSummary(result),
      idleRssMiB: Object.fromEntries([...idle].map(([id, bytes]) => [id, mib(bytes)])),
      ...(refusal
        ? {
            refusal: {
              status: refusal.status,
              code: String(refusal.body?.error?.code),
              retryAfter: refusal.headers['retry-after'] as string | undefined,
            },
          }
        : {}),
      replicas: reports,
    };
  });
}

async function main(): Promise<number> {
  const scenarios = String(args.scenarios).split(',');
  const results: ScenarioResult[] = [];
  for (const scenario of scenarios) {
    if (scenario === 'size') {
      results.push(
        await retentionScenario('size', { retentionBytes: MIB, retentionMs: -1 }, HELD_MAX_BYTES, 60_000),
      );
    } else if (scenario === 'time') {
      results.push(
        await retentionScenario(
          'time',
          { retentionMs: RETENTION_MS, retentionBytes: -1 },
          TIME_HELD_MAX_BYTES,
          RETENTION_MS + 60_000,
        ),
      );
    } else if (scenario === 'bound') {
      results.push(await boundScenario());
    } else {
      throw new Error(`unknown scenario ${scenario}`);
    }
    const last = results[results.length - 1]!;
    log(`${last.scenario}: ${last.ok ? 'ok' : `FAILED: ${last.problems.join('; ')}`}`);
  }
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  return results.every((r) => r.ok) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
