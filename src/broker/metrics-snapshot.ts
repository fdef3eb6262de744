// One reading of everything the node's metrics show, taken when /metrics is scraped: per
// partition replica, and the node's counters and bounds. Plain numbers, so the API reads no
// group, core or machine.

import type { ProduceBackpressure } from './backpressure.js';
import type { DiskPressure } from './disk-pressure.js';
import type { Driver } from './driver.js';
import type { MetricsSnapshot, PartitionMetrics, StorageIoStats } from './facade.js';
import type { MemoryTopicsBound } from './memory-bound.js';
import type { LocalPartition } from './partitions.js';

export interface MetricsSources {
  nodeId: number;
  partitions: Iterable<LocalPartition>;
  backpressure: ProduceBackpressure;
  disk: DiskPressure;
  memoryTopics: MemoryTopicsBound;
  driver: Driver;
  storageIo: StorageIoStats | null;
  metadata: { term: number; leader: number };
}

export function takeMetricsSnapshot(sources: MetricsSources): MetricsSnapshot {
  const { backpressure, disk, memoryTopics } = sources;
  const partitions: PartitionMetrics[] = [];
  for (const local of sources.partitions) partitions.push(partitionMetrics(local, sources.nodeId));
  const free = disk.guard?.freeBytes;
  return {
    partitions,
    storageIo: sources.storageIo,
    produce: {
      waited: backpressure.waited,
      throttled: backpressure.throttled,
      refusedBusy: backpressure.refusedBusy,
      refusedDiskFull: disk.guard?.refusedProduce ?? 0,
      refusedMemoryFull: memoryTopics.refused,
      waitingBytes: backpressure.waitingBytes,
    },
    disk: {
      freeBytes: free !== undefined && Number.isFinite(free) ? free : null,
      freeBytesMin: disk.guard ? disk.guard.freeBytesMin : null,
      failedLogs: disk.failedGroups,
      replicationRefusedEntries: sources.driver.droppedEntriesRefused,
    },
    memoryTopics: { heldBytes: memoryTopics.heldBytes(), bytesMax: memoryTopics.bytesMax },
    metadata: sources.metadata,
  };
}

function partitionMetrics(local: LocalPartition, nodeId: number): PartitionMetrics {
  const { group, machine } = local;
  const producers = machine.producers;
  return {
    topic: local.topic,
    partition: local.partition,
    term: group.term,
    leader: group.leaderId,
    isLeader: group.isLeader,
    highWatermark: machine.highWatermark,
    logStartOffset: machine.logStartOffset,
    diskBytes: group.store.diskBytes?.() ?? 0,
    memoryBytes: group.store.memoryBytes?.() ?? 0,
    producers: producers.size,
    producersEvictedRemembered: producers.evictedSize,
    producerEvictionsTotal: producers.evictionsTotal,
    producerEvictionsForgottenTotal: producers.forgottenTotal,
    replicaLagEntries: group.isLeader ? replicaLag(local, nodeId) : null,
  };
}

/** The leader's view: Raft entries each follower lacks (leader's last index - its match). */
function replicaLag(local: LocalPartition, nodeId: number): ReadonlyMap<number, number> | null {
  const status = local.group.raw.status();
  if (!status.progress) return null;
  const lag = new Map<number, number>();
  for (const [id, progress] of status.progress) {
    if (id !== nodeId) lag.set(id, Math.max(0, status.lastIndex - progress.match));
  }
  return lag;
}
