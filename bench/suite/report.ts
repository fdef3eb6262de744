// The suite's results: the JSON document of a run (with machine, Node version, commit, date) and
// its tables, as aligned text for the terminal and as Markdown for docs/benchmarks.md.

import { execFileSync } from 'node:child_process';
import { cpus, loadavg, platform, release, totalmem } from 'node:os';
import type { PersistenceMode } from '../../src/wire/types.js';
import type { CatchUp } from './catch-up.js';
import type { EndToEnd, EndToEndUnderLoad } from './end-to-end.js';
import type { CommitLatency, RatePoint, Throughput } from './phases.js';
import type { Scaling, ScalingPoint } from './scaling.js';
import type { LatencySummary } from './stats.js';

export interface ModeResult {
  persistence: PersistenceMode;
  commitLatency: CommitLatency;
  throughput: Throughput[];
  latencyUnderLoad: RatePoint[];
  endToEnd: EndToEnd;
  endToEndUnderLoad: EndToEndUnderLoad;
}

export interface Machine {
  cpuModel: string;
  cpus: number;
  memoryGiB: number;
  os: string;
  /** 1, 5 and 15 minute load averages at the start and at the end of the run. */
  loadAverageStart: number[];
  loadAverageEnd: number[];
}

export interface SuiteReport {
  bench: 'suite';
  date: string;
  commit: string;
  node: string;
  machine: Machine;
  target: string;
  quick: boolean;
  seconds: number;
  durationSeconds: number;
  modes: ModeResult[];
  scaling: Scaling | null;
  catchUp: CatchUp | null;
}

export function machineNow(): Machine {
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cpus: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${platform()} ${release()}`,
    loadAverageStart: loadavg().map(round2),
    loadAverageEnd: [],
  };
}

export function loadAverageNow(): number[] {
  return loadavg().map(round2);
}

/** The checked-out commit, with -dirty when the work tree has changes; 'unknown' outside git. */
export function commitNow(): string {
  try {
    const hash = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      encoding: 'utf8',
    }).trim();
    return dirty ? `${hash}-dirty` : hash;
  } catch {
    return 'unknown';
  }
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

type Row = string[];

export interface Table {
  title: string;
  header: Row;
  rows: Row[];
}

const ms = (n: number) => (Number.isNaN(n) ? '-' : n < 10 ? n.toFixed(2) : n.toFixed(1));
const int = (n: number) => (Number.isNaN(n) ? '-' : Math.round(n).toLocaleString('en-US'));
const percentiles = (s: LatencySummary) => [ms(s.p50Ms), ms(s.p90Ms), ms(s.p99Ms), ms(s.p999Ms), ms(s.maxMs)];
const PERCENTILE_HEADER = ['p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms'];

/** A cold-start row: `span` ("first second", "first 10 s") after the cluster started or of the run. */
function coldRow(span: string, row: CommitLatency['coldStart']): string[] {
  return [
    row.freshCluster
      ? `to leader, ${span} after a cold start`
      : `to leader, ${span} of the run (cluster already up)`,
    int(row.count),
    ...percentiles(row),
    int(row.requestsPerSecond),
  ];
}

export function modeTables(mode: ModeResult): Table[] {
  const c = mode.commitLatency;
  const latency: Table = {
    title: `${mode.persistence}: commit latency, 1 connection, one 100 B record per request`,
    header: ['case', 'requests', ...PERCENTILE_HEADER, 'req/s'],
    // In the order they ran: the cold start (its first second, then all of it), the warm-up, then
    // the two measured cases.
    rows: [
      coldRow('first second', c.coldFirstSecond),
      coldRow(`first ${Math.round(c.coldStart.seconds)} s`, c.coldStart),
      [
        `warm-up, ${Math.round(c.warmUp.seconds)} s at ${c.warmUp.connections} connections (leader and follower)`,
        int(c.warmUp.count),
        ...percentiles(c.warmUp),
        int(c.warmUp.requestsPerSecond),
      ],
      ['to leader', int(c.toLeader.count), ...percentiles(c.toLeader), int(c.toLeader.requestsPerSecond)],
      [
        'via follower',
        int(c.viaFollower.count),
        ...percentiles(c.viaFollower),
        int(c.viaFollower.requestsPerSecond),
      ],
    ],
  };
  const throughput: Table = {
    title:
      `${mode.persistence}: throughput (closed loop after a ${mode.throughput[0]?.warmUpSeconds ?? 0} s warm-up; ` +
      'one partition per node, each written at its leader)',
    header: [
      'records',
      'connections',
      'records/s',
      'MB/s',
      'request p50 ms',
      'request p99 ms',
      'CPU µs/record per node',
      'errors',
    ],
    rows: mode.throughput.map((t) => [
      `${t.recordsPerRequest} x ${t.recordBytes} B`,
      String(t.connections),
      int(t.recordsPerSecond),
      t.payloadMBps.toFixed(1),
      ms(t.request.p50Ms),
      ms(t.request.p99Ms),
      Object.values(t.cpuUsPerRecordByNode)
        .map((v) => v.toFixed(2))
        .join(' / '),
      String(t.errors),
    ]),
  };
  const curve: Table = {
    title: `${mode.persistence}: latency under load (open loop, from the scheduled send; requests of 100 x 100 B)`,
    header: ['rate', 'offered records/s', 'achieved records/s', ...PERCENTILE_HEADER, 'errors'],
    rows: mode.latencyUnderLoad.map((p) => [
      `${Math.round(p.fractionOfMax * 100)}% of max`,
      int(p.offeredRecordsPerSecond),
      int(p.achievedRecordsPerSecond),
      ...percentiles(p),
      String(p.errors + p.notSent),
    ]),
  };
  const e = mode.endToEnd;
  const endToEnd: Table = {
    title: `${mode.persistence}: produce to consume, ${e.recordsPerSecond} records/s to the leader, read on a follower`,
    header: ['consumer', 'received', ...PERCENTILE_HEADER],
    rows: [
      [
        '(produce acknowledged)',
        `${int(e.produced)} of ${int(e.recordsPerSecond * e.seconds)}`,
        ...percentiles(e.produce),
      ],
      ...(
        [
          ['long-poll fetch', e.consumers.longPoll],
          ['SSE stream', e.consumers.sse],
          ['SDK Consumer', e.consumers.sdk],
        ] as const
      ).map(([name, s]) => [name, `${int(s.received)} of ${int(e.produced)}`, ...percentiles(s)]),
    ],
  };
  const l = mode.endToEndUnderLoad;
  const endToEndLoaded: Table = {
    title: `${mode.persistence}: produce to consume at ${Math.round(l.fractionOfMax * 100)}% of max, ${int(l.achievedRecordsPerSecond)} of ${int(l.offeredRecordsPerSecond)} records/s in requests of ${l.recordsPerRequest} to the leaders, read on followers`,
    header: ['what', 'count', ...PERCENTILE_HEADER],
    rows: [
      [
        '(produce acknowledged, per request)',
        `${int(l.produced)}, ${int(l.errors)} failed or not sent`,
        ...percentiles(l.produce),
      ],
      [
        'SDK Consumer (first record of each request)',
        `${int(l.consumer.received)} of ${int(l.produced)}`,
        ...percentiles(l.consumer),
      ],
    ],
  };
  return [latency, throughput, curve, endToEnd, endToEndLoaded];
}

export function comparisonTable(modes: ModeResult[]): Table {
  return {
    title: 'modes side by side',
    header: [
      'mode',
      'commit p50 ms',
      'commit p99 ms',
      'via follower p50 ms',
      'records/s (100 B)',
      'MB/s (1 KiB)',
      'e2e SSE p99 ms',
      'e2e p50 ms at 50% load',
    ],
    rows: modes.map((m) => [
      m.persistence,
      ms(m.commitLatency.toLeader.p50Ms),
      ms(m.commitLatency.toLeader.p99Ms),
      ms(m.commitLatency.viaFollower.p50Ms),
      int(m.throughput[0]?.recordsPerSecond ?? Number.NaN),
      (m.throughput[1]?.payloadMBps ?? Number.NaN).toFixed(1),
      ms(m.endToEnd.consumers.sse.p99Ms),
      ms(m.endToEndUnderLoad.consumer.p50Ms),
    ]),
  };
}

export function scalingTables(s: Scaling): Table[] {
  const table = (title: string, x: string, points: ScalingPoint[], rate: string): Table => ({
    title: `${s.persistence}, after a ${s.warmUpSeconds} s warm-up: ${title}`,
    header: [x, rate, 'p50 ms', 'p99 ms', 'errors'],
    rows: points.map((p) => [
      int(p.x),
      int(p.recordsPerSecond),
      ms(p.p50Ms),
      ms(p.p99Ms),
      p.failure ? `failed: ${p.failure}` : String(p.errors),
    ]),
  });
  return [
    table(
      'scaling with partitions (48 connections, 100 x 100 B per request)',
      'partitions',
      s.partitions,
      'records/s',
    ),
    table(
      'scaling with producer connections (3 partitions, 100 x 100 B per request)',
      'connections',
      s.connections,
      'records/s',
    ),
    table(
      'scaling with SSE consumers (100 records/s produced; latency produce to consume)',
      'consumers',
      s.sseConsumers,
      'records/s delivered',
    ),
  ];
}

export function catchUpTable(c: CatchUp): Table {
  return {
    title: `${c.persistence}: catch-up of a restarted replica`,
    header: ['written while down', 'process start s', 'catch-up s', 'MB/s'],
    rows: [
      [
        `${c.megabytes} MB`,
        c.startSeconds.toFixed(1),
        c.catchUpSeconds.toFixed(1),
        c.megabytesPerSecond.toFixed(1),
      ],
    ],
  };
}

export function allTables(report: SuiteReport): Table[] {
  return [
    ...report.modes.flatMap(modeTables),
    ...(report.modes.length > 1 ? [comparisonTable(report.modes)] : []),
    ...(report.scaling ? scalingTables(report.scaling) : []),
    ...(report.catchUp ? [catchUpTable(report.catchUp)] : []),
  ];
}

export function textTable(table: Table): string {
  const all = [table.header, ...table.rows];
  const widths = table.header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  const line = (r: Row) =>
    r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  return [table.title, line(table.header), ...table.rows.map(line)].join('\n');
}

export function markdownTable(table: Table): string {
  const line = (r: Row) => `| ${r.join(' | ')} |`;
  return [line(table.header), line(table.header.map(() => '---')), ...table.rows.map(line)].join('\n');
}
