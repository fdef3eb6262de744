// The cluster a suite runs against: any running cluster reached by one URL (its nodes come from
// /v1/cluster), optionally with control over local node processes (restart, for catch-up).
// Topics are created per phase under unique names and deleted at the end.

import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { RaftlogClient } from '../../src/client/index.js';
import type { PersistenceMode, TopicDescription } from '../../src/wire/types.js';

const TOPIC_LEADERS_WAIT_MS = 60_000;
const PROBE_TIMEOUT_MS = 3_000;

export interface NodeAddress {
  id: number;
  url: string;
}

/** Kill and restart a node: only when the suite started the cluster itself. */
export interface NodeControl {
  stop(id: number): Promise<void>;
  start(id: number): Promise<void>;
}

export interface PartitionPlacement {
  partition: number;
  leader: number;
  replicas: number[];
}

export class ClusterTarget {
  private readonly topics: string[] = [];
  private readonly runId = randomBytes(3).toString('hex');

  private constructor(
    readonly client: RaftlogClient,
    readonly nodes: NodeAddress[],
    readonly control: NodeControl | null,
  ) {}

  /** Connects through `url`; refuses with a readable error when no node answers there. */
  static async connect(url: string, control: NodeControl | null = null): Promise<ClusterTarget> {
    const client = new RaftlogClient({ url });
    try {
      const cluster = await client.cluster({ signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
      const nodes = cluster.nodes.map((n) => ({ id: n.id, url: n.url })).sort((a, b) => a.id - b.id);
      return new ClusterTarget(client, nodes, control);
    } catch (error) {
      await client.close();
      throw new Error(`no raftlog cluster answers at ${url}: ${(error as Error).message}`);
    }
  }

  url(id: number): string {
    const node = this.nodes.find((n) => n.id === id);
    if (!node) throw new Error(`no node ${id} in the cluster`);
    return node.url;
  }

  /** Creates a topic and waits until every partition has a known leader. */
  async createTopic(
    label: string,
    options: { partitions: number; persistence: PersistenceMode },
  ): Promise<{ name: string; placements: PartitionPlacement[] }> {
    const name = `bench-${this.runId}-${label}`;
    await this.client.createTopic({
      name,
      partitions: options.partitions,
      replicationFactor: Math.min(3, this.nodes.length),
      config: { persistence: options.persistence },
    });
    this.topics.push(name);
    const deadline = Date.now() + TOPIC_LEADERS_WAIT_MS;
    for (;;) {
      const description = await this.client.describeTopic(name);
      if (description.partitions.every((p) => p.leader !== null))
        return { name, placements: placements(description) };
      if (Date.now() > deadline) throw new Error(`topic ${name}: partitions without a leader after 60 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async deleteTopic(name: string): Promise<void> {
    await this.client.deleteTopic(name).catch(() => undefined);
    const index = this.topics.indexOf(name);
    if (index >= 0) this.topics.splice(index, 1);
  }

  /** Process CPU seconds of every node so far (prom-client's counter on /metrics). */
  async cpuSeconds(): Promise<Map<number, number>> {
    const entries = await Promise.all(
      this.nodes.map(
        async (node) => [node.id, await metric(node.url, 'raftlog_process_cpu_seconds_total')] as const,
      ),
    );
    return new Map(entries);
  }

  /** Deletes the topics this run created (best effort: the cluster may be going away). */
  async close(): Promise<void> {
    for (const name of this.topics.splice(0)) await this.client.deleteTopic(name).catch(() => undefined);
    await this.client.close();
  }
}

function placements(description: TopicDescription): PartitionPlacement[] {
  return description.partitions.map((p) => ({
    partition: p.partition,
    leader: p.leader!,
    replicas: p.replicas,
  }));
}

/** One unlabelled-sum sample of a metric on a node's /metrics; NaN when absent. */
export async function metric(url: string, name: string, labelFilter = ''): Promise<number> {
  const response = await request(`${url}/metrics`, {
    headersTimeout: PROBE_TIMEOUT_MS,
    bodyTimeout: PROBE_TIMEOUT_MS,
  });
  const text = await response.body.text();
  let sum = Number.NaN;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
    if (labelFilter && !line.includes(labelFilter)) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    sum = Number.isNaN(sum) ? value : sum + value;
  }
  return sum;
}
