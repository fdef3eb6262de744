// Produce-to-consume latency: records produced on a fixed schedule carry their send time, and
// consumers reading on followers time each one's arrival (one process, one clock). Two cases: a
// light load (one 100 B record per request) read three ways, long-poll, SSE and the SDK's
// Consumer; and a fraction of the measured maximum (requests of 100 records over every
// partition) read by the SDK's Consumer.

import type { PersistenceMode } from '../../src/wire/types.js';
import { type ConsumerKind, startConsumer, startFollowerConsumer } from './consumers.js';
import { openLoop } from './load.js';
import { RECORD_BYTES_SMALL } from './phases.js';
import type { Progress } from './progress.js';
import { timedBatchBody, timedProduceBody } from './records.js';
import { type LatencySummary, summarize } from './stats.js';
import type { ClusterTarget, PartitionPlacement } from './target.js';

export interface EndToEnd {
  recordsPerSecond: number;
  recordBytes: number;
  seconds: number;
  readFrom: 'follower';
  produced: number;
  /** From the scheduled send to the leader's answer (committed). */
  produce: LatencySummary;
  consumers: Record<ConsumerKind, LatencySummary & { received: number }>;
}

const CONSUMER_KINDS: ConsumerKind[] = ['longPoll', 'sse', 'sdk'];
/** After the last send, how long consumers get to receive the last records. */
const CONSUME_DRAIN_MS = 2_000;

/** Produces timed records to the leader at a fixed rate while three consumers read a follower. */
export async function endToEnd(
  target: ClusterTarget,
  mode: PersistenceMode,
  options: { recordsPerSecond: number; seconds: number },
  progress: Progress,
): Promise<EndToEnd> {
  const topic = await target.createTopic(`e2e-${mode}`, { partitions: 1, persistence: mode });
  const placement = topic.placements[0]!;
  const follower = placement.replicas.find((id) => id !== placement.leader) ?? placement.leader;
  const stop = new AbortController();
  const consumers = CONSUMER_KINDS.map((kind) =>
    startConsumer(kind, { url: target.url(follower), topic: topic.name, partition: 0, signal: stop.signal }),
  );
  try {
    await Promise.all(consumers.map((c) => c.ready));
    const leader = new URL(`${target.url(placement.leader)}/v1/topics/${topic.name}/records`);
    const run = await openLoop({
      ratePerSecond: options.recordsPerSecond,
      seconds: options.seconds,
      connectionsPerOrigin: 16,
      request: (_i, sendEpochMs) => ({
        origin: leader.origin,
        path: leader.pathname,
        body: timedProduceBody(sendEpochMs, RECORD_BYTES_SMALL),
      }),
      progress,
      what: `end to end, ${options.recordsPerSecond} records/s, 3 consumers on a follower`,
    });
    await new Promise((r) => setTimeout(r, CONSUME_DRAIN_MS));
    const byKind = Object.fromEntries(
      consumers.map((c) => [c.kind, { ...summarize(c.latency), received: c.received }]),
    ) as EndToEnd['consumers'];
    return {
      recordsPerSecond: options.recordsPerSecond,
      recordBytes: RECORD_BYTES_SMALL,
      seconds: options.seconds,
      readFrom: 'follower',
      produced: run.ok,
      produce: summarize(run.latency),
      consumers: byKind,
    };
  } finally {
    stop.abort();
    await Promise.allSettled(consumers.map((c) => c.finished));
  }
}

export interface EndToEndUnderLoad {
  fractionOfMax: number;
  offeredRecordsPerSecond: number;
  achievedRecordsPerSecond: number;
  recordsPerRequest: number;
  recordBytes: number;
  seconds: number;
  readFrom: 'follower';
  /** Requests answered 2xx; the first record of each is timed. */
  produced: number;
  errors: number;
  /** Per request, from its scheduled send to the leader's answer (committed). */
  produce: LatencySummary;
  /** Per timed record, from its send to its arrival in the SDK's Consumer. */
  consumer: LatencySummary & { received: number };
}

/**
 * Produces `fraction` of `maxRecordsPerSecond` to `topic` (requests of recordsPerRequest records,
 * each to its partition's leader, partitions in turn) while the SDK's Consumer reads every
 * partition on a follower.
 */
export async function endToEndUnderLoad(
  target: ClusterTarget,
  topic: { name: string; placements: PartitionPlacement[] },
  options: {
    maxRecordsPerSecond: number;
    fraction: number;
    recordsPerRequest: number;
    recordBytes: number;
    seconds: number;
  },
  progress: Progress,
): Promise<EndToEndUnderLoad> {
  const stop = new AbortController();
  const consumer = startFollowerConsumer({
    urls: target.nodes.map((n) => n.url),
    topic: topic.name,
    signal: stop.signal,
  });
  const offered = options.fraction * options.maxRecordsPerSecond;
  const leaders = topic.placements.map(
    (p) => new URL(`${target.url(p.leader)}/v1/topics/${topic.name}/records`),
  );
  try {
    await consumer.ready;
    const run = await openLoop({
      ratePerSecond: Math.max(1, offered / options.recordsPerRequest),
      seconds: options.seconds,
      connectionsPerOrigin: 32,
      request: (i, sendEpochMs) => {
        const p = i % leaders.length;
        return {
          origin: leaders[p]!.origin,
          path: leaders[p]!.pathname,
          body: timedBatchBody(sendEpochMs, {
            count: options.recordsPerRequest,
            bytes: options.recordBytes,
            partition: topic.placements[p]!.partition,
          }),
        };
      },
      progress,
      what: `end to end at ${Math.round(options.fraction * 100)}% of max (${Math.round(offered).toLocaleString('en-US')} records/s), SDK Consumer on followers`,
    });
    await new Promise((r) => setTimeout(r, CONSUME_DRAIN_MS));
    return {
      fractionOfMax: options.fraction,
      offeredRecordsPerSecond: offered,
      achievedRecordsPerSecond: (run.ok * options.recordsPerRequest) / run.seconds,
      recordsPerRequest: options.recordsPerRequest,
      recordBytes: options.recordBytes,
      seconds: options.seconds,
      readFrom: 'follower',
      produced: run.ok,
      errors: run.errors + run.notSent,
      produce: summarize(run.latency),
      consumer: { ...summarize(consumer.latency), received: consumer.received },
    };
  } finally {
    stop.abort();
    await consumer.finished; // a consumer that failed fails the case, rather than report no records
  }
}
