// bench:reads — what a linearizable fetch costs next to a local one, from the partition leader and
// from a follower, against a real 3-node cluster (three `raftlog start` processes on 127.0.0.1).
//
//   setup:   one topic, 1 partition, 3 replicas, --persistence (default async); 1,000 records of
//            100 B produced to the leader before the first case.
//   a case:  {leader, follower} x {local, linearizable}: sequential
//            GET …/partitions/0/records?offset=latest&limit=1&consistency=… over one keep-alive
//            connection (undici Client), one request at a time, each timed with performance.now()
//            until its body has been read. offset=latest returns no records but runs the whole
//            read path (src/broker/fetch.ts: ReadIndex and the wait for apply come before the
//            offset is resolved); no storage read happens in any case, so the difference between
//            rows is the consistency check alone.
//   + writes: the same four cases again while a background producer on its own connection writes
//            one 100 B record to the leader at a time, at most one request per ms, so reads race
//            with commits. It shares this process's event loop with the reader (a few µs per write).
//   warm-up: the nodes' JIT needs thousands of requests. Each case first runs in 1 s windows until
//            the rate stops climbing (two windows in a row none more than 5% above the best before
//            them, after at least 3; at most 10), then measures for --seconds or --requests,
//            whichever comes first.
//            The JSON reports each warm-up; the table marks one that never settled with '*'.
//   peer reads/req: read syscalls of the nodes other than the one asked, per measured request
//            (/proc/PID/io, Linux). A read served from the leader lease costs no peer traffic
//            (~0 from the leader, ~1 from a follower: its ReadIndex to the leader); a read that
//            needs a heartbeat round adds about one per follower and one per answer. In the
//            '+ writes' rows replication traffic is counted too.
//   load:    the machine's 1-minute load average at the start and the end goes into the JSON: a
//            run beside other busy processes is not comparable with one on a quiet machine.
//
// Latencies are recorded in µs in an HDR histogram and reported in ms. Prints a progress line per
// case to stderr, then JSON, then a table. Every loop is bounded in count and time.
//
//   npx tsx bench/reads.ts [--seconds 5 --requests 200000 --persistence async --skip-writes]

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, platform, release, totalmem } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build, type Histogram } from 'hdr-histogram-js';
import { Client } from 'undici';
import { ProcessCluster } from '../test/integration/process-cluster.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    requests: { type: 'string', default: '200000' },
    persistence: { type: 'string', default: 'async' },
    'skip-writes': { type: 'boolean', default: false },
  },
});
const SECONDS = Number(args.seconds);
const REQUESTS_MAX = Number(args.requests);
const PERSISTENCE = String(args.persistence);
const WITH_WRITES = !args['skip-writes'];
if (!(SECONDS > 0 && SECONDS <= 600)) throw new Error('--seconds must be in (0, 600]');
if (!(Number.isSafeInteger(REQUESTS_MAX) && REQUESTS_MAX > 0)) throw new Error('--requests must be > 0');

const NODES = 3;
const TOPIC = 'bench-reads';
const RECORDS = 1000;
const RECORDS_PER_PRODUCE = 100;
const RECORD_BYTES = 100;
const WARMUP_WINDOW_SECONDS = 1;
const WARMUP_WINDOWS_MIN = 3;
const WARMUP_WINDOWS_MAX = 10;
const WARMUP_STEADY_RATIO = 0.05;
/** A case gives up after this many failed requests (no answer at all): the cluster is broken. */
const FAILURES_MAX = 100;
const REQUEST_TIMEOUT_MS = 10_000;
/** The background producer: at most one request per this many ms, and a hard cap on requests. */
const WRITE_INTERVAL_MS = 1;
const WRITES_MAX = Math.ceil(
  ((WARMUP_WINDOWS_MAX * WARMUP_WINDOW_SECONDS + SECONDS + 5) * 1000) / WRITE_INTERVAL_MS,
);
/** Before the cases, every node must name the same leader this many polls in a row. */
const LEADER_STABLE_POLLS = 3;
const LEADER_POLL_MS = 300;
const LEADER_WAIT_MS = 20_000;
/** Histogram range in µs: 1 µs to 60 s, 3 significant digits. */
const HISTOGRAM_MAX_US = 60_000_000;

type Role = 'leader' | 'follower';
type Consistency = 'local' | 'linearizable';

interface CaseSpec {
  role: Role;
  consistency: Consistency;
  withWrites: boolean;
}

interface WarmUp {
  seconds: number;
  requests: number;
  lastRequestsPerSecond: number;
  /** False: WARMUP_WINDOWS_MAX passed before the rate settled (a noisy machine, or still warming). */
  settled: boolean;
}

interface Measured {
  requests: number;
  non200: number;
  failures: number;
  /** Answers whose x-raftlog-node was not the node asked (a forward: should never happen). */
  servedElsewhere: number;
  seconds: number;
  lastBody: string;
}

interface CaseResult {
  name: string;
  role: Role;
  node: number;
  consistency: Consistency;
  withWrites: boolean;
  warmUp: WarmUp;
  requests: number;
  non200: number;
  failures: number;
  servedElsewhere: number;
  seconds: number;
  requestsPerSecond: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  /** Read syscalls of each other node per measured request (null where /proc is not readable). */
  peerReadSyscallsPerRequest: Record<string, number> | null;
  /** Writes committed by the background producer during the measurement, per second. */
  writesPerSecond: number | null;
  writeNon200: number | null;
  highWatermarkAtEnd: number | null;
  /** Leader and term before and after the case, as the leader saw them. */
  leaderBefore: LeaderView;
  leaderAfter: LeaderView;
  /** The leader or its term changed around the case: a new term starts without a lease. */
  leaderChanged: boolean;
}

interface LeaderView {
  leader: number;
  term: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const round3 = (n: number) => Math.round(n * 1000) / 1000;

function recordValue(i: number): string {
  const head = `r${i}-`;
  return head + 'x'.repeat(Math.max(0, RECORD_BYTES - head.length));
}

function readPath(consistency: Consistency): string {
  return `/v1/topics/${TOPIC}/partitions/0/records?offset=latest&limit=1&consistency=${consistency}`;
}

/**
 * Sequential GETs on one connection until `seconds` pass or `requestsMax` are sent; records the
 * time of each 200 in µs when a histogram is given.
 */
async function drive(
  client: Client,
  options: { path: string; node: number; seconds: number; requestsMax: number; histogram: Histogram | null },
): Promise<Measured> {
  const expectedNode = String(options.node);
  const startMs = performance.now();
  const deadlineMs = startMs + options.seconds * 1000;
  const result: Measured = {
    requests: 0,
    non200: 0,
    failures: 0,
    servedElsewhere: 0,
    seconds: 0,
    lastBody: '',
  };
  while (result.requests < options.requestsMax && performance.now() < deadlineMs) {
    result.requests++;
    const sentMs = performance.now();
    try {
      const response = await client.request({
        method: 'GET',
        path: options.path,
        headersTimeout: REQUEST_TIMEOUT_MS,
        bodyTimeout: REQUEST_TIMEOUT_MS,
      });
      const body = await response.body.text();
      const elapsedUs = Math.round((performance.now() - sentMs) * 1000);
      if (response.statusCode !== 200) result.non200++;
      else options.histogram?.recordValue(Math.min(HISTOGRAM_MAX_US, Math.max(1, elapsedUs)));
      if (response.headers['x-raftlog-node'] !== expectedNode) result.servedElsewhere++;
      result.lastBody = body;
    } catch {
      result.failures++;
      if (result.failures >= FAILURES_MAX) break;
    }
  }
  result.seconds = (performance.now() - startMs) / 1000;
  return result;
}

/**
 * 1 s windows until the rate stops climbing: a window is steady when it does not beat the best
 * window before it by more than WARMUP_STEADY_RATIO (a slower one is noise, not warming); two steady
 * windows in a row end the warm-up, after at least WARMUP_WINDOWS_MIN windows.
 */
async function warmUp(client: Client, path: string, node: number): Promise<WarmUp> {
  let best = 0;
  let steadyWindows = 0;
  let rate = 0;
  let requests = 0;
  let settled = false;
  const startMs = performance.now();
  for (let window = 1; window <= WARMUP_WINDOWS_MAX && !settled; window++) {
    const run = await drive(client, {
      path,
      node,
      seconds: WARMUP_WINDOW_SECONDS,
      requestsMax: REQUESTS_MAX,
      histogram: null,
    });
    requests += run.requests;
    rate = (run.requests - run.non200 - run.failures) / run.seconds;
    const steady = best > 0 && rate <= best * (1 + WARMUP_STEADY_RATIO);
    steadyWindows = steady ? steadyWindows + 1 : 0;
    best = Math.max(best, rate);
    settled = window >= WARMUP_WINDOWS_MIN && steadyWindows >= 2;
  }
  return {
    seconds: round3((performance.now() - startMs) / 1000),
    requests,
    lastRequestsPerSecond: Math.round(rate),
    settled,
  };
}

interface Writer {
  /** Writes answered 200 and not, so far. */
  counts(): { ok: number; non200: number };
  stop(): Promise<void>;
}

/** One record per request to the leader, at most one request per WRITE_INTERVAL_MS. */
function startWriter(url: string): Writer {
  const client = new Client(url, { pipelining: 1 });
  const body = JSON.stringify({ records: [{ value: recordValue(0), partition: 0 }] });
  let ok = 0;
  let non200 = 0;
  let stopped = false;
  let closed: Promise<void> | null = null;
  const loop = (async () => {
    for (let sent = 0; sent < WRITES_MAX && !stopped; sent++) {
      const sentMs = performance.now();
      try {
        const response = await client.request({
          method: 'POST',
          path: `/v1/topics/${TOPIC}/records`,
          headers: { 'content-type': 'application/json' },
          body,
          headersTimeout: REQUEST_TIMEOUT_MS,
          bodyTimeout: REQUEST_TIMEOUT_MS,
        });
        await response.body.dump();
        if (response.statusCode === 200) ok++;
        else non200++;
      } catch {
        non200++;
      }
      const leftMs = WRITE_INTERVAL_MS - (performance.now() - sentMs);
      if (leftMs > 0) await sleep(leftMs);
    }
  })();
  return {
    counts: () => ({ ok, non200 }),
    stop: () => {
      stopped = true;
      closed ??= loop.then(() => client.close());
      return closed;
    },
  };
}

/** Read syscalls so far of each running node (Linux /proc/PID/io); null where unreadable. */
function readSyscalls(cluster: ProcessCluster): Map<number, number> | null {
  const counts = new Map<number, number>();
  try {
    for (const [id, node] of cluster.nodes) {
      const pid = node.process?.pid;
      if (pid === undefined) return null;
      const match = /^syscr: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
      if (!match) return null;
      counts.set(id, Number(match[1]));
    }
  } catch {
    return null;
  }
  return counts;
}

async function leaderAsSeenBy(cluster: ProcessCluster, id: number): Promise<LeaderView> {
  const res = await cluster.request(id, 'GET', `/v1/topics/${TOPIC}`, undefined, 2000);
  if (res.status !== 200) return { leader: 0, term: 0 };
  const partition = res.body.partitions[0];
  return { leader: Number(partition.leader), term: Number(partition.term) };
}

/** Waits until every node names the same leader LEADER_STABLE_POLLS polls in a row. */
async function stableLeader(cluster: ProcessCluster): Promise<number> {
  const deadlineMs = Date.now() + LEADER_WAIT_MS;
  let last = 0;
  let streak = 0;
  while (Date.now() < deadlineMs) {
    const seen = await Promise.all(
      [...cluster.nodes.keys()].map(async (id) => (await leaderAsSeenBy(cluster, id)).leader),
    );
    const agreed = seen.every((id) => id !== 0 && id === seen[0]) ? seen[0]! : 0;
    streak = agreed !== 0 && agreed === last ? streak + 1 : agreed !== 0 ? 1 : 0;
    last = agreed;
    if (streak >= LEADER_STABLE_POLLS) return agreed;
    await sleep(LEADER_POLL_MS);
  }
  throw new Error(`no stable leader of ${TOPIC} within ${LEADER_WAIT_MS} ms: ${cluster.tails([1, 2, 3])}`);
}

async function setUp(cluster: ProcessCluster): Promise<{ leader: number; follower: number }> {
  const created = await cluster.request(1, 'POST', '/v1/topics', {
    name: TOPIC,
    partitions: 1,
    replicationFactor: NODES,
    config: { persistence: PERSISTENCE },
  });
  if (created.status !== 201) throw new Error(`create topic: ${JSON.stringify(created.body)}`);
  const leader = await stableLeader(cluster);
  for (let first = 0; first < RECORDS; first += RECORDS_PER_PRODUCE) {
    const records = Array.from({ length: RECORDS_PER_PRODUCE }, (_, i) => ({
      value: recordValue(first + i),
      partition: 0,
    }));
    const res = await cluster.produceRetrying(leader, TOPIC, records, Date.now() + 10_000);
    if (res.status !== 200) throw new Error(`produce: ${res.status} ${JSON.stringify(res.body)}`);
  }
  const leaderNow = await stableLeader(cluster);
  if (leaderNow !== leader) throw new Error(`the leader moved from ${leader} to ${leaderNow} during setup`);
  const follower = [...cluster.nodes.keys()].find((id) => id !== leader)!;
  return { leader, follower };
}

async function runCase(
  cluster: ProcessCluster,
  spec: CaseSpec,
  roles: { leader: number; follower: number },
): Promise<CaseResult> {
  const node = roles[spec.role];
  const path = readPath(spec.consistency);
  const name = `${spec.role} ${spec.consistency}${spec.withWrites ? ' + writes' : ''}`;
  const leaderBefore = await leaderAsSeenBy(cluster, roles.leader);
  const writer = spec.withWrites ? startWriter(cluster.node(roles.leader).url) : null;
  const client = new Client(cluster.node(node).url, { pipelining: 1 });
  let connects = 0;
  client.on('connect', () => connects++);
  try {
    const warm = await warmUp(client, path, node);
    const histogram = build({
      lowestDiscernibleValue: 1,
      highestTrackableValue: HISTOGRAM_MAX_US,
      numberOfSignificantValueDigits: 3,
    });
    const syscallsBefore = readSyscalls(cluster);
    const writesBefore = writer?.counts();
    const run = await drive(client, { path, node, seconds: SECONDS, requestsMax: REQUESTS_MAX, histogram });
    const syscallsAfter = readSyscalls(cluster);
    const writesAfter = writer?.counts();
    await writer?.stop();
    const leaderAfter = await leaderAsSeenBy(cluster, roles.leader);
    const ok = histogram.totalCount;
    const percentileMs = (p: number) => round3(histogram.getValueAtPercentile(p) / 1000);
    const result: CaseResult = {
      name,
      role: spec.role,
      node,
      consistency: spec.consistency,
      withWrites: spec.withWrites,
      warmUp: warm,
      requests: run.requests,
      non200: run.non200,
      failures: run.failures,
      servedElsewhere: run.servedElsewhere,
      seconds: round3(run.seconds),
      requestsPerSecond: Math.round(ok / run.seconds),
      p50Ms: percentileMs(50),
      p90Ms: percentileMs(90),
      p99Ms: percentileMs(99),
      p999Ms: percentileMs(99.9),
      maxMs: round3(histogram.maxValue / 1000),
      peerReadSyscallsPerRequest: peerSyscalls(syscallsBefore, syscallsAfter, node, run.requests),
      writesPerSecond:
        writesBefore && writesAfter ? Math.round((writesAfter.ok - writesBefore.ok) / run.seconds) : null,
      writeNon200: writesAfter ? writesAfter.non200 : null,
      highWatermarkAtEnd: highWatermarkOf(run.lastBody),
      leaderBefore,
      leaderAfter,
      leaderChanged:
        leaderBefore.leader !== roles.leader ||
        leaderAfter.leader !== roles.leader ||
        leaderBefore.term !== leaderAfter.term,
    };
    histogram.destroy();
    if (connects > 1) process.stderr.write(`  ${name}: the client connected ${connects} times\n`);
    if (run.servedElsewhere > 0)
      process.stderr.write(`  ${name}: ${run.servedElsewhere} answers came from another node\n`);
    return result;
  } finally {
    await writer?.stop();
    await client.close();
  }
}

function peerSyscalls(
  before: Map<number, number> | null,
  after: Map<number, number> | null,
  asked: number,
  requests: number,
): Record<string, number> | null {
  if (!before || !after || requests === 0) return null;
  const perNode: Record<string, number> = {};
  for (const [id, count] of after) {
    if (id !== asked) perNode[String(id)] = round3((count - (before.get(id) ?? count)) / requests);
  }
  return perNode;
}

function highWatermarkOf(body: string): number | null {
  try {
    const parsed: unknown = JSON.parse(body);
    const value = (parsed as { highWatermark?: unknown }).highWatermark;
    return typeof value === 'number' ? value : null;
  } catch {
    return null;
  }
}

function gitState(): { commit: string; srcDirty: boolean } | null {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root }).toString().trim();
    const status = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: root }).toString();
    return { commit, srcDirty: status.trim().length > 0 };
  } catch {
    return null;
  }
}

function progress(index: number, total: number, r: CaseResult): void {
  process.stderr.write(
    `[${index}/${total}] ${r.name} (node ${r.node}): warm-up ${r.warmUp.seconds} s / ` +
      `${r.warmUp.requests} req (last ${r.warmUp.lastRequestsPerSecond} req/s); ` +
      `${r.requests} req in ${r.seconds} s, p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms, ` +
      `non-200 ${r.non200 + r.failures}${r.warmUp.settled ? '' : ' (warm-up never settled)'}` +
      `${r.leaderChanged ? ' (LEADER CHANGED)' : ''}\n`,
  );
}

async function main(): Promise<void> {
  const cases: CaseSpec[] = [];
  for (const withWrites of WITH_WRITES ? [false, true] : [false]) {
    for (const role of ['leader', 'follower'] as const) {
      for (const consistency of ['local', 'linearizable'] as const)
        cases.push({ role, consistency, withWrites });
    }
  }
  const loadAverage1mAtStart = round3(loadavg()[0]!);
  if (loadAverage1mAtStart > cpus().length / 2) {
    process.stderr.write(
      `warning: load average ${loadAverage1mAtStart} on ${cpus().length} cores: other processes compete ` +
        'with the cluster for the CPU, and these numbers will not compare with a run on a quiet machine\n',
    );
  }
  const cluster = await ProcessCluster.create(NODES, PERSISTENCE);
  const interrupted = () => {
    void cluster.destroy().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    cluster.startAll();
    await cluster.waitReady(30_000);
    const roles = await setUp(cluster);
    process.stderr.write(
      `cluster up: leader ${roles.leader}, follower ${roles.follower}, ${RECORDS} records; ${cases.length} cases\n`,
    );
    const results: CaseResult[] = [];
    for (const [i, spec] of cases.entries()) {
      const result = await runCase(cluster, spec, roles);
      progress(i + 1, cases.length, result);
      results.push(result);
    }
    const report = {
      bench: 'reads',
      machine: {
        cpu: cpus()[0]?.model ?? 'unknown',
        cores: cpus().length,
        memoryGiB: round3(totalmem() / 2 ** 30),
        os: `${platform()} ${release()}`,
        loadAverage1mAtStart,
        loadAverage1mAtEnd: round3(loadavg()[0]!),
      },
      nodeVersion: process.version,
      date: new Date().toISOString(),
      git: gitState(),
      args: { seconds: SECONDS, requests: REQUESTS_MAX, persistence: PERSISTENCE, withWrites: WITH_WRITES },
      nodes: NODES,
      leader: roles.leader,
      follower: roles.follower,
      records: RECORDS,
      recordBytes: RECORD_BYTES,
      results,
    };
    console.log(JSON.stringify(report, null, 2));
    printTable(results);
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    await cluster.destroy();
  }
}

function printTable(results: CaseResult[]): void {
  const ms = (n: number) => n.toFixed(3);
  const peers = (r: CaseResult) => {
    if (!r.peerReadSyscallsPerRequest) return 'n/a';
    return Object.values(r.peerReadSyscallsPerRequest)
      .reduce((a, b) => a + b, 0)
      .toFixed(2);
  };
  const rows = [
    [
      'case',
      'requests',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'p99.9 ms',
      'max ms',
      'req/s',
      'non-200',
      'peer reads/req',
      'writes/s',
      'warm-up',
    ],
    ...results.map((r) => [
      r.name + (r.leaderChanged ? ' (LEADER CHANGED)' : ''),
      String(r.requests),
      ms(r.p50Ms),
      ms(r.p90Ms),
      ms(r.p99Ms),
      ms(r.p999Ms),
      ms(r.maxMs),
      String(r.requestsPerSecond),
      String(r.non200 + r.failures),
      peers(r),
      r.writesPerSecond === null ? '-' : String(r.writesPerSecond),
      `${r.warmUp.seconds.toFixed(1)} s/${r.warmUp.requests}${r.warmUp.settled ? '' : '*'}`,
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const row of rows) console.log(row.map((cell, c) => cell.padEnd(widths[c]!)).join('  '));
}

await main();
