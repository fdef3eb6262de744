// Whole broker clusters in one process for tests of the broker logic: in-memory stores, an
// in-memory message sink in place of the transport, and announcements delivered directly.
// Nodes can be stopped and started again on the same stores.

import pino from 'pino';
import type { NodeStore } from '../../src/broker/group-store.js';
import type { Announcer, PartitionStatus } from '../../src/broker/leadership.js';
import type { TopicConfig } from '../../src/broker/metadata-state.js';
import { BrokerNode } from '../../src/broker/node.js';
import type { BrokerNodeOptions, BrokerTiming, NodeTransport } from '../../src/broker/node-options.js';
import type { LocalPartition } from '../../src/broker/partitions.js';
import { type ProduceLocalResult, produceLocal } from '../../src/broker/produce.js';
import type { ProducerInfo } from '../../src/broker/record-batch.js';
import type { Message, NodeId } from '../../src/raft/index.js';
import { MemoryNodeStore } from './memory-store.js';

const FAST_TIMING: Partial<BrokerTiming> = {
  tickMs: 10,
  electionTicks: 10,
  heartbeatTicks: 1,
  gossipIntervalMs: 100,
};

class LocalSink implements NodeTransport {
  private queue: Array<{ to: NodeId; groupId: number; message: Message }> = [];
  constructor(
    private readonly cluster: InProcessCluster,
    private readonly from: NodeId,
  ) {}
  send(to: NodeId, groupId: number, message: Message): void {
    this.queue.push({ to, groupId, message });
  }
  flush(): void {
    const batch = this.queue;
    this.queue = [];
    if (batch.length > 0) setImmediate(() => this.cluster.deliver(this.from, batch));
  }
  isPeerAlive(id: NodeId): boolean {
    return this.cluster.isUp(id);
  }
}

class LocalAnnouncer implements Announcer {
  constructor(
    private readonly cluster: InProcessCluster,
    private readonly from: NodeId,
  ) {}
  announce(statuses: PartitionStatus[]): void {
    setImmediate(() => this.cluster.announce(this.from, statuses));
  }
  async close(): Promise<void> {}
}

/** What a test may set on each node besides what the cluster wires itself. */
type NodeOptions = Pick<
  BrokerNodeOptions,
  | 'produceLimits'
  | 'diskGuard'
  | 'memoryTopicsBytesMax'
  | 'timing'
  | 'producerLimits'
  | 'producerCheckpointBytes'
>;

export class InProcessCluster {
  readonly nodes = new Map<NodeId, BrokerNode>();
  readonly stores = new Map<NodeId, MemoryNodeStore>();
  readonly peers: Map<number, string>;
  /** Cut links "from-to": messages are dropped. */
  readonly cut = new Set<string>();
  /** Messages for which this returns true are dropped too. */
  dropIf: ((from: NodeId, to: NodeId, message: Message) => boolean) | null = null;
  /** Opens node `id`'s store at each start (a real engine); null: the MemoryNodeStores above. */
  openStore: ((id: NodeId) => Promise<NodeStore>) | null = null;

  constructor(
    readonly size: number,
    private readonly nodeOptions: NodeOptions | ((id: NodeId) => NodeOptions) = {},
  ) {
    this.peers = new Map(Array.from({ length: size }, (_, i) => [i + 1, `http://127.0.0.1:${9990 + i}`]));
    for (const id of this.peers.keys()) this.stores.set(id, new MemoryNodeStore());
  }

  async startAll(): Promise<void> {
    for (const id of this.peers.keys()) await this.start(id);
  }

  async start(id: NodeId): Promise<BrokerNode> {
    const options = typeof this.nodeOptions === 'function' ? this.nodeOptions(id) : this.nodeOptions;
    const node = new BrokerNode({
      nodeId: id,
      peers: this.peers,
      store: this.openStore ? await this.openStore(id) : this.stores.get(id)!,
      transport: new LocalSink(this, id),
      logger: pino({ level: 'silent' }),
      defaultPersistence: 'async',
      announcer: new LocalAnnouncer(this, id),
      ...options,
      timing: { ...FAST_TIMING, ...options.timing },
    });
    this.nodes.set(id, node);
    await node.start();
    return node;
  }

  /** Stops a node the hard way (no hand-off): its in-memory store survives, like a disk. */
  async kill(id: NodeId): Promise<void> {
    const node = this.nodes.get(id);
    if (!node) return;
    this.nodes.delete(id);
    await node.stop(0);
  }

  isUp(id: NodeId): boolean {
    return this.nodes.has(id);
  }

  deliver(from: NodeId, batch: Array<{ to: NodeId; groupId: number; message: Message }>): void {
    for (const { to, groupId, message } of batch) {
      if (this.cut.has(`${from}-${to}`) || this.dropIf?.(from, to, message)) continue;
      this.nodes.get(to)?.driver.deliver(groupId, message);
    }
  }

  announce(from: NodeId, statuses: PartitionStatus[]): void {
    for (const [id, node] of this.nodes) if (id !== from) node.receiveAnnouncements(statuses);
  }

  metadataLeader(): BrokerNode | undefined {
    for (const node of this.nodes.values()) if (node.isMetadataLeader()) return node;
    return undefined;
  }

  async stopAll(): Promise<void> {
    for (const id of [...this.nodes.keys()]) await this.kill(id);
  }
}

/** The node leading a partition group right now, with its local partition; undefined if none. */
export function leaderOf(
  c: InProcessCluster,
  groupId: number,
): { node: BrokerNode; local: LocalPartition } | undefined {
  for (const node of c.nodes.values()) {
    const local = node.localPartition(groupId);
    if (local?.group.isLeader) return { node, local };
  }
  return undefined;
}

/** Polls `condition` until it holds or the deadline passes; returns whether it held. */
export async function eventually(condition: () => boolean, timeoutMs: number, stepMs = 5): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
  return condition();
}

/** Produces on whichever node leads, retrying while there is none (what a client does). */
export async function produceAnywhere(
  c: InProcessCluster,
  groupId: number,
  values: string[],
  producer: ProducerInfo,
  timeoutMs = 2000,
): Promise<ProduceLocalResult> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    await eventually(() => leaderOf(c, groupId) !== undefined, 5000);
    const { node, local } = leaderOf(c, groupId)!;
    const records = values.map((v) => ({
      key: null,
      value: new TextEncoder().encode(v),
      headers: null,
      timestampMs: null,
    }));
    try {
      return await produceLocal(node, local, records, producer, timeoutMs);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if ((code !== 'NO_LEADER' && code !== 'TIMEOUT') || Date.now() > deadline) throw error;
    }
  }
}

/**
 * Creates a one-partition topic with 3 replicas and waits until it has a leader and every node has
 * built its replica (a leader needs only a quorum), so a test may read all three. Its group id.
 */
export async function createOnePartitionTopic(
  c: InProcessCluster,
  name: string,
  config: Partial<TopicConfig> & Pick<TopicConfig, 'persistence'>,
): Promise<number> {
  if (!(await eventually(() => c.metadataLeader() !== undefined, 5000)))
    throw new Error('no metadata leader');
  const result = await c.metadataLeader()!.proposeMetadata(
    {
      type: 'createTopic',
      name,
      partitions: 1,
      replicationFactor: 3,
      config: { retentionMs: -1, retentionBytes: -1, ...config },
    },
    5000,
  );
  if (!result.ok) throw new Error(`could not create topic '${name}'`);
  const groupId = c.metadataLeader()!.metadata.topic(name).partitions[0]!.groupId;
  const ready = () =>
    leaderOf(c, groupId) !== undefined &&
    [...c.nodes.values()].every((node) => node.localPartition(groupId) !== undefined);
  if (!(await eventually(ready, 5000)))
    throw new Error(`topic '${name}' has no leader or a replica is missing`);
  return groupId;
}
