// Retention: which prefix of a partition's log to drop, by age and by size, in whole closed
// segments (the policy, pure), and the pass that applies it to this node's replicas. As in Kafka,
// every replica runs it on its own segments: the log start offset is per replica. A memory-mode
// log offers its in-memory chunks as segments (src/storage/memory-chunks.ts): the same rules cut it.

import type { Logger } from 'pino';
import type { Snapshot } from '../raft/index.js';
import type { GroupStore } from './group-store.js';
import type { TopicConfig } from './metadata-state.js';
import {
  decodePartitionSnapshot,
  encodePartitionSnapshot,
  PartitionMachine,
  type PartitionSnapshot,
  rebuildProducerTable,
} from './partition-machine.js';
import type { LocalPartition } from './partitions.js';
import { withProducerCheckpoint } from './producer-checkpoint.js';
import { forEachRecord, isRecordBatch } from './record-batch.js';

/** One segment file as the policy sees it. */
export interface RetainedSegment {
  lastIndex: number;
  sizeBytes: number;
  /**
   * Newest record timestamp in the segment (ms since the epoch; -Infinity when it holds no
   * records), or null when not looked at: the time rule stops there.
   */
  maxTimestampMs: number | null;
}

export interface RetentionInput {
  /** Oldest first; the last one is the active segment, which is never cut. */
  segments: readonly RetainedSegment[];
  /** -1: no age limit. */
  retentionMs: number;
  /** -1: no size limit. */
  retentionBytes: number;
  nowMs: number;
  /** The highest index that may go: below the replica's applied index. */
  maxCutIndex: number;
}

/**
 * The last index to drop (the last index of the last segment to delete), or null to keep every
 * segment. As Kafka: by time, the leading segments whose newest record is older than
 * retentionMs; by size, the leading segments whose deletion still leaves at least retentionBytes;
 * the longer of the two prefixes goes. Only closed segments wholly at or below maxCutIndex.
 */
export function retentionCutIndex(input: RetentionInput): number | null {
  const { segments, retentionMs, retentionBytes, nowMs } = input;
  let deletable = 0; // closed segments wholly at or below maxCutIndex, a prefix
  while (deletable < segments.length - 1 && segments[deletable]!.lastIndex <= input.maxCutIndex) deletable++;
  let byTime = 0;
  if (retentionMs >= 0) {
    while (byTime < deletable) {
      const newest = segments[byTime]!.maxTimestampMs;
      if (newest === null || nowMs - newest <= retentionMs) break;
      byTime++;
    }
  }
  let bySize = 0;
  if (retentionBytes >= 0) {
    let totalBytes = 0;
    for (const segment of segments) totalBytes += segment.sizeBytes;
    while (bySize < deletable && totalBytes - segments[bySize]!.sizeBytes >= retentionBytes) {
      totalBytes -= segments[bySize]!.sizeBytes;
      bySize++;
    }
  }
  const count = Math.max(byTime, bySize);
  return count === 0 ? null : segments[count - 1]!.lastIndex;
}

/** Bytes read per step when scanning a segment for its newest timestamp. */
const TIMESTAMP_SCAN_BYTES = 1024 * 1024;

/**
 * Runs retention over this node's replicas: one pass at a time, each replica cut on its own. The
 * newest timestamp of a closed segment is read once (a scan of its records) and remembered.
 */
export class RetentionRunner {
  /** Per group: newest timestamp by segment ("baseIndex:lastIndex"), for segments still there. */
  private readonly timestamps = new Map<number, Map<string, number>>();
  private running: Promise<void> | null = null;

  constructor(private readonly logger: Logger) {}

  /** Starts a pass unless one is running; `configOf` gives a partition's topic config. */
  run(partitions: readonly LocalPartition[], configOf: (topic: string) => TopicConfig | undefined): void {
    if (this.running) return;
    this.running = this.pass(partitions, configOf).finally(() => {
      this.running = null;
    });
  }

  /** Resolves once no pass runs (the node waits for it before closing storage). */
  async idle(): Promise<void> {
    await this.running;
  }

  private async pass(
    partitions: readonly LocalPartition[],
    configOf: (topic: string) => TopicConfig | undefined,
  ): Promise<void> {
    const live = new Set<number>();
    for (const local of partitions) {
      const groupId = local.placement.groupId;
      live.add(groupId);
      const config = configOf(local.topic);
      if (!config || local.group.closed || (config.retentionMs < 0 && config.retentionBytes < 0)) continue;
      try {
        await this.enforce(local, config, Date.now());
      } catch (error) {
        // A group dropped or compacted under us, or a read that failed: the next pass retries.
        this.logger.warn({ group: groupId, err: (error as Error).message }, 'retention pass failed');
      }
    }
    for (const groupId of this.timestamps.keys()) if (!live.has(groupId)) this.timestamps.delete(groupId);
  }

  /** Cuts one replica's log per its topic's config; returns the new log start offset, if any. */
  async enforce(local: LocalPartition, config: TopicConfig, nowMs: number): Promise<number | null> {
    const store = local.group.store;
    const summaries = store.segmentSummaries?.() ?? [];
    if (summaries.length < 2) return null;
    const maxCutIndex = local.machine.appliedIndex - 1;
    const known = this.timestamps.get(local.placement.groupId) ?? new Map<string, number>();
    const kept = new Map<string, number>();
    const segments: RetainedSegment[] = [];
    let timeRuleOpen = config.retentionMs >= 0;
    for (let i = 0; i < summaries.length; i++) {
      const summary = summaries[i]!;
      const key = `${summary.baseIndex}:${summary.lastIndex}`;
      let newest: number | null = known.get(key) ?? null;
      const closed = i < summaries.length - 1 && summary.lastIndex <= maxCutIndex;
      // The time rule is a prefix: past the first segment it keeps, timestamps do not matter.
      if (timeRuleOpen && closed && newest === null) {
        newest = await newestTimestamp(store, summary.baseIndex, summary.lastIndex);
      }
      if (newest !== null) kept.set(key, newest);
      if (newest === null || nowMs - newest <= config.retentionMs) timeRuleOpen = false;
      segments.push({ lastIndex: summary.lastIndex, sizeBytes: summary.sizeBytes, maxTimestampMs: newest });
    }
    this.timestamps.set(local.placement.groupId, kept);
    const cut = retentionCutIndex({
      segments,
      retentionMs: config.retentionMs,
      retentionBytes: config.retentionBytes,
      nowMs,
      maxCutIndex,
    });
    if (cut === null || cut < store.firstIndex()) return null;
    const nextOffset = await nextOffsetAfter(store, cut);
    const snapshot: Snapshot = {
      metadata: { index: cut, term: store.term(cut), confState: local.group.raw.status().confState },
      data: encodePartitionSnapshot(await machineSnapshotAt(local, cut, nextOffset)),
    };
    // The log start moves first: the log drops the entries as soon as truncatePrefix has stored
    // the snapshot, and a fetch of `earliest` in between must not find them gone (a 416). If
    // the cut fails the records are still there, and the log start goes back.
    const logStartBefore = local.machine.logStartOffset;
    local.machine.setLogStart(nextOffset);
    try {
      await store.truncatePrefix(cut, snapshot);
    } catch (error) {
      local.machine.restoreLogStart(logStartBefore, nextOffset);
      throw error;
    }
    const cutLog = {
      group: local.placement.groupId,
      topic: local.topic,
      partition: local.partition,
      cutIndex: cut,
      logStartOffset: nextOffset,
    };
    // A busy memory topic is cut up to four times a second: at debug level, not to flood the log.
    if (store.mode === 'memory') this.logger.debug(cutLog, 'retention: dropped old in-memory chunks');
    else this.logger.info(cutLog, 'retention: dropped old segments');
    return nextOffset;
  }
}

/**
 * The partition machine's state at `index` (below the applied index): the next offset, and the
 * producer table replayed from the current snapshot up to `index`, so that a replica installing
 * this snapshot, or this one restarting, still deduplicates producers whose batches were cut.
 */
async function machineSnapshotAt(
  local: LocalPartition,
  index: number,
  nextOffset: number,
): Promise<PartitionSnapshot> {
  const store = local.group.store;
  const current = store.snapshot();
  const replica = new PartitionMachine({
    highWatermark: nextOffset,
    logStartOffset: nextOffset,
    appliedIndex: index,
    producerLimits: local.machine.producers.limits,
  });
  const data = withProducerCheckpoint(
    store,
    current.metadata.index,
    decodePartitionSnapshot(current.data),
    index,
  );
  await rebuildProducerTable(replica, store, { index: current.metadata.index, data });
  return replica.snapshot();
}

/** Offset of the first record after index `index`: what the snapshot at `index` carries. */
async function nextOffsetAfter(store: GroupStore, index: number): Promise<number> {
  const last = await store.offsetsAtOrBefore(index);
  if (last) return last.baseOffset + last.recordCount;
  return decodePartitionSnapshot(store.snapshot().data).nextOffset;
}

/** Newest record timestamp in [baseIndex, lastIndex] (-Infinity: no records there). */
async function newestTimestamp(store: GroupStore, baseIndex: number, lastIndex: number): Promise<number> {
  let newest = Number.NEGATIVE_INFINITY;
  let next = Math.max(baseIndex, store.firstIndex());
  while (next <= lastIndex) {
    const entries = await store.readEntries(next, lastIndex + 1, TIMESTAMP_SCAN_BYTES);
    if (entries.length === 0) break;
    for (const entry of entries) {
      if (!isRecordBatch(entry.data)) continue;
      forEachRecord(entry.data, 0, (record) => {
        if (record.timestampMs > newest) newest = record.timestampMs;
        return true;
      });
    }
    next = entries[entries.length - 1]!.index + 1;
  }
  return newest;
}
