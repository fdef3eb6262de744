// chaos:producers — issue 14, acceptance 4: 1,000,000 distinct idempotent producers, one record
// each, against one partition of a topic on three real `raftlog start` processes (the built CLI).
// It shows that every replica's memory stays flat once the producer table is full (resident memory
// of each process sampled every second, beside the documented bound on producer state), that
// evictions show in /metrics on every node, and what retries from producers at each age get:
// still in the table (200, duplicate), evicted but remembered (409 UNKNOWN_PRODUCER, never
// appended), and beyond the remembered evictions (the documented residual risk: new again).
//
// The topic keeps 8 MiB by retentionBytes (segments of 4 MiB, checked every second): so the log
// itself stays small, and retention's snapshots, which carry the producer table, are exercised.
// Each request carries one producer (the API's rule), so many connections run at once.
//
// Progress goes to stderr every 10 s; JSON and a table to stdout. Exits 1 if an answer falls
// outside the contract. Every loop is bounded in time and count.
//
//   npm run build && npx tsx test/chaos/many-producers.ts [--producers 1000000 --connections 64
//     --seconds-max 1200 --retention-bytes 8388608 --persistence async --plain]

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { DEFAULT_PRODUCER_LIMITS, producerStateBytesMax } from '../../src/broker/producer-state.js';
import { eventually, ProcessCluster } from '../integration/process-cluster.js';

const { values: args } = parseArgs({
  options: {
    producers: { type: 'string', default: '1000000' },
    connections: { type: 'string', default: '64' },
    'seconds-max': { type: 'string', default: '1200' },
    'retention-bytes': { type: 'string', default: String(8 * 1024 * 1024) },
    persistence: { type: 'string', default: 'async' },
    // The control: the same records without a producer, to tell the table's memory from the rest.
    plain: { type: 'boolean', default: false },
  },
});
const PRODUCERS = Number(args.producers);
const CONNECTIONS = Number(args.connections);
const SECONDS_MAX = Number(args['seconds-max']);
const RETENTION_BYTES = Number(args['retention-bytes']);
const PERSISTENCE = String(args.persistence);
const PLAIN = args.plain === true;
const TOPIC = 'producers';
const SEGMENT_BYTES = 4 * 1024 * 1024;
const LIMITS = DEFAULT_PRODUCER_LIMITS; // what `raftlog start` runs with (no flags for them yet)
/** Attempts per producer on a transient answer (503, 504, 429, a broken connection). */
const ATTEMPTS_MAX = 20;
const SAMPLE_MS = 1000;
const PROGRESS_MS = 10_000;
const MIB = 2 ** 20;

const idOf = (i: number) => `mp-${String(i).padStart(7, '0')}`;
const bodyOf = (i: number, epoch = 0) =>
  JSON.stringify({
    records: [{ value: `v${i}` }],
    ...(PLAIN ? {} : { producer: { id: idOf(i), epoch, sequence: 0 } }),
  });

function residentBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: the script prints whichever contract shape comes back
  body: any;
}

async function post(pool: Pool, body: string): Promise<Answer> {
  try {
    const res = await pool.request({
      method: 'POST',
      path: `/v1/topics/${TOPIC}/records`,
      headers: { 'content-type': 'application/json' },
      body,
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    });
    const text = await res.body.text();
    return { status: res.statusCode, body: text ? JSON.parse(text) : null };
  } catch (error) {
    return { status: 0, body: { error: { code: 'NETWORK', message: (error as Error).message } } };
  }
}

const keyOf = (a: Answer) => (a.status === 200 ? '200' : `${a.status} ${a.body?.error?.code ?? '?'}`);
const transient = (a: Answer) => a.status === 0 || a.status === 429 || a.status === 503 || a.status === 504;

/** Samples of one node's /metrics for this partition, and its heap. */
async function partitionMetrics(cluster: ProcessCluster, nodeId: number): Promise<Record<string, number>> {
  const res = await fetch(`${cluster.node(nodeId).url}/metrics`);
  const text = await res.text();
  const wanted = [
    'raftlog_producers',
    'raftlog_producers_evicted_remembered',
    'raftlog_producer_evictions_total',
    'raftlog_producer_evictions_forgotten_total',
    'raftlog_partition_high_watermark',
    'raftlog_partition_log_start_offset',
  ];
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const name = line.slice(0, line.indexOf('{'));
    if (wanted.includes(name) && line.includes(`topic="${TOPIC}",partition="0"`)) {
      out[name] = Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    for (const [metric, key] of [
      ['raftlog_nodejs_heap_size_used_bytes', 'heapUsedMiB'],
      ['raftlog_nodejs_heap_size_total_bytes', 'heapTotalMiB'],
      ['raftlog_nodejs_external_memory_bytes', 'externalMiB'],
    ] as const) {
      if (line.startsWith(metric)) out[key] = Math.round(Number(line.slice(line.lastIndexOf(' ') + 1)) / MIB);
    }
  }
  return out;
}

async function main(): Promise<number> {
  if (!(PRODUCERS > 0 && PRODUCERS <= 10_000_000)) throw new Error('--producers must be in (0, 10^7]');
  if (!(SECONDS_MAX > 0 && SECONDS_MAX <= 3600)) throw new Error('--seconds-max must be in (0, 3600]');
  // Test-only knobs of `raftlog start` (src/api/server.ts), inherited by the node processes.
  process.env.RAFTLOG_TEST_SEGMENT_BYTES = String(SEGMENT_BYTES);
  process.env.RAFTLOG_TEST_RETENTION_CHECK_MS = '1000';
  const cluster = await ProcessCluster.create(3, PERSISTENCE);
  const pools: Pool[] = [];
  try {
    cluster.startAll();
    await cluster.waitReady();
    const created = await cluster.request(1, 'POST', '/v1/topics', {
      name: TOPIC,
      replicationFactor: 3,
      config: { retentionBytes: RETENTION_BYTES },
    });
    if (created.status !== 201) throw new Error(`create: ${JSON.stringify(created.body)}`);
    const leader = created.body.partitions[0].leader as number;
    const follower = leader === 1 ? 2 : 1;
    const ids = [...cluster.nodes.keys()];
    const pids = new Map(ids.map((id) => [id, cluster.node(id).process!.pid!]));
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const baseline = new Map(ids.map((id) => [id, residentBytes(pids.get(id)!)]));
    const peak = new Map(baseline);
    const sampler = setInterval(() => {
      for (const id of ids) peak.set(id, Math.max(peak.get(id)!, residentBytes(pids.get(id)!)));
    }, SAMPLE_MS);
    const leaderPool = new Pool(cluster.node(leader).url, { connections: CONNECTIONS });
    pools.push(leaderPool);
    process.stderr.write(
      `${PRODUCERS} ${PLAIN ? 'plain requests (no producer)' : 'producers'}, ${CONNECTIONS} connections to leader node ${leader} (${PERSISTENCE}, ` +
        `retentionBytes ${RETENTION_BYTES}); table ${LIMITS.producersMax}, digests ${LIMITS.evictedProducersMax}\n`,
    );

    // Phase 1: every producer sends its one record once (retrying only transient answers).
    const answers = new Map<string, number>();
    const offsets = new Map<number, number>();
    const checkpoints: Array<Record<string, number>> = [];
    const checkpointEvery = Math.max(1, Math.floor(PRODUCERS / 10));
    const startMs = Date.now();
    const deadlineMs = startMs + SECONDS_MAX * 1000;
    let next = 0;
    let done = 0;
    const progress = setInterval(() => {
      const rate = Math.round(done / ((Date.now() - startMs) / 1000));
      process.stderr.write(
        `  ${done} producers in ${Math.round((Date.now() - startMs) / 1000)} s (${rate}/s)\n`,
      );
    }, PROGRESS_MS);
    const worker = async () => {
      while (next < PRODUCERS && Date.now() < deadlineMs) {
        const i = next++;
        const body = bodyOf(i);
        let answer = await post(leaderPool, body);
        for (let attempt = 1; attempt < ATTEMPTS_MAX && transient(answer); attempt++) {
          answers.set(`${keyOf(answer)} (retried)`, (answers.get(`${keyOf(answer)} (retried)`) ?? 0) + 1);
          await new Promise((resolve) => setTimeout(resolve, 100));
          answer = await post(leaderPool, body);
        }
        answers.set(keyOf(answer), (answers.get(keyOf(answer)) ?? 0) + 1);
        if (answer.status === 200) offsets.set(i, answer.body.offsets[0].offset);
        if (++done % checkpointEvery === 0) {
          const point: Record<string, number> = {
            producers: done,
            seconds: Math.round((Date.now() - startMs) / 1000),
          };
          for (const id of ids) point[`node${id}RssMiB`] = Math.round(residentBytes(pids.get(id)!) / MIB);
          checkpoints.push(point);
        }
      }
    };
    await Promise.all(Array.from({ length: CONNECTIONS }, worker));
    clearInterval(progress);
    const produceSeconds = (Date.now() - startMs) / 1000;
    const sent = done;

    // Every replica applies everything (their high watermarks meet), then the metrics.
    const committed = answers.get('200') ?? 0;
    await eventually(
      async () => {
        const all = await Promise.all(ids.map((id) => partitionMetrics(cluster, id)));
        return all.every((m) => m.raftlog_partition_high_watermark === committed);
      },
      60_000,
      `replicas did not reach high watermark ${committed}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 3000)); // a retention pass or two
    const metrics = Object.fromEntries(
      await Promise.all(ids.map(async (id) => [`node ${id}`, await partitionMetrics(cluster, id)] as const)),
    );
    clearInterval(sampler);
    const rss = Object.fromEntries(
      ids.map((id) => [
        `node ${id}`,
        {
          baselineMiB: Math.round(baseline.get(id)! / MIB),
          peakMiB: Math.round(peak.get(id)! / MIB),
          endMiB: Math.round(residentBytes(pids.get(id)!) / MIB),
        },
      ]),
    );

    // Phase 2: retries from producers of every age, to the leader and through a follower.
    const followerPool = new Pool(cluster.node(follower).url, { connections: 1 });
    pools.push(followerPool);
    const retries: Record<string, unknown> = {};
    const retry = async (label: string, i: number, epoch = 0, pool = leaderPool) => {
      const answer = await post(pool, bodyOf(i, epoch));
      retries[label] = { producer: idOf(i), epoch, originalOffset: offsets.get(i), ...answer };
      return answer;
    };
    // The table evicts in log order, which is offset order here (one record per producer), not
    // quite the order of the indexes with requests in flight on many connections.
    const producerAt = new Map<number, number>();
    for (const [i, offset] of offsets) producerAt.set(offset, i);
    const newest = producerAt.get(committed - 1)!;
    let lastEvicted = producerAt.get(committed - LIMITS.producersMax - 1) ?? -1;
    let oldestRemembered = producerAt.get(committed - LIMITS.producersMax - LIMITS.evictedProducersMax) ?? -1;
    const forgotten = producerAt.get(0)!;
    const outside: string[] = [];
    if (PLAIN) lastEvicted = oldestRemembered = -1; // the control: nothing to retry
    const want = (label: string, answer: Answer, key: string) => {
      if (keyOf(answer) !== key) outside.push(`${label}: ${keyOf(answer)}, expected ${key}`);
    };
    const inTable = PLAIN ? null : await retry('still in the table (newest)', newest);
    if (
      inTable &&
      (inTable.body?.duplicate !== true || inTable.body?.offsets?.[0]?.offset !== offsets.get(newest))
    ) {
      outside.push(`newest: ${keyOf(inTable)}, not a duplicate with its original offset`);
    }
    if (lastEvicted >= 0) {
      want(
        'last evicted',
        await retry('evicted: the most recent eviction', lastEvicted),
        '409 UNKNOWN_PRODUCER',
      );
      want(
        'last evicted via follower',
        await retry('evicted: the same, through a follower', lastEvicted, 0, followerPool),
        '409 UNKNOWN_PRODUCER',
      );
    }
    if (oldestRemembered >= 0) {
      want(
        'oldest remembered',
        await retry('evicted: the oldest eviction still remembered', oldestRemembered),
        '409 UNKNOWN_PRODUCER',
      );
    }
    const highWatermarkBefore = (await partitionMetrics(cluster, leader)).raftlog_partition_high_watermark;
    if (highWatermarkBefore !== committed) outside.push(`the retries appended: ${highWatermarkBefore}`);
    if (lastEvicted >= 0) {
      // What UNKNOWN_PRODUCER asks for: a new epoch from sequence 0.
      want('new epoch', await retry('evicted: a new epoch at sequence 0', lastEvicted, 1), '200');
    }
    if (oldestRemembered >= 0 && committed > LIMITS.producersMax + LIMITS.evictedProducersMax) {
      // The documented residual risk: past the remembered evictions, a producer is new again.
      await retry('forgotten (beyond the remembered evictions): the first producer', forgotten);
    }

    const result = {
      date: new Date().toISOString(),
      persistence: PERSISTENCE,
      plain: PLAIN,
      producers: sent,
      connections: CONNECTIONS,
      produceSeconds: Math.round(produceSeconds),
      producersPerSecond: Math.round(sent / produceSeconds),
      answers: Object.fromEntries(answers),
      limits: LIMITS,
      producerStateBoundMiB: Number((producerStateBytesMax(LIMITS) / MIB).toFixed(1)),
      rss,
      checkpoints,
      metrics,
      retries,
      outsideContract: outside,
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n\n`);
    printTable(result.rss, metrics, checkpoints, retries);
    if (sent < PRODUCERS) process.stderr.write(`stopped at --seconds-max after ${sent} producers\n`);
    const unexpected = [...answers.keys()].filter((k) => k !== '200' && !k.endsWith('(retried)'));
    return outside.length === 0 && unexpected.length === 0 ? 0 : 1;
  } finally {
    await Promise.all(pools.map((p) => p.destroy()));
    await cluster.destroy();
  }
}

function printTable(
  rss: Record<string, Record<string, number>>,
  metrics: Record<string, Record<string, number>>,
  checkpoints: Array<Record<string, number>>,
  retries: Record<string, unknown>,
): void {
  const lines = [
    'node | RSS baseline → peak → end (MiB) | heap used | producers | remembered | evictions | forgotten',
  ];
  for (const [node, r] of Object.entries(rss)) {
    const m = metrics[node]!;
    lines.push(
      `${node} | ${r.baselineMiB} → ${r.peakMiB} → ${r.endMiB} | ${m.heapUsedMiB} | ${m.raftlog_producers} | ` +
        `${m.raftlog_producers_evicted_remembered} | ${m.raftlog_producer_evictions_total} | ` +
        `${m.raftlog_producer_evictions_forgotten_total}`,
    );
  }
  lines.push('', 'producers sent | seconds | RSS per node (MiB)');
  for (const c of checkpoints) {
    const nodes = Object.keys(c).filter((k) => k.endsWith('RssMiB'));
    lines.push(`${c.producers} | ${c.seconds} | ${nodes.map((k) => c[k]).join(' / ')}`);
  }
  lines.push('', 'retry | answer');
  for (const [label, value] of Object.entries(retries)) {
    const v = value as Answer;
    lines.push(`${label} | ${v.status} ${v.status === 200 ? JSON.stringify(v.body) : v.body?.error?.code}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`${(error as Error).stack ?? error}\n`);
    process.exit(1);
  },
);
