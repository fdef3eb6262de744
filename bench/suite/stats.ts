// Latency histograms of the suite: hdr-histogram-js, recorded in microseconds (3 significant
// digits, up to 60 s), summarized in milliseconds.

import * as hdr from 'hdr-histogram-js';

export type Histogram = hdr.Histogram;

/** Longest latency a histogram holds; longer samples are clamped to it (and show as the max). */
const LATENCY_US_MAX = 60_000_000;

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

export function latencyHistogram(): Histogram {
  return hdr.build({
    bitBucketSize: 32,
    lowestDiscernibleValue: 1,
    highestTrackableValue: LATENCY_US_MAX,
    numberOfSignificantValueDigits: 3,
  });
}

/** Records a latency given in milliseconds (fractional). */
export function recordMs(histogram: Histogram, latencyMs: number): void {
  histogram.recordValue(Math.min(LATENCY_US_MAX, Math.max(1, Math.round(latencyMs * 1000))));
}

export function summarize(histogram: Histogram): LatencySummary {
  const at = (percentile: number) =>
    histogram.totalCount === 0 ? Number.NaN : histogram.getValueAtPercentile(percentile) / 1000;
  return {
    count: histogram.totalCount,
    p50Ms: at(50),
    p90Ms: at(90),
    p99Ms: at(99),
    p999Ms: at(99.9),
    maxMs: histogram.totalCount === 0 ? Number.NaN : histogram.maxValue / 1000,
  };
}

export function merged(histograms: Histogram[]): Histogram {
  const all = latencyHistogram();
  for (const h of histograms) all.add(h);
  return all;
}
