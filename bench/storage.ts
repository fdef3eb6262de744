// Storage benchmark: per persistence mode, the latency of single appends and the throughput of
// batches (1, 16, 256 entries of 100 B and 1 KiB) over 1 and 64 partitions; a raw write+fdatasync
// loop on the same disk in the same run; and CRC32C speed. Prints one JSON object, then tables.
// Every case is bounded in time; data lives under os.tmpdir() and is removed at the end.
//
//   npm run bench:storage [-- --case-ms 800 --modes sync,async,memory]

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Entry } from '../src/raft/types.js';
import { crc32c } from '../src/storage/crc32c.js';
import { type PartitionLog, type PersistenceMode, StorageEngine } from '../src/storage/index.js';
import type { IoExecutorStats } from '../src/storage/io-executor.js';

const caseArg = process.argv.indexOf('--case-ms');
const CASE_MS = caseArg > 0 ? Number(process.argv[caseArg + 1]) : 800;
const LATENCY_MS = 1500;
const ALL_MODES: PersistenceMode[] = ['sync', 'async', 'memory'];
const modesArg = process.argv.indexOf('--modes');
const MODES: PersistenceMode[] =
  modesArg > 0 ? (process.argv[modesArg + 1]!.split(',') as PersistenceMode[]) : ALL_MODES;
for (const mode of MODES) if (!ALL_MODES.includes(mode)) throw new Error(`--modes: unknown mode '${mode}'`);
const BATCHES = [1, 16, 256];
const ENTRY_BYTES = [100, 1024];
const PARTITIONS = [1, 64];
/** Per partition: writes in flight at most (a Raft leader pipelines appends). */
const IN_FLIGHT_WRITES = 8;
/** All partitions together: bytes in flight at most. */
const IN_FLIGHT_BYTES = 64 * 1024 * 1024;
/** Memory mode keeps every entry: compact once a log holds this much. */
const MEMORY_COMPACT_BYTES = 64 * 1024 * 1024;

interface Latency {
  p50Us: number;
  p99Us: number;
  samples: number;
}

/** Single-append latency, and where its I/O ran (see IoExecutor and chooseRoute). */
interface AppendLatency extends Latency {
  io: IoExecutorStats;
}

interface Throughput {
  mode: PersistenceMode;
  partitions: number;
  batchEntries: number;
  entryBytes: number;
  entriesPerSecond: number;
  megabytesPerSecond: number;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

function latencyOf(samples: number[]): Latency {
  samples.sort((a, b) => a - b);
  return {
    p50Us: round(percentile(samples, 0.5)),
    p99Us: round(percentile(samples, 0.99)),
    samples: samples.length,
  };
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

/** Raw baseline: write 100 B then fdatasync on the same file system; one sample, in us. */
function rawFdatasyncOnce(fd: number, data: Uint8Array): number {
  const start = performance.now();
  fs.writeSync(fd, data);
  fs.fdatasyncSync(fd);
  return (performance.now() - start) * 1000;
}

function crcGigabytesPerSecond(): number {
  const data = new Uint8Array(1024 * 1024).map((_, i) => (i * 31) & 0xff);
  let sink = 0;
  const start = performance.now();
  for (let i = 0; i < 256; i++) sink ^= crc32c(data);
  const seconds = (performance.now() - start) / 1000;
  if (sink === 0.5) console.log(sink); // keep the loop
  return round(256 / 1024 / seconds);
}

/** A log and the bookkeeping the bench's little driver needs for it. */
class BenchLog {
  inFlight = 0;
  next = 1;
  durableEntries = 0;
  private readonly sizes = new Map<number, number>();
  log!: PartitionLog;

  static async open(
    engine: StorageEngine,
    groupId: string,
    mode: PersistenceMode,
    onDone: () => void,
  ): Promise<BenchLog> {
    const bench = new BenchLog();
    bench.log = await engine.openLog(groupId, {
      mode,
      describeEntry: (entry) => ({ baseOffset: entry.index - 1, recordCount: 1 }),
      onPersisted: (persistId) => {
        bench.inFlight--;
        bench.durableEntries += bench.sizes.get(persistId) ?? 0;
        bench.sizes.delete(persistId);
        onDone();
      },
    });
    return bench;
  }

  entries(count: number, payload: Uint8Array): Entry[] {
    const entries: Entry[] = new Array(count);
    for (let i = 0; i < count; i++) entries[i] = { index: this.next + i, term: 1, type: 0, data: payload };
    this.next += count;
    return entries;
  }

  track(persistId: number, count: number): void {
    this.inFlight++;
    this.sizes.set(persistId, count);
  }
}

let persistIds = 1;

/**
 * Single appends of one 100 B entry, each waited for, for LATENCY_MS. With `raw`, a raw
 * write+fdatasync sample is taken between appends, so both see the same disk at the same time
 * (this machine's disk is shared, and its latency moves by 10x within minutes).
 */
async function appendLatency(
  engine: StorageEngine,
  mode: PersistenceMode,
  raw: { fd: number; samples: number[] } | null,
): Promise<AppendLatency> {
  const ioBefore = engine.ioStats();
  let resolveWrite: () => void = () => {};
  const bench = await BenchLog.open(engine, `latency-${mode}`, mode, () => resolveWrite());
  const payload = new Uint8Array(100).fill(1);
  const samples: number[] = [];
  const stopAt = performance.now() + LATENCY_MS;
  while (performance.now() < stopAt) {
    if (raw !== null) raw.samples.push(rawFdatasyncOnce(raw.fd, payload));
    const start = performance.now();
    const done = new Promise<void>((resolve) => {
      resolveWrite = resolve;
    });
    const persistId = persistIds++;
    bench.track(persistId, 1);
    engine.write([
      {
        log: bench.log,
        entries: bench.entries(1, payload),
        hardState: null,
        snapshot: null,
        mustSync: true,
        persistId,
      },
    ]);
    await done;
    samples.push((performance.now() - start) * 1000);
  }
  const ioAfter = engine.ioStats();
  await engine.dropLog(`latency-${mode}`);
  const io: IoExecutorStats = {
    smallWrites: ioAfter.smallWrites - ioBefore.smallWrites,
    smallWriteStalls: ioAfter.smallWriteStalls - ioBefore.smallWriteStalls,
    threadpoolSyncs: ioAfter.threadpoolSyncs - ioBefore.threadpoolSyncs,
    threadpoolWrites: ioAfter.threadpoolWrites - ioBefore.threadpoolWrites,
    poolTasks: ioAfter.poolTasks - ioBefore.poolTasks,
  };
  return { ...latencyOf(samples), io };
}

/** Pipelined writes of `batchEntries` entries to each partition, for CASE_MS. */
async function throughput(
  engine: StorageEngine,
  mode: PersistenceMode,
  partitions: number,
  batchEntries: number,
  entryBytes: number,
): Promise<Throughput> {
  const name = `${mode}-${partitions}-${batchEntries}-${entryBytes}`;
  let wake: () => void = () => {};
  const logs: BenchLog[] = [];
  for (let p = 0; p < partitions; p++)
    logs.push(await BenchLog.open(engine, `${name}-${p}`, mode, () => wake()));
  const payload = new Uint8Array(entryBytes).fill(2);
  const writeBytes = batchEntries * entryBytes;
  const start = performance.now();
  const stopAt = start + CASE_MS;
  let inFlightBytes = 0;
  while (performance.now() < stopAt) {
    const writes = [];
    for (const bench of logs) {
      if (bench.inFlight >= IN_FLIGHT_WRITES || inFlightBytes + writeBytes > IN_FLIGHT_BYTES) continue;
      const persistId = persistIds++;
      bench.track(persistId, batchEntries);
      writes.push({
        log: bench.log,
        entries: bench.entries(batchEntries, payload),
        hardState: null,
        snapshot: null,
        mustSync: true,
        persistId,
      });
    }
    if (writes.length > 0) engine.write(writes);
    // Wait for a completion (or one turn, if something could be sent) before the next turn.
    await new Promise<void>((resolve) => {
      wake = resolve;
      if (writes.length > 0) setImmediate(resolve);
    });
    inFlightBytes = 0;
    for (const bench of logs) inFlightBytes += bench.inFlight * writeBytes;
    if (mode === 'memory') for (const bench of logs) await compactMemory(bench, entryBytes);
  }
  const seconds = (performance.now() - start) / 1000;
  let entries = 0;
  for (const bench of logs) entries += bench.durableEntries;
  for (let p = 0; p < partitions; p++) await engine.dropLog(`${name}-${p}`);
  return {
    mode,
    partitions,
    batchEntries,
    entryBytes,
    entriesPerSecond: Math.round(entries / seconds),
    megabytesPerSecond: round((entries * entryBytes) / seconds / 1e6),
  };
}

async function compactMemory(bench: BenchLog, entryBytes: number): Promise<void> {
  const log = bench.log;
  if ((log.lastIndex() - log.firstIndex()) * entryBytes < MEMORY_COMPACT_BYTES) return;
  const index = log.lastIndex();
  await log.createSnapshot(index, { voters: [1], learners: [] }, new Uint8Array(0));
  await log.compact(index);
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows.map((row) => row.map((cell, c) => cell.padStart(widths[c]!)).join('  ')).join('\n');
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftlog-bench-storage-'));
  try {
    const crc = crcGigabytesPerSecond();
    const latency: Record<string, AppendLatency> = {};
    const results: Throughput[] = [];
    const rawFd = fs.openSync(path.join(dir, 'raw'), 'w');
    // The raw fdatasync loop runs beside sync's appends; without sync it has no samples.
    const rawSamples: number[] = [];
    for (const mode of MODES) {
      const engine = await StorageEngine.open({ dataDir: path.join(dir, mode) });
      latency[mode] = await appendLatency(
        engine,
        mode,
        mode === 'sync' ? { fd: rawFd, samples: rawSamples } : null,
      );
      for (const partitions of PARTITIONS) {
        for (const entryBytes of ENTRY_BYTES) {
          for (const batchEntries of BATCHES)
            results.push(await throughput(engine, mode, partitions, batchEntries, entryBytes));
        }
      }
      await engine.close();
    }
    fs.closeSync(rawFd);
    const raw = latencyOf(rawSamples);
    // The goals compare modes: only a run of all three has them.
    const goals = MODES.length === ALL_MODES.length ? evaluateGoals(raw, latency, results) : null;
    const report = {
      machine: {
        cores: os.availableParallelism(),
        memoryGiB: Math.round(os.totalmem() / 2 ** 30),
        node: process.version,
      },
      caseMs: CASE_MS,
      rawFdatasync: raw.samples > 0 ? raw : null,
      crc32cGigabytesPerSecond: crc,
      appendLatency: latency,
      throughput: results,
      goals,
    };
    console.log(JSON.stringify(report));
    printTables(raw, latency, results, goals);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function evaluateGoals(raw: Latency, latency: Record<string, Latency>, results: readonly Throughput[]) {
  const find = (mode: PersistenceMode, partitions: number, batchEntries: number, entryBytes: number) =>
    results.find(
      (r) =>
        r.mode === mode &&
        r.partitions === partitions &&
        r.batchEntries === batchEntries &&
        r.entryBytes === entryBytes,
    )!;
  const syncVsAsyncAt64 = [];
  for (const entryBytes of ENTRY_BYTES) {
    for (const batchEntries of BATCHES) {
      const sync = find('sync', 64, batchEntries, entryBytes);
      const async = find('async', 64, batchEntries, entryBytes);
      syncVsAsyncAt64.push({
        batchEntries,
        entryBytes,
        ratio: Math.round((sync.megabytesPerSecond / async.megabytesPerSecond) * 100) / 100,
      });
    }
  }
  const asyncKiB = results.filter((r) => r.mode === 'async' && r.entryBytes === 1024);
  return {
    syncP50OverRawP50: Math.round((latency.sync!.p50Us / raw.p50Us) * 100) / 100,
    syncP50OverRawP50Goal: 1.5,
    syncVsAsyncAt64Partitions: syncVsAsyncAt64,
    syncVsAsyncGoal: 0.5,
    asyncKiBBestMegabytesPerSecond: Math.max(...asyncKiB.map((r) => r.megabytesPerSecond)),
    asyncKiBGoalMegabytesPerSecond: 200,
  };
}

function printTables(
  raw: Latency,
  latency: Record<string, AppendLatency>,
  results: readonly Throughput[],
  goals: ReturnType<typeof evaluateGoals> | null,
): void {
  if (raw.samples > 0)
    console.log(
      `\nraw write(100 B)+fdatasync: p50 ${raw.p50Us} us, p99 ${raw.p99Us} us (${raw.samples} samples)`,
    );
  for (const mode of MODES) {
    const l = latency[mode]!;
    console.log(
      `\n${mode}: single append of 100 B, p50 ${l.p50Us} us, p99 ${l.p99Us} us (${l.samples} samples;` +
        ` writes on the event loop ${l.io.smallWrites}, stalls ${l.io.smallWriteStalls},` +
        ` fdatasyncs on libuv's threadpool ${l.io.threadpoolSyncs}, tasks in the pool ${l.io.poolTasks})`,
    );
    const rows = [['partitions', 'batch', 'entry B', 'entries/s', 'MB/s']];
    for (const r of results.filter((x) => x.mode === mode)) {
      rows.push([
        String(r.partitions),
        String(r.batchEntries),
        String(r.entryBytes),
        String(r.entriesPerSecond),
        String(r.megabytesPerSecond),
      ]);
    }
    console.log(table(rows));
  }
  if (goals === null) return;
  console.log(`\ngoals: sync p50 / raw p50 = ${goals.syncP50OverRawP50} (goal <= 1.5)`);
  console.log(
    `       sync / async MB/s at 64 partitions = ${goals.syncVsAsyncAt64Partitions.map((g) => `${g.batchEntries}x${g.entryBytes}B: ${g.ratio}`).join(', ')} (goal >= 0.5)`,
  );
  console.log(
    `       async best MB/s with 1 KiB entries = ${goals.asyncKiBBestMegabytesPerSecond} (goal >= 200)`,
  );
}

await main();
