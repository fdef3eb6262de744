// Memory topics on three real processes: feed a memory topic through its partition leader and see
// what each replica holds afterwards (retention by size or by time), or feed one without retention
// until the node-wide bound answers 507 MEMORY_FULL. Reports per-replica bytes held (the
// raftlog_partition_memory_bytes gauge), log starts, the 416 below them, and resident memory
// (/proc/PID/status, Linux). Used by memory-topics.test.ts and by test/chaos/memory-topics.ts.

import { readFileSync } from 'node:fs';
import { Client, request } from 'undici';
import { eventually, type HttpResult, type ProcessCluster } from './process-cluster.js';

const NODE_IDS = [1, 2, 3];
/** Client bound on one produce answer (the request's own timeoutMs is 10 s). */
const ANSWER_TIMEOUT_MS = 30_000;
/** Bound on the requests of one feed, whatever the bytes asked for. */
const REQUESTS_MAX = 100_000;
const SAMPLE_MS = 100;
/** Polls (200 ms apart) that must see the same log starts and bytes held: retention has settled. */
const STABLE_POLLS = 2;
const MIB = 1024 * 1024;

export interface FeedOptions {
  topic: string;
  /** Stop once this many bytes of record values were acknowledged. */
  bytes: number;
  recordBytes: number;
  recordsPerRequest: number;
  clients: number;
  /** Stop at the first 507 instead of failing. */
  untilFull?: boolean;
}

export interface FeedResult {
  acknowledgedRecords: number;
  acknowledgedBytes: number;
  seconds: number;
  /** The first refusal (507) when untilFull, else null. */
  refusal: HttpResult | null;
  /** Per node: peak resident bytes while feeding. */
  peakRssBytes: Map<number, number>;
}

export interface ReplicaReport {
  node: number;
  logStartOffset: number;
  highWatermark: number;
  /** What this replica of the topic holds in memory (raftlog_partition_memory_bytes). */
  memoryBytes: number;
  /** All memory topics on the node (raftlog_memory_topics_bytes). */
  nodeMemoryTopicsBytes: number;
  rssBytes: number;
  /** Status and code of a fetch one below the log start (416 OFFSET_OUT_OF_RANGE expected). */
  belowStart: string;
}

export function residentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}

export function rssOf(cluster: ProcessCluster, nodeId: number): number {
  const pid = cluster.node(nodeId).process?.pid;
  return pid === undefined ? 0 : residentBytes(pid);
}

export async function leaderOf(cluster: ProcessCluster, topic: string): Promise<number> {
  let leader = 0;
  await eventually(
    async () => {
      const res = await cluster.request(1, 'GET', `/v1/topics/${topic}`, undefined, 2000);
      leader = res.status === 200 ? (res.body.partitions[0].leader as number) : 0;
      return leader > 0;
    },
    20_000,
    `no leader for ${topic}`,
  );
  return leader;
}

export async function createTopic(
  cluster: ProcessCluster,
  name: string,
  config: Record<string, unknown>,
): Promise<void> {
  const res = await cluster.request(1, 'POST', '/v1/topics', { name, replicationFactor: 3, config });
  if (res.status !== 201) throw new Error(`create ${name}: ${res.status} ${JSON.stringify(res.body)}`);
}

/**
 * Sends `clients` concurrent loops of produce requests to the partition leader until `bytes` of
 * values were acknowledged (or, untilFull, the first 507). A 503 or 504 is retried (a leader
 * change); anything else fails the feed.
 */
export async function feed(cluster: ProcessCluster, options: FeedOptions): Promise<FeedResult> {
  const leader = await leaderOf(cluster, options.topic);
  const value = 'v'.repeat(options.recordBytes);
  const body = JSON.stringify({
    records: Array.from({ length: options.recordsPerRequest }, () => ({ value, partition: 0 })),
    timeoutMs: 10_000,
  });
  const requestBytes = options.recordBytes * options.recordsPerRequest;
  const peakRssBytes = new Map<number, number>(NODE_IDS.map((id) => [id, rssOf(cluster, id)]));
  const sampler = setInterval(() => {
    for (const id of NODE_IDS) peakRssBytes.set(id, Math.max(peakRssBytes.get(id)!, rssOf(cluster, id)));
  }, SAMPLE_MS);
  let acknowledgedRequests = 0;
  let sentRequests = 0;
  let refusal: HttpResult | null = null;
  let failure: Error | null = null;
  const startedMs = Date.now();
  const loop = async () => {
    const client = new Client(cluster.node(leader).url, {
      headersTimeout: ANSWER_TIMEOUT_MS,
      bodyTimeout: ANSWER_TIMEOUT_MS,
    });
    try {
      while (
        failure === null &&
        refusal === null &&
        sentRequests < REQUESTS_MAX &&
        sentRequests * requestBytes < options.bytes
      ) {
        sentRequests++;
        const res = await client.request({
          method: 'POST',
          path: `/v1/topics/${options.topic}/records`,
          headers: { 'content-type': 'application/json' },
          body,
        });
        const text = await res.body.text();
        if (res.statusCode === 200) {
          acknowledgedRequests++;
          continue;
        }
        sentRequests--;
        const result: HttpResult = { status: res.statusCode, body: JSON.parse(text), headers: res.headers };
        if (res.statusCode === 507 && options.untilFull) refusal ??= result;
        else if (res.statusCode !== 503 && res.statusCode !== 504)
          failure = new Error(`produce answered ${res.statusCode}: ${text.slice(0, 300)}`);
      }
    } finally {
      await client.close();
    }
  };
  try {
    await Promise.all(Array.from({ length: options.clients }, loop));
  } finally {
    clearInterval(sampler);
  }
  if (failure !== null) throw failure;
  return {
    acknowledgedRecords: acknowledgedRequests * options.recordsPerRequest,
    acknowledgedBytes: acknowledgedRequests * requestBytes,
    seconds: (Date.now() - startedMs) / 1000,
    refusal,
    peakRssBytes,
  };
}

/** The value of a metric line of this node (with `topic` when given), or 0 when absent. */
export async function metricOf(
  cluster: ProcessCluster,
  nodeId: number,
  name: string,
  topic?: string,
): Promise<number> {
  const res = await request(`${cluster.node(nodeId).url}/metrics`, {
    headersTimeout: 5000,
    bodyTimeout: 5000,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`/metrics of node ${nodeId}: ${res.statusCode}`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (topic !== undefined && !line.includes(`topic="${topic}"`)) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

/** Each replica's view of the topic after the feed. */
export async function replicaReports(cluster: ProcessCluster, topic: string): Promise<ReplicaReport[]> {
  const reports: ReplicaReport[] = [];
  for (const node of NODE_IDS) {
    // A cut can land while the read is on its way: that read answers 416; ask again.
    let earliest: HttpResult | null = null;
    for (let attempt = 0; attempt < 20 && (earliest === null || earliest.status === 416); attempt++) {
      earliest = await cluster.request(
        node,
        'GET',
        `/v1/topics/${topic}/partitions/0/records?offset=earliest&limit=1`,
      );
    }
    if (earliest?.status !== 200) throw new Error(`fetch on node ${node}: ${JSON.stringify(earliest?.body)}`);
    const logStartOffset = earliest.body.logStartOffset as number;
    let belowStart = 'none below offset 0';
    if (logStartOffset > 0) {
      const below = await cluster.request(
        node,
        'GET',
        `/v1/topics/${topic}/partitions/0/records?offset=${logStartOffset - 1}`,
      );
      belowStart = `${below.status} ${below.body?.error?.code ?? ''}`.trim();
    }
    reports.push({
      node,
      logStartOffset,
      highWatermark: earliest.body.highWatermark as number,
      memoryBytes: await metricOf(cluster, node, 'raftlog_partition_memory_bytes', topic),
      nodeMemoryTopicsBytes: await metricOf(cluster, node, 'raftlog_memory_topics_bytes'),
      rssBytes: rssOf(cluster, node),
      belowStart,
    });
  }
  return reports;
}

/**
 * Polls until every replica has all `records` committed, a log start above 0 and holds at most
 * `memoryBytesMax` for the topic, and each replica's log start and bytes held have not changed for
 * STABLE_POLLS polls (a report is not atomic: a cut may land between its fetch and its metrics);
 * returns the reports (the last ones seen, at the deadline).
 */
export async function waitForRetention(
  cluster: ProcessCluster,
  topic: string,
  records: number,
  memoryBytesMax: number,
  timeoutMs: number,
): Promise<ReplicaReport[]> {
  let reports: ReplicaReport[] = [];
  let lastSeen = '';
  let stablePolls = 0;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    reports = await replicaReports(cluster, topic);
    const seen = JSON.stringify(reports.map((r) => [r.logStartOffset, r.memoryBytes]));
    stablePolls = seen === lastSeen ? stablePolls + 1 : 0;
    lastSeen = seen;
    const done = reports.every(
      (r) => r.highWatermark >= records && r.logStartOffset > 0 && r.memoryBytes <= memoryBytesMax,
    );
    if (done && stablePolls >= STABLE_POLLS) return reports;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return reports;
}

export function mib(bytes: number): string {
  return (bytes / MIB).toFixed(1);
}

export function formatReports(title: string, reports: readonly ReplicaReport[]): string {
  const lines = [
    `${title}`,
    'node  logStart  highWatermark  topic MiB  memory topics MiB  RSS MiB  below start',
  ];
  for (const r of reports) {
    lines.push(
      `${String(r.node).padEnd(5)} ${String(r.logStartOffset).padStart(8)}  ${String(r.highWatermark).padStart(13)}  ` +
        `${mib(r.memoryBytes).padStart(9)}  ${mib(r.nodeMemoryTopicsBytes).padStart(17)}  ${mib(r.rssBytes).padStart(7)}  ${r.belowStart}`,
    );
  }
  return lines.join('\n');
}
