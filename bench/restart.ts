// bench:restart — how long a node with a large log takes to be ready again. One `raftlog start`
// process on 127.0.0.1 (the built CLI), one async topic kept forever; --gigabytes of 1 KiB records
// are produced over HTTP, then the node is stopped with SIGTERM (a clean shutdown) and restarted,
// then killed with SIGKILL and restarted, --rounds times each. Each time is from the spawn of the
// new process to its first 200 from /readyz (polled every 10 ms).
//
// With --scenario storage, the same amount is written straight into one async log of a
// StorageEngine (4 KiB entries, 256 KiB per write), and each time is that of openLog alone (the
// engine, its lmdb and its I/O threads already open), after a clean close and after a crash
// (the engine abandoned, as kill -9 leaves it); with the bytes of segment files each open read.
//
// Prints JSON, then a table. Bounded: producing stops at --gigabytes or after --produce-seconds.
//
//   npm run bench:restart [-- --gigabytes 2 --partitions 1 --rounds 2 --scenario node|storage]

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import type { Entry } from '../src/raft/index.js';
import { StorageEngine } from '../src/storage/index.js';
import { ProcessCluster } from '../test/integration/process-cluster.js';

const { values: args } = parseArgs({
  options: {
    gigabytes: { type: 'string', default: '2' },
    partitions: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '2' },
    'produce-seconds': { type: 'string', default: '600' },
    'ready-timeout-seconds': { type: 'string', default: '120' },
    scenario: { type: 'string', default: 'node' },
  },
});
const TOTAL_BYTES = Number(args.gigabytes) * 1024 ** 3;
const PARTITIONS = Number(args.partitions);
const ROUNDS = Number(args.rounds);
const PRODUCE_SECONDS = Number(args['produce-seconds']);
const READY_TIMEOUT_MS = Number(args['ready-timeout-seconds']) * 1000;
const RECORD_BYTES = 1024;
const RECORDS_PER_REQUEST = 256;
const CONNECTIONS = 8;
const TOPIC = 'restart';

async function waitReadyMs(cluster: ProcessCluster, startedAt: number): Promise<number> {
  const deadline = startedAt + READY_TIMEOUT_MS;
  while (performance.now() < deadline) {
    const res = await cluster.request(1, 'GET', '/readyz', undefined, 1000);
    if (res.status === 200) return performance.now() - startedAt;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`not ready within ${READY_TIMEOUT_MS} ms: ${cluster.tails([1])}`);
}

async function produce(cluster: ProcessCluster): Promise<{ bytes: number; seconds: number }> {
  const value = 'x'.repeat(RECORD_BYTES);
  const body = JSON.stringify({
    records: Array.from({ length: RECORDS_PER_REQUEST }, () => ({ value })),
    timeoutMs: 60_000,
  });
  const pool = new Pool(cluster.node(1).url, { connections: CONNECTIONS, pipelining: 1 });
  const startedAt = performance.now();
  const deadline = Date.now() + PRODUCE_SECONDS * 1000;
  let bytes = 0;
  const worker = async (): Promise<void> => {
    while (bytes < TOTAL_BYTES && Date.now() < deadline) {
      const response = await pool.request({
        method: 'POST',
        path: `/v1/topics/${TOPIC}/records`,
        headers: { 'content-type': 'application/json' },
        body,
        headersTimeout: 70_000,
      });
      await response.body.text();
      if (response.statusCode !== 200) throw new Error(`produce answered ${response.statusCode}`);
      bytes += RECORD_BYTES * RECORDS_PER_REQUEST;
    }
  };
  try {
    await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  } finally {
    await pool.destroy();
  }
  return { bytes, seconds: (performance.now() - startedAt) / 1000 };
}

async function restartMs(cluster: ProcessCluster, signal: NodeJS.Signals): Promise<number> {
  await cluster.kill(1, signal, 120_000);
  const startedAt = performance.now();
  cluster.start(1);
  return waitReadyMs(cluster, startedAt);
}

async function main(): Promise<void> {
  const cluster = await ProcessCluster.create(1, 'async');
  try {
    cluster.start(1);
    await waitReadyMs(cluster, performance.now());
    const created = await cluster.request(1, 'POST', '/v1/topics', {
      name: TOPIC,
      partitions: PARTITIONS,
      replicationFactor: 1,
      config: { persistence: 'async', retentionMs: -1 },
    });
    if (created.status !== 201) throw new Error(`topic create answered ${created.status}`);
    const produced = await produce(cluster);
    const results: { signal: string; readyMs: number }[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
        results.push({ signal, readyMs: Math.round(await restartMs(cluster, signal)) });
      }
    }
    const summary = {
      producedBytes: produced.bytes,
      produceSeconds: Number(produced.seconds.toFixed(1)),
      partitions: PARTITIONS,
      recordBytes: RECORD_BYTES,
      restarts: results,
    };
    console.log(JSON.stringify(summary));
    console.log(`\n${(produced.bytes / 1024 ** 3).toFixed(2)} GiB in ${PARTITIONS} partition(s)`);
    console.log('after    ready in');
    for (const r of results) console.log(`${r.signal.padEnd(8)} ${String(r.readyMs).padStart(6)} ms`);
  } finally {
    await cluster.destroy();
  }
}

/** Writes TOTAL_BYTES into one async log, then times openLog after clean closes and crashes. */
async function storageScenario(): Promise<void> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftlog-restart-'));
  const entryBytes = 4096;
  const entriesPerWrite = 64;
  const data = new Uint8Array(entryBytes).fill(7);
  const results: { after: string; openMs: number; scannedBytes: number }[] = [];
  try {
    let engine = await StorageEngine.open({ dataDir });
    let log = await engine.openLog('g', { mode: 'async' });
    for (let index = 1; (index - 1) * entryBytes < TOTAL_BYTES; index += entriesPerWrite) {
      const entries: Entry[] = [];
      for (let i = 0; i < entriesPerWrite; i++) entries.push({ index: index + i, term: 1, type: 0, data });
      engine.write([{ log, entries, hardState: null, snapshot: null, mustSync: false, persistId: 0 }]);
      if (index % (entriesPerWrite * 64) === 1) await log.idle();
    }
    await engine.close();
    for (let round = 0; round < ROUNDS; round++) {
      for (const after of ['clean', 'crash'] as const) {
        engine = await StorageEngine.open({ dataDir, scrubBytesPerSecond: 0 });
        const startedAt = performance.now();
        log = await engine.openLog('g', { mode: 'async' });
        const openMs = performance.now() - startedAt;
        results.push({
          after,
          openMs: Math.round(openMs),
          scannedBytes: engine.recoveryStats().scannedBytes,
        });
        // The state the next open starts from: after 'clean' it is a crash, and the reverse.
        if (after === 'clean') {
          engine.write([
            {
              log,
              entries: [{ index: log.lastIndex() + 1, term: 1, type: 0, data }],
              hardState: null,
              snapshot: null,
              mustSync: false,
              persistId: 0,
            },
          ]);
          await log.idle();
          await engine.abandon();
        } else await engine.close();
      }
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  console.log(JSON.stringify({ scenario: 'storage', bytes: TOTAL_BYTES, restarts: results }));
  console.log('\nopenLog of one log holding', (TOTAL_BYTES / 1024 ** 3).toFixed(2), 'GiB');
  console.log('before the open   open ms   bytes read');
  for (const r of results) {
    const before = r.after === 'clean' ? 'clean close' : 'crash';
    console.log(
      `${before.padEnd(16)} ${String(r.openMs).padStart(8)} ${String(r.scannedBytes).padStart(12)}`,
    );
  }
}

if (args.scenario === 'storage') await storageScenario();
else await main();
