// The benchmark suite: per persistence mode commit latency, throughput, latency under fixed-rate
// load and produce-to-consume latency; then scaling and catch-up when asked. Runs against any
// cluster (ClusterTarget); bench/run.ts starts fresh local clusters, `raftlog bench` uses a URL.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PersistenceMode } from '../../src/wire/types.js';
import { type CatchUp, catchUp } from './catch-up.js';
import { writeCharts } from './charts.js';
import { endToEnd, endToEndUnderLoad } from './end-to-end.js';
import { commitLatency, type Durations, latencyUnderLoad, throughput } from './phases.js';
import { Progress, type ProgressOutput } from './progress.js';
import {
  allTables,
  commitNow,
  loadAverageNow,
  type ModeResult,
  machineNow,
  markdownTable,
  type SuiteReport,
  textTable,
} from './report.js';
import { type Scaling, scaling } from './scaling.js';
import { ClusterTarget } from './target.js';

export interface SuiteOptions {
  modes: PersistenceMode[];
  /** Seconds of each measured case. */
  seconds: number;
  quick: boolean;
  /** The suite started the cluster just before: the first seconds are a cold start. */
  freshCluster?: boolean;
  scaling: boolean;
  /** Megabytes written while a replica is down (default 50, 10 with quick). */
  catchUpMegabytes?: number;
  /** Directory for the run's JSON, Markdown tables and SVG charts; null: none written. */
  outDir: string | null;
  /** Progress lines go here (stderr); tables to `stdout`. */
  progress: ProgressOutput;
  stdout: ProgressOutput;
}

const THROUGHPUT_CONNECTIONS = 64;
const RECORDS_PER_REQUEST = 100;
const RATE_FRACTIONS = [0.25, 0.5, 0.75, 0.9];
/** Well under what one connection commits, so that the figure is delivery latency, not queueing. */
const END_TO_END_RECORDS_PER_SECOND = 200;
/** Produce-to-consume under load: this fraction of the measured maximum (issue goal: p50 at 50%). */
const END_TO_END_LOAD_FRACTION = 0.5;

export function durationsFor(options: Pick<SuiteOptions, 'seconds' | 'quick'>): Durations {
  const s = options.seconds;
  return options.quick
    ? { seconds: s, coldSeconds: 3, warmUpSeconds: 2, rateSeconds: s }
    : {
        seconds: s,
        coldSeconds: Math.min(10, s),
        warmUpSeconds: Math.min(5, s),
        rateSeconds: Math.max(1, s / 2),
      };
}

export async function runMode(
  target: ClusterTarget,
  mode: PersistenceMode,
  options: SuiteOptions,
): Promise<ModeResult> {
  const progress = new Progress(options.progress, mode);
  const durations = durationsFor(options);
  const latency = await commitLatency(target, mode, durations, progress, options.freshCluster === true);
  const small = await target.createTopic(`throughput-${mode}`, {
    partitions: target.nodes.length,
    persistence: mode,
  });
  const large = await target.createTopic(`throughput-1k-${mode}`, {
    partitions: target.nodes.length,
    persistence: mode,
  });
  const shape = { recordsPerRequest: RECORDS_PER_REQUEST, connections: THROUGHPUT_CONNECTIONS, durations };
  const rates = [
    await throughput(target, small, { ...shape, recordBytes: 100 }, progress),
    await throughput(target, large, { ...shape, recordBytes: 1024 }, progress),
  ];
  // Both fixed-rate cases load the 100 B topic at fractions of its measured maximum.
  const atLoad = {
    maxRecordsPerSecond: rates[0]!.recordsPerSecond,
    recordsPerRequest: RECORDS_PER_REQUEST,
    recordBytes: 100,
  };
  const curve = await latencyUnderLoad(
    target,
    small,
    { ...atLoad, fractions: RATE_FRACTIONS, durations },
    progress,
  );
  const e2eLoaded = await endToEndUnderLoad(
    target,
    small,
    { ...atLoad, fraction: END_TO_END_LOAD_FRACTION, seconds: durations.rateSeconds },
    progress,
  );
  await target.deleteTopic(small.name);
  await target.deleteTopic(large.name);
  const e2e = await endToEnd(
    target,
    mode,
    { recordsPerSecond: END_TO_END_RECORDS_PER_SECOND, seconds: options.seconds },
    progress,
  );
  return {
    persistence: mode,
    commitLatency: latency,
    throughput: rates,
    latencyUnderLoad: curve,
    endToEnd: e2e,
    endToEndUnderLoad: e2eLoaded,
  };
}

export async function runScaling(
  target: ClusterTarget,
  mode: PersistenceMode,
  options: SuiteOptions,
): Promise<Scaling> {
  return scaling(
    target,
    {
      persistence: mode,
      seconds: options.quick ? 1 : 4,
      warmUpSeconds: options.quick ? 2 : 10,
      points: options.quick ? [1, 10] : [1, 10, 100, 1000],
    },
    new Progress(options.progress, `scaling ${mode}`),
  );
}

export async function runCatchUp(
  target: ClusterTarget,
  mode: PersistenceMode,
  options: SuiteOptions,
): Promise<CatchUp> {
  return catchUp(
    target,
    { persistence: mode, megabytes: options.catchUpMegabytes ?? (options.quick ? 10 : 50) },
    new Progress(options.progress, `catch-up ${mode}`),
  );
}

/** A report with nothing measured yet. */
export function emptyReport(target: string, options: SuiteOptions): SuiteReport {
  return {
    bench: 'suite',
    date: new Date().toISOString(),
    commit: commitNow(),
    node: process.version,
    machine: machineNow(),
    target,
    quick: options.quick,
    seconds: options.seconds,
    durationSeconds: 0,
    modes: [],
    scaling: null,
    catchUp: null,
  };
}

/** Prints the tables; writes JSON, Markdown tables and SVG charts to outDir when given. */
export async function finish(report: SuiteReport, startedMs: number, options: SuiteOptions): Promise<void> {
  report.durationSeconds = Math.round((performance.now() - startedMs) / 100) / 10;
  report.machine.loadAverageEnd = loadAverageNow();
  const tables = allTables(report);
  options.stdout.write(`\n${tables.map(textTable).join('\n\n')}\n\n`);
  options.stdout.write(
    `${report.date}, commit ${report.commit}, Node ${report.node}, ${report.machine.cpus} x ${report.machine.cpuModel}, ` +
      `load average ${report.machine.loadAverageStart.join(' ')} at the start, ${report.machine.loadAverageEnd.join(' ')} ` +
      `at the end; ${report.durationSeconds} s in all\n`,
  );
  if (!options.outDir) return;
  mkdirSync(options.outDir, { recursive: true });
  writeFileSync(join(options.outDir, 'suite.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(
    join(options.outDir, 'tables.md'),
    `${tables.map((t) => `### ${t.title}\n\n${markdownTable(t)}`).join('\n\n')}\n`,
  );
  const charts = await writeCharts(report, options.outDir);
  options.stdout.write(`results: ${options.outDir} (suite.json, tables.md, ${charts.join(', ')})\n`);
}

/** The client-side suite against a running cluster (`raftlog bench --server URL`). */
export async function runOnServer(url: string, options: SuiteOptions): Promise<SuiteReport> {
  const startedMs = performance.now();
  const target = await ClusterTarget.connect(url);
  const report = emptyReport(url, options);
  try {
    for (const mode of options.modes) report.modes.push(await runMode(target, mode, options));
    if (options.scaling)
      report.scaling = await runScaling(
        target,
        options.modes.includes('async') ? 'async' : options.modes[0]!,
        options,
      );
  } finally {
    await target.close();
  }
  await finish(report, startedMs, options);
  return report;
}
