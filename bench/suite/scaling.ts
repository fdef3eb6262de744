// Throughput and p99 against partitions, producer connections and concurrent SSE consumers.
// One topic per point, deleted after it (a 1,000-partition topic costs every node memory).

import { setMaxListeners } from 'node:events';
import type { PersistenceMode } from '../../src/wire/types.js';
import { startConsumer, type TimingConsumer } from './consumers.js';
import { closedLoop, openLoop } from './load.js';
import { leaderTargets } from './phases.js';
import type { Progress } from './progress.js';
import { timedProduceBody } from './records.js';
import { merged, summarize } from './stats.js';
import type { ClusterTarget } from './target.js';

export interface ScalingPoint {
  x: number;
  /** Records per second: committed (partitions, connections) or delivered to all consumers (SSE). */
  recordsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** Why the point has no figures (a topic that got no leaders in time, say). */
  failure?: string;
}

export interface Scaling {
  persistence: PersistenceMode;
  seconds: number;
  warmUpSeconds: number;
  partitions: ScalingPoint[];
  connections: ScalingPoint[];
  sseConsumers: ScalingPoint[];
}

const RECORDS_PER_REQUEST = 100;
const RECORD_BYTES = 100;
const PARTITION_SCALING_CONNECTIONS = 48;
const SSE_PRODUCE_RECORDS_PER_SECOND = 100;
/** SSE streams opened at once while a point sets up. */
const SSE_OPEN_CONCURRENCY = 50;

export async function scaling(
  target: ClusterTarget,
  options: { persistence: PersistenceMode; seconds: number; points: number[]; warmUpSeconds: number },
  progress: Progress,
): Promise<Scaling> {
  // The cluster is fresh: without a warm-up the first points would measure V8 compiling.
  const warmUp = await target.createTopic('scale-warm-up', {
    partitions: 3,
    persistence: options.persistence,
  });
  const warmUpTargets = leaderTargets(target, warmUp.name, warmUp.placements, {
    connections: PARTITION_SCALING_CONNECTIONS,
    recordsPerRequest: RECORDS_PER_REQUEST,
    recordBytes: RECORD_BYTES,
  });
  await closedLoop(warmUpTargets, options.warmUpSeconds, {
    progress,
    what: 'warm-up',
    unit: 'records/s',
    perResponse: RECORDS_PER_REQUEST,
  });
  await target.deleteTopic(warmUp.name);
  const result: Scaling = {
    persistence: options.persistence,
    seconds: options.seconds,
    warmUpSeconds: options.warmUpSeconds,
    partitions: [],
    connections: [],
    sseConsumers: [],
  };
  for (const partitions of options.points) {
    const shape = { partitions, connections: PARTITION_SCALING_CONNECTIONS };
    result.partitions.push(
      await point(partitions, progress, () => closedPoint(target, options, shape, progress)),
    );
  }
  for (const connections of options.points) {
    const shape = { partitions: 3, connections };
    result.connections.push(
      await point(connections, progress, () => closedPoint(target, options, shape, progress)),
    );
  }
  for (const consumers of options.points) {
    result.sseConsumers.push(
      await point(consumers, progress, () => ssePoint(target, options, consumers, progress)),
    );
  }
  return result;
}

/** One point; a failure is reported in the point, and the next points still run. */
async function point(
  x: number,
  progress: Progress,
  measure: () => Promise<ScalingPoint>,
): Promise<ScalingPoint> {
  try {
    return await measure();
  } catch (error) {
    const failure = (error as Error).message;
    progress.note(`point ${x} failed: ${failure}`);
    return { x, recordsPerSecond: Number.NaN, p50Ms: Number.NaN, p99Ms: Number.NaN, errors: 0, failure };
  }
}

async function closedPoint(
  target: ClusterTarget,
  options: { persistence: PersistenceMode; seconds: number },
  point: { partitions: number; connections: number },
  progress: Progress,
): Promise<ScalingPoint> {
  const label = `scale-p${point.partitions}-c${point.connections}`;
  progress.note(`creating a topic of ${point.partitions} partitions`);
  const topic = await target.createTopic(label, {
    partitions: point.partitions,
    persistence: options.persistence,
  });
  try {
    const targets = leaderTargets(target, topic.name, topic.placements, {
      connections: point.connections,
      recordsPerRequest: RECORDS_PER_REQUEST,
      recordBytes: RECORD_BYTES,
    });
    const run = await closedLoop(targets, options.seconds, {
      progress,
      what: `scaling: ${point.partitions} partitions, ${point.connections} connections`,
      unit: 'records/s',
      perResponse: RECORDS_PER_REQUEST,
    });
    const summary = summarize(run.latency);
    return {
      x: point.partitions === 3 ? point.connections : point.partitions,
      recordsPerSecond: (run.ok * RECORDS_PER_REQUEST) / run.seconds,
      p50Ms: summary.p50Ms,
      p99Ms: summary.p99Ms,
      errors: run.errors,
    };
  } finally {
    await target.deleteTopic(topic.name);
  }
}

async function ssePoint(
  target: ClusterTarget,
  options: { persistence: PersistenceMode; seconds: number },
  count: number,
  progress: Progress,
): Promise<ScalingPoint> {
  const topic = await target.createTopic(`scale-sse${count}`, {
    partitions: 1,
    persistence: options.persistence,
  });
  const placement = topic.placements[0]!;
  const followers = placement.replicas.filter((id) => id !== placement.leader);
  const stop = new AbortController();
  // Every consumer of the point listens on this one signal: up to 1,000 listeners, on purpose.
  setMaxListeners(0, stop.signal);
  const consumers: TimingConsumer[] = [];
  try {
    progress.note(`opening ${count} SSE streams on the followers`);
    for (let i = 0; i < count; i += SSE_OPEN_CONCURRENCY) {
      const batch = Array.from({ length: Math.min(SSE_OPEN_CONCURRENCY, count - i) }, (_, j) =>
        startConsumer('sse', {
          url: target.url(followers[(i + j) % followers.length] ?? placement.leader),
          topic: topic.name,
          partition: 0,
          signal: stop.signal,
        }),
      );
      consumers.push(...batch);
      await Promise.all(batch.map((c) => c.ready));
    }
    const leader = new URL(`${target.url(placement.leader)}/v1/topics/${topic.name}/records`);
    const run = await openLoop({
      ratePerSecond: SSE_PRODUCE_RECORDS_PER_SECOND,
      seconds: options.seconds,
      connectionsPerOrigin: 8,
      request: (_i, sendEpochMs) => ({
        origin: leader.origin,
        path: leader.pathname,
        body: timedProduceBody(sendEpochMs, RECORD_BYTES),
      }),
      progress,
      what: `scaling: ${count} SSE consumers, ${SSE_PRODUCE_RECORDS_PER_SECOND} records/s produced`,
    });
    await new Promise((r) => setTimeout(r, 1000));
    const summary = summarize(merged(consumers.map((c) => c.latency)));
    return {
      x: count,
      recordsPerSecond: consumers.reduce((n, c) => n + c.received, 0) / run.seconds,
      p50Ms: summary.p50Ms,
      p99Ms: summary.p99Ms,
      errors: run.errors,
    };
  } finally {
    stop.abort();
    await Promise.allSettled(consumers.map((c) => c.finished));
    await target.deleteTopic(topic.name);
  }
}
