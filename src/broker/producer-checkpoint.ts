// Producer-table checkpoints. A partition's idempotent-producer table is a function of its log:
// the last snapshot's table, then every entry after it replayed. Without a checkpoint a restart
// replays the whole log since the last snapshot (seconds per GB). A checkpoint is the table as of
// an applied index, kept beside the log, so a restart replays only the entries after it.
//
// A checkpoint covers applied (committed) entries only, which are the same on every replica, so
// it stays valid for as long as its index is still in this log: at or above the log's first index
// (with the same term there) and at or below the index the restart applies up to. Otherwise it is
// ignored and the log is replayed as before: a missing or stale checkpoint costs time, never
// correctness. Written on a clean stop (so that a restart replays nothing) and every
// `bytesBetween` of applied log (bounding the replay after a crash).

import type { Logger } from 'pino';
import type { GroupStore } from './group-store.js';
import type { PartitionSnapshot } from './partition-machine.js';
import type { LocalPartition } from './partitions.js';
import type { ProducerTableSnapshot } from './producer-state.js';

export interface ProducerCheckpoint {
  /** The applied index the table is as of. */
  index: number;
  /** The term of the entry at `index`: the same entry, not merely the same position. */
  term: number;
  table: ProducerTableSnapshot;
}

/** Applied log bytes between two periodic checkpoints of a partition. */
export const CHECKPOINT_BYTES_DEFAULT = 32 * 1024 * 1024;

export function encodeProducerCheckpoint(checkpoint: ProducerCheckpoint): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(checkpoint));
}

/** The checkpoint in `data`, or null when it does not parse as one (it is then ignored). */
export function decodeProducerCheckpoint(data: Uint8Array): ProducerCheckpoint | null {
  try {
    const parsed = JSON.parse(new TextDecoder().decode(data)) as ProducerCheckpoint;
    const ok =
      Number.isSafeInteger(parsed.index) &&
      parsed.index > 0 &&
      Number.isSafeInteger(parsed.term) &&
      Array.isArray(parsed.table?.producers);
    return ok ? parsed : null;
  } catch {
    return null;
  }
}

/**
 * The snapshot to rebuild a restarted partition's producer table from: the stored snapshot, or,
 * when this log holds a usable checkpoint newer than the snapshot's table, the same snapshot with
 * the newest such checkpoint's table in it (so the replay starts after the checkpoint).
 */
export function withProducerCheckpoint(
  store: Pick<GroupStore, 'firstIndex' | 'term' | 'producerCheckpoints'>,
  snapshotIndex: number,
  snapshot: PartitionSnapshot,
  appliedIndex: number,
): PartitionSnapshot {
  const tableAt = snapshot.producersAtIndex ?? snapshotIndex;
  const usable = (checkpoint: ProducerCheckpoint) =>
    checkpoint.index > tableAt &&
    checkpoint.index <= appliedIndex &&
    checkpoint.index >= store.firstIndex() &&
    store.term(checkpoint.index) === checkpoint.term;
  const checkpoint = (store.producerCheckpoints?.() ?? []).find(usable);
  if (!checkpoint) return snapshot;
  return { ...snapshot, producers: checkpoint.table, producersAtIndex: checkpoint.index };
}

/** Takes checkpoints of the disk-mode partitions of a node: periodically and at a clean stop. */
export class ProducerCheckpoints {
  /** Applied bytes of each partition at its last checkpoint, by group id. */
  private readonly lastBytes = new Map<number, number>();
  private running: Promise<void> | null = null;

  constructor(
    private readonly logger: Logger,
    private readonly bytesBetween = CHECKPOINT_BYTES_DEFAULT,
  ) {}

  /** Checkpoints every partition that applied `bytesBetween` since its last one; one pass at a time. */
  runDue(partitions: Iterable<LocalPartition>): void {
    if (this.running) return;
    const due = [...partitions].filter(
      (local) =>
        local.group.store.saveProducerCheckpoint !== undefined &&
        local.machine.appliedBytes - (this.lastBytes.get(local.placement.groupId) ?? 0) >= this.bytesBetween,
    );
    if (due.length === 0) return;
    this.running = this.saveEach(due).finally(() => {
      this.running = null;
    });
  }

  /** Checkpoints every partition (the node stops; nothing applies any more). */
  async saveAll(partitions: Iterable<LocalPartition>): Promise<void> {
    await this.running;
    await this.saveEach([...partitions]);
  }

  private async saveEach(partitions: LocalPartition[]): Promise<void> {
    for (const local of partitions) {
      try {
        await this.save(local);
      } catch (error) {
        // Costs the next start a longer replay, nothing else.
        this.logger.warn(
          { group: local.placement.groupId, err: (error as Error).message },
          'could not store a producer-table checkpoint',
        );
      }
    }
  }

  private async save(local: LocalPartition): Promise<void> {
    const store = local.group.store;
    const { machine } = local;
    if (!store.saveProducerCheckpoint) return;
    const index = machine.appliedIndex;
    // At the snapshot index the snapshot itself holds the table.
    if (index < store.firstIndex() || index > store.lastIndex()) return;
    const bytes = machine.appliedBytes;
    const checkpoint = { index, term: store.term(index), table: machine.producers.toSnapshot() };
    await store.saveProducerCheckpoint(checkpoint);
    this.lastBytes.set(local.placement.groupId, bytes);
  }
}
