// chaos:large — 8 clients send 10 MB produce requests (ten 1,000,000-byte records each) to the
// partition leader of a `sync` topic on three real `raftlog start` processes, for --seconds. It
// checks what a busy leader answers: every request succeeds or gets a documented busy code (429
// THROTTLED, 503 BUSY); 503 NO_LEADER only while the partition really had no stable leader. The
// leader's resident memory is sampled every 100 ms (/proc/PID/status, Linux) and its peak is
// reported beside the documented bound (docs/operations.md, "Memory").
//
// Progress goes to stderr every 5 s; JSON and a table to stdout. Exits 1 on any answer outside
// the contract. Every loop is bounded in time and count.
//
//   npx tsx test/chaos/large-produce.ts [--seconds 30 --clients 8 --records 10 --record-bytes 1000000]

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Client } from 'undici';
import { ProcessCluster } from '../integration/process-cluster.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    clients: { type: 'string', default: '8' },
    records: { type: 'string', default: '10' },
    'record-bytes': { type: 'string', default: '1000000' },
    persistence: { type: 'string', default: 'sync' },
  },
});
const SECONDS = Number(args.seconds);
const CLIENTS = Number(args.clients);
const RECORDS = Number(args.records);
const RECORD_BYTES = Number(args['record-bytes']);
const PERSISTENCE = String(args.persistence);
const TOPIC = 'large';
/** Client bound on one answer (the request's own timeoutMs is 30 s). */
const ANSWER_TIMEOUT_MS = 60_000;
const REQUESTS_PER_CLIENT_MAX = 100_000;
const SAMPLE_MS = 100;
const ALLOWED = new Set(['200', '429 THROTTLED', '503 BUSY']);

interface Leadership {
  leader: number;
  term: number;
}

function residentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}

async function leadershipOf(cluster: ProcessCluster, nodeId: number): Promise<Leadership | null> {
  const res = await cluster.request(nodeId, 'GET', `/v1/topics/${TOPIC}`, undefined, 2000);
  const p = res.status === 200 ? res.body?.partitions?.[0] : null;
  return p && typeof p.leader === 'number' ? { leader: p.leader, term: p.term } : null;
}

async function main(): Promise<number> {
  if (!(SECONDS > 0 && SECONDS <= 600)) throw new Error('--seconds must be in (0, 600]');
  const cluster = await ProcessCluster.create(3, PERSISTENCE);
  try {
    cluster.startAll();
    await cluster.waitReady();
    const created = await cluster.request(1, 'POST', '/v1/topics', { name: TOPIC, replicationFactor: 3 });
    if (created.status !== 201) throw new Error(`create: ${JSON.stringify(created.body)}`);
    const first = created.body.partitions[0] as { leader: number; term: number };
    const leaderPid = cluster.node(first.leader).process!.pid!;
    const value = 'v'.repeat(RECORD_BYTES);
    const body = JSON.stringify({
      records: Array.from({ length: RECORDS }, () => ({ value, partition: 0 })),
      timeoutMs: 30_000,
    });
    process.stderr.write(
      `${CLIENTS} clients x ${(body.length / 1e6).toFixed(1)} MB requests to leader node ${first.leader} ` +
        `(${PERSISTENCE}) for ${SECONDS} s\n`,
    );

    const counts = new Map<string, number>();
    const leaderChanges: string[] = [];
    let peakRss = residentBytes(leaderPid);
    const baselineRss = peakRss;
    let stop = false;
    const endMs = Date.now() + SECONDS * 1000;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, residentBytes(leaderPid));
    }, SAMPLE_MS);
    const watcher = (async () => {
      while (!stop) {
        const now = await leadershipOf(cluster, first.leader === 1 ? 2 : 1);
        if (now && (now.leader !== first.leader || now.term !== first.term)) {
          leaderChanges.push(
            `node ${now.leader} term ${now.term} at +${Math.round((Date.now() - (endMs - SECONDS * 1000)) / 1000)} s`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    })();
    const progress = setInterval(() => {
      process.stderr.write(
        `  ${Math.round((endMs - Date.now()) / 1000)} s left: ${JSON.stringify(Object.fromEntries(counts))}, ` +
          `leader RSS peak ${(peakRss / 2 ** 20).toFixed(0)} MiB\n`,
      );
    }, 5000);
    const loops = Array.from({ length: CLIENTS }, async () => {
      const client = new Client(cluster.node(first.leader).url, {
        headersTimeout: ANSWER_TIMEOUT_MS,
        bodyTimeout: ANSWER_TIMEOUT_MS,
      });
      try {
        for (let i = 0; i < REQUESTS_PER_CLIENT_MAX && Date.now() < endMs; i++) {
          let key: string;
          try {
            const res = await client.request({
              method: 'POST',
              path: `/v1/topics/${TOPIC}/records`,
              headers: { 'content-type': 'application/json' },
              body,
            });
            const text = await res.body.text();
            key =
              res.statusCode === 200
                ? '200'
                : `${res.statusCode} ${(JSON.parse(text) as { error?: { code?: string } }).error?.code ?? '?'}`;
          } catch (error) {
            key = `network ${(error as { code?: string }).code ?? (error as Error).message}`;
          }
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
      } finally {
        await client.destroy();
      }
    });
    await Promise.all(loops);
    stop = true;
    clearInterval(sampler);
    clearInterval(progress);
    await watcher;
    const answers = Object.fromEntries(counts);
    const outside = [...counts.keys()].filter((k) => !ALLOWED.has(k));
    const ok = counts.get('200') ?? 0;
    const result = {
      date: new Date().toISOString(),
      persistence: PERSISTENCE,
      clients: CLIENTS,
      requestBytes: body.length,
      seconds: SECONDS,
      answers,
      committedMBps: Number(((ok * RECORDS * RECORD_BYTES) / 1e6 / SECONDS).toFixed(1)),
      leaderChanges,
      leaderRssBaselineMiB: Math.round(baselineRss / 2 ** 20),
      leaderRssPeakMiB: Math.round(peakRss / 2 ** 20),
      outsideContract: outside,
    };
    console.log(JSON.stringify(result, null, 2));
    console.log('\nanswer            count');
    for (const [k, v] of counts) console.log(`${k.padEnd(18)}${v}`);
    console.log(
      `leader RSS        ${result.leaderRssBaselineMiB} MiB at start, peak ${result.leaderRssPeakMiB} MiB`,
    );
    console.log(`leader changes    ${leaderChanges.length === 0 ? 'none' : leaderChanges.join('; ')}`);
    const noLeaderWhileStable = leaderChanges.length === 0 && counts.has('503 NO_LEADER');
    return outside.length > 0 || noLeaderWhileStable ? 1 : 0;
  } finally {
    await cluster.destroy();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error);
    process.exitCode = 2;
  },
);
