// The node's Prometheus metrics, on a registry of its own (several nodes may share a process in
// tests). Events are observed per request, per proposal or per fsync, never per record; the
// gauges are read from one snapshot of the broker (Broker.metricsSnapshot) taken per scrape.
// Labels stay bounded: operation, status, persistence mode, and topic/partition/replica only
// for topics that exist (a request naming an unknown topic counts under topic="").

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type {
  Broker,
  MetricsSnapshot,
  NodeObserver,
  ObservedGroup,
  PartitionMetrics,
  StorageIoStats,
} from '../broker/facade.js';
import type { RequestGate } from './request-gate.js';

/** Request latency buckets, in seconds: sub-millisecond local commits to long-polls. */
const REQUEST_BUCKETS_SECONDS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];
/** fdatasync buckets, in seconds: from a fast NVMe write cache to a struggling disk. */
const FSYNC_BUCKETS_SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
];

export type RequestOperation = 'produce' | 'fetch';

/** The routes whose requests are counted and timed, by method and route pattern. */
const OPERATIONS: Readonly<Record<string, RequestOperation>> = {
  'POST /v1/topics/:topic/records': 'produce',
  'GET /v1/topics/:topic/partitions/:partition/records': 'fetch',
};

export function operationOf(method: string, routeUrl: string | undefined): RequestOperation | undefined {
  return routeUrl === undefined ? undefined : OPERATIONS[`${method} ${routeUrl}`];
}

const PARTITION_LABELS = ['topic', 'partition'] as const;

export class NodeMetrics implements NodeObserver {
  readonly registry = new Registry();
  private readonly requests: Counter<'operation' | 'topic' | 'status'>;
  private readonly requestSeconds: Histogram<'operation'>;
  private readonly commitSeconds: Histogram<'group' | 'persistence'>;
  private readonly fsyncSeconds: Histogram;
  private readonly elections: Counter;
  private readonly leaderChanges: Counter<'group'>;
  /** The broker as this scrape reads it: one snapshot for every gauge (null between scrapes). */
  private scraped: MetricsSnapshot | null = null;

  constructor(
    private readonly broker: Broker,
    private readonly gate: RequestGate | null = null,
  ) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ node: String(broker.nodeId) });
    collectDefaultMetrics({ register: this.registry, prefix: 'raftlog_' });
    this.requests = new Counter({
      name: 'raftlog_requests_total',
      help: 'Produce and fetch requests answered by this node, by topic and HTTP status',
      labelNames: ['operation', 'topic', 'status'],
      registers,
    });
    this.requestSeconds = new Histogram({
      name: 'raftlog_request_duration_seconds',
      help: 'Produce and fetch request latency on this node (fetch includes long-poll waits)',
      labelNames: ['operation'],
      buckets: REQUEST_BUCKETS_SECONDS,
      registers,
    });
    this.commitSeconds = new Histogram({
      name: 'raftlog_commit_duration_seconds',
      help: 'Leader: from proposing an entry (one per request batch) to applying it',
      labelNames: ['group', 'persistence'],
      buckets: REQUEST_BUCKETS_SECONDS,
      registers,
    });
    this.fsyncSeconds = new Histogram({
      name: 'raftlog_fsync_duration_seconds',
      help: 'Time a log write task spent in fdatasync of a segment file',
      buckets: FSYNC_BUCKETS_SECONDS,
      registers,
    });
    this.elections = new Counter({
      name: 'raftlog_raft_elections_total',
      help: 'Elections this node started as a candidate (new terms; pre-vote rounds excluded), all groups',
      registers,
    });
    this.leaderChanges = new Counter({
      name: 'raftlog_raft_leader_changes_total',
      help: 'Times a group on this node learned of a different leader (or lost it)',
      labelNames: ['group'],
      registers,
    });
    this.registerGauges();
    broker.observe(this);
  }

  /** Counts and times one produce or fetch request (called once per response). */
  observeRequest(
    operation: RequestOperation,
    topic: string | undefined,
    status: number,
    seconds: number,
  ): void {
    const known = topic !== undefined && this.broker.findTopic(topic) !== undefined ? topic : '';
    this.requests.inc({ operation, topic: known, status: String(status) });
    this.requestSeconds.observe({ operation }, seconds);
  }

  proposalApplied(group: ObservedGroup, durationMs: number): void {
    this.commitSeconds.observe({ group: group.kind, persistence: group.persistence }, durationMs / 1000);
  }

  roleChanged(group: ObservedGroup, change: { campaigning: boolean; leaderChanged: boolean }): void {
    if (change.campaigning) this.elections.inc();
    if (change.leaderChanged) this.leaderChanges.inc({ group: group.kind });
  }

  fsync(durationMs: number): void {
    this.fsyncSeconds.observe(durationMs / 1000);
  }

  async metrics(): Promise<string> {
    this.scraped = this.broker.metricsSnapshot();
    try {
      return await this.registry.metrics();
    } finally {
      this.scraped = null;
    }
  }

  /** The scrape's snapshot; a fresh one if the registry is read some other way. */
  private snapshot(): MetricsSnapshot {
    return this.scraped ?? this.broker.metricsSnapshot();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * The idempotent-producer table of each partition replica and its bound (docs/api.md,
   * "Idempotent producers"). Its counts are part of the replicated state: the same on every
   * replica of a partition, and they survive restarts.
   */
  private registerProducerTableMetrics(): void {
    const snapshot = () => this.snapshot();
    const registers = [this.registry];
    const each = (
      metric: Gauge<'topic' | 'partition'> | Counter<'topic' | 'partition'>,
      value: (partition: PartitionMetrics) => number,
    ) => {
      metric.reset();
      for (const p of snapshot().partitions) {
        const labels = { topic: p.topic, partition: String(p.partition) };
        if (metric instanceof Gauge) metric.set(labels, value(p));
        else metric.inc(labels, value(p));
      }
    };
    new Gauge({
      name: 'raftlog_producers',
      help: 'Idempotent producers with a full entry in the partition table (at most producersMax)',
      labelNames: PARTITION_LABELS,
      registers,
      collect() {
        each(this, (p) => p.producers);
      },
    });
    new Gauge({
      name: 'raftlog_producers_evicted_remembered',
      help: 'Evicted idempotent producers the partition still knows by a digest: their retries get 409 UNKNOWN_PRODUCER',
      labelNames: PARTITION_LABELS,
      registers,
      collect() {
        each(this, (p) => p.producersEvictedRemembered);
      },
    });
    new Counter({
      name: 'raftlog_producer_evictions_total',
      help: 'Idempotent producers evicted from a full partition table, least recently written first',
      labelNames: PARTITION_LABELS,
      registers,
      collect() {
        each(this, (p) => p.producerEvictionsTotal);
      },
    });
    new Counter({
      name: 'raftlog_producer_evictions_forgotten_total',
      help: 'Evicted producers whose digest was dropped too (evictedProducersMax reached): forgotten entirely',
      labelNames: PARTITION_LABELS,
      registers,
      collect() {
        each(this, (p) => p.producerEvictionsForgottenTotal);
      },
    });
  }

  private registerGauges(): void {
    const snapshot = () => this.snapshot();
    const registers = [this.registry];
    const perPartition = (
      name: string,
      help: string,
      value: (partition: PartitionMetrics) => number,
    ): Gauge<'topic' | 'partition'> =>
      new Gauge({
        name,
        help,
        labelNames: PARTITION_LABELS,
        registers,
        collect() {
          this.reset();
          for (const p of snapshot().partitions) {
            this.set({ topic: p.topic, partition: String(p.partition) }, value(p));
          }
        },
      });
    perPartition('raftlog_partition_term', 'Raft term of each partition replica on this node', (p) => p.term);
    perPartition(
      'raftlog_partition_leader',
      'Leader node id of each partition as this replica knows it (0: none)',
      (p) => p.leader,
    );
    perPartition(
      'raftlog_partition_high_watermark',
      "One past the last committed offset in this replica's view",
      (p) => p.highWatermark,
    );
    perPartition(
      'raftlog_partition_log_start_offset',
      'First offset still retained by this replica',
      (p) => p.logStartOffset,
    );
    perPartition(
      'raftlog_partition_disk_bytes',
      "Bytes of this replica's segment files (0 for memory topics)",
      (p) => p.diskBytes,
    );
    perPartition(
      'raftlog_partition_memory_bytes',
      'Bytes this replica of a memory topic holds in process memory (0 for the other modes)',
      (p) => p.memoryBytes,
    );
    this.registerProducerTableMetrics();
    new Gauge({
      name: 'raftlog_replica_lag_entries',
      help: "Leader's view: Raft entries each follower lacks (leader's last index - follower's match)",
      labelNames: ['topic', 'partition', 'replica'],
      registers,
      collect() {
        this.reset();
        for (const p of snapshot().partitions) {
          if (p.replicaLagEntries === null) continue;
          for (const [id, lagEntries] of p.replicaLagEntries) {
            this.set({ topic: p.topic, partition: String(p.partition), replica: String(id) }, lagEntries);
          }
        }
      },
    });
    new Gauge({
      name: 'raftlog_partitions_led',
      help: 'Partitions this node leads',
      registers,
      collect() {
        let led = 0;
        for (const p of snapshot().partitions) if (p.isLeader) led++;
        this.set(led);
      },
    });
    new Gauge({
      name: 'raftlog_partitions_hosted',
      help: 'Partition replicas open on this node',
      registers,
      collect() {
        this.set(snapshot().partitions.length);
      },
    });
    // Where storage's I/O ran (docs/storage.md, "Small writes run on the event loop"): counters
    // kept by the engine, read at scrape time.
    const ioCounter = (name: string, help: string, value: (stats: StorageIoStats) => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          const stats = snapshot().storageIo;
          this.reset();
          if (stats !== null) this.inc(value(stats));
        },
      });
    ioCounter(
      'raftlog_storage_inline_writes_total',
      'I/O tasks whose small page-cache writes ran on the event loop',
      (stats) => stats.smallWrites,
    );
    ioCounter(
      'raftlog_storage_inline_write_stalls_total',
      'Inline writes slower than the stall threshold (smallWriteStallMs): the event loop waited on the disk',
      (stats) => stats.smallWriteStalls,
    );
    ioCounter(
      'raftlog_storage_threadpool_fsyncs_total',
      "fdatasyncs run on libuv's threadpool: after a small write, or alone (the async-mode flush)",
      (stats) => stats.threadpoolSyncs,
    );
    ioCounter(
      'raftlog_storage_threadpool_writes_total',
      "Always 0: writes no longer run on libuv's threadpool (kept for existing dashboards)",
      (stats) => stats.threadpoolWrites,
    );
    /** A counter kept elsewhere as a plain number, read at scrape time. */
    const countOf = (name: string, help: string, value: () => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(value());
        },
      });
    // The request gate: admission of request bodies and the drain (request-gate.ts).
    const gate = this.gate;
    if (gate) {
      new Gauge({
        name: 'raftlog_request_body_bytes_in_flight',
        help: 'Bytes of request bodies admitted and not yet answered (bounded per node)',
        registers,
        collect() {
          this.set(gate.inFlightBytes);
        },
      });
      countOf(
        'raftlog_requests_waited_for_admission_total',
        'Requests whose body did not fit the bound at once and waited, unread',
        () => gate.waited,
      );
      countOf(
        'raftlog_requests_busy_total',
        'Requests the node refused with 503 BUSY before their route: no room in time, a full queue, or draining',
        () => gate.refusedBusy,
      );
    }
    // Backpressure on produce (docs/operations.md, "Memory and backpressure").
    countOf(
      'raftlog_produce_waited_total',
      "Produce requests that waited for room in a partition leader's full uncommitted budget",
      () => snapshot().produce.waited,
    );
    countOf(
      'raftlog_produce_throttled_total',
      'Produce requests answered 429 THROTTLED: the budget stayed full for their timeoutMs',
      () => snapshot().produce.throttled,
    );
    countOf(
      'raftlog_produce_busy_total',
      'Produce requests answered 503 BUSY: the bytes waiting for room on this node were at their bound',
      () => snapshot().produce.refusedBusy,
    );
    // The disk's free-space floor (docs/operations.md, "A full disk").
    new Gauge({
      name: 'raftlog_disk_free_bytes',
      help: "Free bytes of this node's data directory at the last reading (statfs, every second)",
      registers,
      collect() {
        const free = snapshot().disk.freeBytes;
        if (free !== null) this.set(free);
      },
    });
    new Gauge({
      name: 'raftlog_disk_free_bytes_min',
      help: 'The free-space floor: under it produce to disk topics is refused with 507 DISK_FULL',
      registers,
      collect() {
        const floor = snapshot().disk.freeBytesMin;
        if (floor !== null) this.set(floor);
      },
    });
    countOf(
      'raftlog_produce_disk_full_total',
      'Produce requests answered 507 DISK_FULL: the data directory was at its free-space floor',
      () => snapshot().produce.refusedDiskFull,
    );
    countOf(
      'raftlog_replication_refused_entries_total',
      "Leaders' App messages with entries this replica turned away at its free-space floor",
      () => snapshot().disk.replicationRefusedEntries,
    );
    new Gauge({
      name: 'raftlog_storage_failed_logs',
      help: 'Partition logs whose write failed (ENOSPC, EIO): they acknowledge nothing until a restart',
      registers,
      collect() {
        this.set(snapshot().disk.failedLogs);
      },
    });
    new Gauge({
      name: 'raftlog_produce_waiting_bytes',
      help: 'Bytes of produce batches waiting for room in a full uncommitted budget',
      registers,
      collect() {
        this.set(snapshot().produce.waitingBytes);
      },
    });
    // The bound on memory-topic data (docs/operations.md, "Memory topics").
    new Gauge({
      name: 'raftlog_memory_topics_bytes',
      help: 'Bytes memory-topic replicas hold in this process (their chunks, leader and follower alike)',
      registers,
      collect() {
        this.set(snapshot().memoryTopics.heldBytes);
      },
    });
    new Gauge({
      name: 'raftlog_memory_topics_bytes_max',
      help: 'The bound on memory-topic data: past it, leaders here refuse produce to memory topics (507 MEMORY_FULL)',
      registers,
      collect() {
        this.set(snapshot().memoryTopics.bytesMax);
      },
    });
    countOf(
      'raftlog_produce_memory_full_total',
      'Produce requests answered 507 MEMORY_FULL: the batch would have taken memory topics past their bound',
      () => snapshot().produce.refusedMemoryFull,
    );
    new Gauge({
      name: 'raftlog_metadata_term',
      help: 'Raft term of the metadata group on this node',
      registers,
      collect() {
        this.set(snapshot().metadata.term);
      },
    });
    new Gauge({
      name: 'raftlog_metadata_leader',
      help: 'Metadata leader node id as this node knows it (0: none)',
      registers,
      collect() {
        this.set(snapshot().metadata.leader);
      },
    });
  }
}
