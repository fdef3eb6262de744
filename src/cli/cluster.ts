// `raftlog cluster`: nodes (id, url, alive), the metadata leader, and per topic partition its
// leader, replicas and lag. Lag is measured by asking each replica for its own high watermark
// (any replica answers a fetch from its copy) and comparing with the highest; a replica that
// cannot be asked shows '?'. Probes are bounded in number, concurrency and time.

import { RaftlogClient } from '../client/index.js';
import type { ClusterResponse, PartitionDescription, TopicDescription } from '../wire/types.js';
import { EXIT_OK } from './errors.js';
import { palette, table } from './format.js';
import { type CliIo, colorsEnabled } from './io.js';
import { type ClientFlags, withClient } from './options.js';

/** Replica probes at most; beyond, lag is not shown (a big cluster needs /metrics instead). */
export const LAG_PROBES_MAX = 512;
const PROBE_CONCURRENCY = 8;
const PROBE_TIMEOUT_MS = 2_000;

export interface PartitionLag {
  topic: string;
  partition: number;
  leader: number | null;
  replicas: number[];
  highWatermark: number;
  /** Per replica node id: its high watermark, or null when it could not be asked. */
  replicaHighWatermarks: Record<string, number | null>;
  /** Per replica node id: records behind the most advanced replica, or null when unknown. */
  lag: Record<string, number | null>;
}

export interface ClusterReport extends ClusterResponse {
  partitions: PartitionLag[];
  /** False when there were too many partitions to probe every replica. */
  lagMeasured: boolean;
}

export function clusterCommand(options: ClientFlags, io: CliIo): Promise<number> {
  return withClient(options, io, async (client) => {
    const [cluster, topics] = await Promise.all([client.cluster(), client.listTopics()]);
    const report = await measureLag(cluster, topics, io);
    io.stdout.write(options.json ? `${JSON.stringify(report)}\n` : `${clusterText(report, io)}\n`);
    return EXIT_OK;
  });
}

/** Asks every replica of every partition for its high watermark, within the bounds above. */
export async function measureLag(
  cluster: ClusterResponse,
  topics: TopicDescription[],
  io: CliIo,
): Promise<ClusterReport> {
  const placements = topics.flatMap((topic) =>
    topic.partitions.map((p) => ({ topic: topic.name, partition: p })),
  );
  const probeCount = placements.reduce((sum, { partition }) => sum + partition.replicas.length, 0);
  const lagMeasured = probeCount <= LAG_PROBES_MAX;
  const urls = new Map(cluster.nodes.filter((n) => n.alive).map((n) => [n.id, n.url]));
  const clients = new Map<number, RaftlogClient>();
  const clientOf = (id: number) => {
    const url = urls.get(id);
    if (url === undefined) return undefined;
    let client = clients.get(id);
    if (!client) {
      // direct: each probe asks this node itself, once; no routing to another replica.
      client = new RaftlogClient({
        url,
        direct: true,
        dispatcher: io.dispatcher,
        requestTimeoutMs: PROBE_TIMEOUT_MS,
        retry: { attemptsMax: 1 },
      });
      clients.set(id, client);
    }
    return client;
  };
  try {
    const tasks = placements.map(({ topic, partition }) => async () => {
      const marks = lagMeasured ? await probeReplicas(topic, partition, clientOf) : {};
      return partitionLag(topic, partition, marks);
    });
    return { ...cluster, partitions: await limitConcurrency(tasks, PROBE_CONCURRENCY), lagMeasured };
  } finally {
    await Promise.all([...clients.values()].map((c) => c.close()));
  }
}

async function probeReplicas(
  topic: string,
  partition: PartitionDescription,
  clientOf: (id: number) => RaftlogClient | undefined,
): Promise<Record<string, number | null>> {
  const marks: Record<string, number | null> = {};
  await Promise.all(
    partition.replicas.map(async (id) => {
      const client = clientOf(id);
      try {
        const response = await client?.fetch(topic, partition.partition, {
          offset: 'latest',
          limit: 1,
          waitMs: 0,
        });
        marks[id] = response?.highWatermark ?? null;
      } catch {
        marks[id] = null; // Unreachable from here (down, or its peer URL is not routable for us).
      }
    }),
  );
  return marks;
}

function partitionLag(
  topic: string,
  partition: PartitionDescription,
  marks: Record<string, number | null>,
): PartitionLag {
  const known = Object.values(marks).filter((mark): mark is number => mark !== null);
  const highWatermark = Math.max(partition.highWatermark, ...known);
  const lag: Record<string, number | null> = {};
  for (const [id, mark] of Object.entries(marks)) lag[id] = mark === null ? null : highWatermark - mark;
  return {
    topic,
    partition: partition.partition,
    leader: partition.leader,
    replicas: partition.replicas,
    highWatermark,
    replicaHighWatermarks: marks,
    lag,
  };
}

async function limitConcurrency<T>(tasks: Array<() => Promise<T>>, concurrency: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < tasks.length; i = next++) results[i] = await tasks[i]!();
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, tasks.length) }, worker));
  return results;
}

function clusterText(report: ClusterReport, io: CliIo): string {
  const colors = palette(colorsEnabled(io, io.stdout));
  const leader = report.metadataLeader === null ? colors.red('none') : `node ${report.metadataLeader}`;
  const nodeRows = [...report.nodes]
    .sort((a, b) => a.id - b.id)
    .map((n) => [
      String(n.id),
      n.url,
      n.alive ? colors.green('yes') : colors.red('no'),
      n.id === report.metadataLeader ? 'metadata leader' : '',
    ]);
  const lines = [
    `cluster ${report.clusterId}, metadata leader: ${leader}`,
    '',
    table(['NODE', 'URL', 'ALIVE', 'ROLE'], nodeRows),
  ];
  if (report.partitions.length === 0) {
    lines.push('', "no topics yet; create one with 'raftlog topic create NAME'");
    return lines.join('\n');
  }
  const rows = report.partitions.map((p) => [
    p.topic,
    String(p.partition),
    p.leader === null ? colors.red('none') : String(p.leader),
    p.replicas.join(','),
    String(p.highWatermark),
    report.lagMeasured ? lagText(p) : '-',
  ]);
  lines.push('', table(['TOPIC', 'PARTITION', 'LEADER', 'REPLICAS', 'HIGH-WATERMARK', 'LAG'], rows));
  if (!report.lagMeasured) lines.push(`(lag not measured: more than ${LAG_PROBES_MAX} replicas)`);
  return lines.join('\n');
}

/** "0" when every replica is caught up, else the lagging ones as node:records ("3:12", "2:?"). */
function lagText(partition: PartitionLag): string {
  const behind = Object.entries(partition.lag)
    .filter(([, lag]) => lag !== 0)
    .map(([id, lag]) => `${id}:${lag ?? '?'}`);
  return behind.length === 0 ? '0' : behind.join(' ');
}
