// SVG charts of a run, rendered headlessly: Vega-Lite specs compiled to Vega, rendered by
// Vega's SVG renderer (no browser, no canvas).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { ModeResult, SuiteReport } from './report.js';
import type { ScalingPoint } from './scaling.js';
import type { LatencySummary } from './stats.js';

const PERCENTILES: Array<[string, keyof LatencySummary]> = [
  ['p50', 'p50Ms'],
  ['p90', 'p90Ms'],
  ['p99', 'p99Ms'],
  ['p99.9', 'p999Ms'],
  ['max', 'maxMs'],
];
const PERCENTILE_ORDER = PERCENTILES.map(([name]) => name);
const WIDTH = 360;
const HEIGHT = 220;

function percentileRows(summary: LatencySummary, fields: Record<string, string>): Record<string, unknown>[] {
  return PERCENTILES.filter(([, key]) => Number.isFinite(summary[key]) && summary[key] > 0).map(
    ([name, key]) => ({
      ...fields,
      percentile: name,
      ms: summary[key],
    }),
  );
}

/** Modes in the order they ran, so that each keeps its color from chart to chart. */
function modeColor(modes: ModeResult[]) {
  return { field: 'mode', type: 'nominal', scale: { domain: modes.map((m) => m.persistence) } } as const;
}

/** A dash legend drawn as dashed lines (its symbols have no stroke color of their own). */
const DASH_LEGEND = {
  symbolType: 'stroke',
  symbolStrokeWidth: 2,
  encode: { symbols: { update: { stroke: { value: '#555' } } } },
} as const;

const msAxis = {
  field: 'ms',
  type: 'quantitative',
  title: 'milliseconds (log)',
  scale: { type: 'log' },
} as const;

function commitLatencySpec(modes: ModeResult[]): TopLevelSpec {
  const values = modes.flatMap((m) => [
    ...percentileRows(m.commitLatency.toLeader, { mode: m.persistence, path: 'to leader' }),
    ...percentileRows(m.commitLatency.viaFollower, { mode: m.persistence, path: 'via follower' }),
  ]);
  return {
    title: 'Commit latency, one connection, one 100 B record per request',
    data: { values },
    mark: { type: 'line', point: true },
    width: WIDTH,
    height: HEIGHT,
    encoding: {
      x: { field: 'percentile', type: 'ordinal', sort: PERCENTILE_ORDER, title: null },
      y: msAxis,
      color: modeColor(modes),
      strokeDash: {
        field: 'path',
        type: 'nominal',
        title: 'sent',
        legend: DASH_LEGEND,
      },
    },
  };
}

function latencyThroughputSpec(modes: ModeResult[]): TopLevelSpec {
  const values = modes.flatMap((m) =>
    m.latencyUnderLoad.flatMap((p) =>
      (['p50', 'p99'] as const).map((percentile) => ({
        mode: m.persistence,
        percentile,
        recordsPerSecond: p.achievedRecordsPerSecond,
        ms: percentile === 'p50' ? p.p50Ms : p.p99Ms,
      })),
    ),
  );
  return {
    title: 'Latency under fixed-rate load (open loop, corrected for coordinated omission)',
    data: { values: values.filter((v) => Number.isFinite(v.ms) && v.ms > 0) },
    mark: { type: 'line', point: true },
    width: WIDTH,
    height: HEIGHT,
    encoding: {
      x: { field: 'recordsPerSecond', type: 'quantitative', title: 'records/s committed' },
      y: msAxis,
      color: modeColor(modes),
      strokeDash: {
        field: 'percentile',
        type: 'nominal',
        legend: DASH_LEGEND,
      },
    },
  };
}

function endToEndSpec(modes: ModeResult[]): TopLevelSpec {
  const names = { longPoll: 'long-poll fetch', sse: 'SSE stream', sdk: 'SDK Consumer' } as const;
  const values = modes.flatMap((m) => [
    ...(Object.keys(names) as Array<keyof typeof names>).flatMap((kind) =>
      percentileRows(m.endToEnd.consumers[kind], { mode: m.persistence, consumer: names[kind] }),
    ),
    ...percentileRows(m.endToEndUnderLoad.consumer, {
      mode: m.persistence,
      consumer: `SDK Consumer, ${Math.round(m.endToEndUnderLoad.fractionOfMax * 100)}% of max`,
    }),
  ]);
  return {
    title: 'Produce to consume (produced to the leaders, read on followers)',
    data: { values },
    mark: { type: 'line', point: true },
    width: 220,
    height: HEIGHT,
    encoding: {
      column: { field: 'consumer', type: 'nominal', title: null },
      x: { field: 'percentile', type: 'ordinal', sort: PERCENTILE_ORDER, title: null },
      y: msAxis,
      color: modeColor(modes),
    },
  };
}

function scalingSpec(title: string, xTitle: string, rateTitle: string, points: ScalingPoint[]): TopLevelSpec {
  const x = { field: 'x', type: 'quantitative', title: xTitle, scale: { type: 'log' } } as const;
  return {
    title,
    data: { values: points.filter((p) => p.recordsPerSecond > 0 && p.p99Ms > 0) },
    hconcat: [
      {
        mark: { type: 'line', point: true },
        width: 280,
        height: 200,
        encoding: { x, y: { field: 'recordsPerSecond', type: 'quantitative', title: rateTitle } },
      },
      {
        mark: { type: 'line', point: true, color: '#e45756' },
        width: 280,
        height: 200,
        encoding: {
          x,
          y: { field: 'p99Ms', type: 'quantitative', title: 'p99 ms (log)', scale: { type: 'log' } },
        },
      },
    ],
  };
}

/**
 * The chart as SVG text. Vega marks its groups with ARIA roles meant for an interactive page;
 * for a static image they are dropped, and a <title> names the chart (what screen readers read,
 * and what the linter asks of every committed SVG).
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    const svg = (await view.toSVG()).replace(/ (role|aria-roledescription)="[^"]*"/g, '');
    const title = typeof spec.title === 'string' ? spec.title : 'chart';
    return svg.replace(/^(<svg[^>]*>)/, `$1<title>${escapeXml(title)}</title>`);
  } finally {
    view.finalize();
  }
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Writes every chart of the report into `dir`; returns the file names. */
export async function writeCharts(report: SuiteReport, dir: string): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const charts: Array<[string, TopLevelSpec]> = [];
  if (report.modes.length > 0) {
    charts.push(['commit-latency.svg', commitLatencySpec(report.modes)]);
    charts.push(['latency-throughput.svg', latencyThroughputSpec(report.modes)]);
    charts.push(['end-to-end.svg', endToEndSpec(report.modes)]);
  }
  const s = report.scaling;
  if (s) {
    charts.push([
      'scaling-partitions.svg',
      scalingSpec(
        `Throughput and p99 against partitions (${s.persistence})`,
        'partitions (log)',
        'records/s',
        s.partitions,
      ),
    ]);
    charts.push([
      'scaling-connections.svg',
      scalingSpec(
        `Throughput and p99 against producer connections (${s.persistence})`,
        'connections (log)',
        'records/s',
        s.connections,
      ),
    ]);
    charts.push([
      'scaling-sse-consumers.svg',
      scalingSpec(
        `Delivered records and produce-to-consume p99 against SSE consumers (${s.persistence})`,
        'SSE consumers (log)',
        'records/s delivered',
        s.sseConsumers,
      ),
    ]);
  }
  for (const [name, spec] of charts) writeFileSync(join(dir, name), await renderSvg(spec));
  return charts.map(([name]) => name);
}
