// Three measurements of one persistence mode: commit latency (to the leader and via a follower,
// cold start and warm), throughput at two record sizes, and latency under fixed-rate load (the
// fourth, produce-to-consume latency, is end-to-end.ts). Each is bounded by its duration and
// request caps.

import type { PersistenceMode } from '../../src/wire/types.js';
import { closedLoop, type LoadTarget, openLoop } from './load.js';
import type { Progress } from './progress.js';
import { produceBody } from './records.js';
import { type LatencySummary, merged, summarize } from './stats.js';
import type { ClusterTarget, PartitionPlacement } from './target.js';

export interface Durations {
  /** Seconds of each measured case. */
  seconds: number;
  /** The cold-start row: this long right after the cluster (or topic) starts, before any warm-up. */
  coldSeconds: number;
  warmUpSeconds: number;
  /** Each fixed rate of the latency-throughput curve. */
  rateSeconds: number;
}

type ColdRow = LatencySummary & { seconds: number; requestsPerSecond: number; freshCluster: boolean };

export interface CommitLatency {
  /** The first second of the run, alone (also part of coldStart). */
  coldFirstSecond: ColdRow;
  /** The first seconds of the run: after a cold start when the suite started the cluster itself. */
  coldStart: ColdRow;
  warmUp: LatencySummary & { seconds: number; connections: number; requestsPerSecond: number };
  toLeader: LatencySummary & { requestsPerSecond: number; errors: number };
  viaFollower: LatencySummary & { requestsPerSecond: number; errors: number };
}

const WARM_UP_CONNECTIONS = 8;
/** The cold start's first second, reported on its own row. */
const COLD_FIRST_SECONDS = 1;
export const RECORD_BYTES_SMALL = 100;

export async function commitLatency(
  target: ClusterTarget,
  mode: PersistenceMode,
  durations: Durations,
  progress: Progress,
  freshCluster: boolean,
): Promise<CommitLatency> {
  const topic = await target.createTopic(`latency-${mode}`, { partitions: 1, persistence: mode });
  const placement = topic.placements[0]!;
  const follower = placement.replicas.find((id) => id !== placement.leader) ?? placement.leader;
  const url = (id: number) => `${target.url(id)}/v1/topics/${topic.name}/records`;
  const one = [produceBody({ count: 1, bytes: RECORD_BYTES_SMALL })];
  const single = (id: number): LoadTarget[] => [{ url: url(id), connections: 1, bodies: one }];

  // The first second on its own (what a user who starts a node and sends at once sees), then the
  // rest of the cold-start row; the row is both together.
  const coldFirst = await closedLoop(single(placement.leader), COLD_FIRST_SECONDS, {
    progress,
    what: 'commit latency, first second after a cold start, to leader',
  });
  const restSeconds = durations.coldSeconds - COLD_FIRST_SECONDS;
  const coldRest =
    restSeconds > 0
      ? await closedLoop(single(placement.leader), restSeconds, {
          progress,
          what: 'commit latency, cold start, to leader',
        })
      : null;
  const cold = coldRest
    ? {
        latency: merged([coldFirst.latency, coldRest.latency]),
        ok: coldFirst.ok + coldRest.ok,
        seconds: coldFirst.seconds + coldRest.seconds,
      }
    : coldFirst;
  const warm = await closedLoop(
    [
      { url: url(placement.leader), connections: WARM_UP_CONNECTIONS / 2, bodies: one },
      { url: url(follower), connections: WARM_UP_CONNECTIONS / 2, bodies: one },
    ],
    durations.warmUpSeconds,
    { progress, what: 'warm-up (leader and follower)' },
  );
  const toLeader = await closedLoop(single(placement.leader), durations.seconds, {
    progress,
    what: 'commit latency, 1 connection, to leader',
  });
  const viaFollower = await closedLoop(single(follower), durations.seconds, {
    progress,
    what: 'commit latency, 1 connection, via follower',
  });
  return {
    coldFirstSecond: {
      ...summarize(coldFirst.latency),
      seconds: COLD_FIRST_SECONDS,
      freshCluster,
      requestsPerSecond: coldFirst.ok / coldFirst.seconds,
    },
    coldStart: {
      ...summarize(cold.latency),
      seconds: durations.coldSeconds,
      freshCluster,
      requestsPerSecond: cold.ok / cold.seconds,
    },
    warmUp: {
      ...summarize(warm.latency),
      seconds: warm.seconds,
      connections: WARM_UP_CONNECTIONS,
      requestsPerSecond: warm.ok / warm.seconds,
    },
    toLeader: {
      ...summarize(toLeader.latency),
      requestsPerSecond: toLeader.ok / toLeader.seconds,
      errors: toLeader.errors,
    },
    viaFollower: {
      ...summarize(viaFollower.latency),
      requestsPerSecond: viaFollower.ok / viaFollower.seconds,
      errors: viaFollower.errors,
    },
  };
}

export interface Throughput {
  recordBytes: number;
  recordsPerRequest: number;
  connections: number;
  partitions: number;
  warmUpSeconds: number;
  recordsPerSecond: number;
  payloadMBps: number;
  /** Process CPU of each node (by node id) per record committed, in µs. */
  cpuUsPerRecordByNode: Record<string, number>;
  request: LatencySummary;
  errors: number;
}

/** One target per partition leader, connections spread evenly, each writing to partitions it leads. */
export function leaderTargets(
  target: ClusterTarget,
  topic: string,
  placements: PartitionPlacement[],
  options: { connections: number; recordsPerRequest: number; recordBytes: number; bodiesMax?: number },
): LoadTarget[] {
  const byLeader = new Map<number, number[]>();
  for (const p of placements) byLeader.set(p.leader, [...(byLeader.get(p.leader) ?? []), p.partition]);
  const leaders = [...byLeader.keys()].sort((a, b) => a - b);
  return leaders
    .map((leader, i) => ({
      url: `${target.url(leader)}/v1/topics/${topic}/records`,
      connections:
        Math.floor(options.connections / leaders.length) + (i < options.connections % leaders.length ? 1 : 0),
      bodies: byLeader
        .get(leader)!
        .slice(0, options.bodiesMax ?? 1000)
        .map((partition) =>
          produceBody({ count: options.recordsPerRequest, bytes: options.recordBytes, partition }),
        ),
    }))
    .filter((t) => t.connections > 0);
}

export async function throughput(
  target: ClusterTarget,
  topic: { name: string; placements: PartitionPlacement[] },
  options: { recordBytes: number; recordsPerRequest: number; connections: number; durations: Durations },
  progress: Progress,
): Promise<Throughput> {
  const targets = leaderTargets(target, topic.name, topic.placements, options);
  const label = `${options.connections} connections x ${options.recordsPerRequest} records of ${options.recordBytes} B`;
  const perResponse = options.recordsPerRequest;
  await closedLoop(targets, options.durations.warmUpSeconds, {
    progress,
    what: `warm-up, ${label}`,
    unit: 'records/s',
    perResponse,
  });
  const cpuBefore = await target.cpuSeconds();
  const run = await closedLoop(targets, options.durations.seconds, {
    progress,
    what: `throughput, ${label}`,
    unit: 'records/s',
    perResponse,
  });
  const cpuAfter = await target.cpuSeconds();
  const records = run.ok * options.recordsPerRequest;
  const cpuUsPerRecordByNode: Record<string, number> = {};
  for (const [id, after] of cpuAfter)
    cpuUsPerRecordByNode[id] = ((after - cpuBefore.get(id)!) * 1e6) / Math.max(1, records);
  return {
    recordBytes: options.recordBytes,
    recordsPerRequest: options.recordsPerRequest,
    connections: options.connections,
    partitions: topic.placements.length,
    warmUpSeconds: options.durations.warmUpSeconds,
    recordsPerSecond: records / run.seconds,
    payloadMBps: (records * options.recordBytes) / run.seconds / 1e6,
    cpuUsPerRecordByNode,
    request: summarize(run.latency),
    errors: run.errors,
  };
}

export interface RatePoint extends LatencySummary {
  fractionOfMax: number;
  offeredRecordsPerSecond: number;
  achievedRecordsPerSecond: number;
  errors: number;
  notSent: number;
}

/** Open-loop runs at fractions of a measured maximum: the latency-throughput curve. */
export async function latencyUnderLoad(
  target: ClusterTarget,
  topic: { name: string; placements: PartitionPlacement[] },
  options: {
    maxRecordsPerSecond: number;
    fractions: number[];
    recordsPerRequest: number;
    recordBytes: number;
    durations: Durations;
  },
  progress: Progress,
): Promise<RatePoint[]> {
  const targets = leaderTargets(target, topic.name, topic.placements, {
    ...options,
    connections: topic.placements.length,
  });
  const points: RatePoint[] = [];
  for (const fraction of options.fractions) {
    const recordsPerSecond = fraction * options.maxRecordsPerSecond;
    const run = await openLoop({
      ratePerSecond: Math.max(1, recordsPerSecond / options.recordsPerRequest),
      seconds: options.durations.rateSeconds,
      connectionsPerOrigin: 32,
      request: (i) => {
        const t = targets[i % targets.length]!;
        const url = new URL(t.url);
        return {
          origin: url.origin,
          path: url.pathname,
          body: t.bodies[Math.floor(i / targets.length) % t.bodies.length]!,
        };
      },
      progress,
      what: `fixed rate ${Math.round(fraction * 100)}% of max (${Math.round(recordsPerSecond).toLocaleString('en-US')} records/s)`,
    });
    points.push({
      ...summarize(run.latency),
      fractionOfMax: fraction,
      offeredRecordsPerSecond: recordsPerSecond,
      achievedRecordsPerSecond: (run.ok * options.recordsPerRequest) / run.seconds,
      errors: run.errors,
      notSent: run.notSent,
    });
  }
  return points;
}
