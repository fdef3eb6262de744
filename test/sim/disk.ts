// A node's simulated disk: the durable image (hard state, snapshot, log) that survives a crash, and
// a FIFO of writes in flight, each with a latency. A crash loses every write still in flight and
// may tear the one in progress (a prefix of its entries lands, its hard state does not).

import {
  type ConfState,
  type Entry,
  type HardState,
  MemoryStorage,
  type Snapshot,
} from '../../src/raft/index.js';
import type { SimRandom } from './random.js';

export interface DiskModel {
  minLatencyMs: number;
  maxLatencyMs: number;
  /** Chance that a write is slow (a stall of the device). */
  slowRate: number;
  slowMinMs: number;
  slowMaxMs: number;
  /** Chance that a crash tears the write in progress instead of losing it whole. */
  tearRate: number;
}

export const DEFAULT_DISK: Readonly<DiskModel> = Object.freeze({
  minLatencyMs: 0.1,
  maxLatencyMs: 1,
  slowRate: 0,
  slowMinMs: 10,
  slowMaxMs: 100,
  tearRate: 0.5,
});

/**
 * 'disk': everything a Ready says is written and survives a crash once complete.
 * 'memory': only term and vote survive; the log is lost, and the node restarts recovering.
 */
export type Persistence = 'disk' | 'memory';

/** One write: what a Ready asked to persist, or a snapshot the application took plus a prefix cut. */
export interface DiskWrite {
  persistId: number;
  snapshot: Snapshot | null;
  entries: Entry[];
  hardState: HardState | null;
  /** `snapshot` is the application's own: record it and cut the log up to compactIndex. */
  appSnapshot: boolean;
  compactIndex: number;
}

export interface CrashOutcome {
  lostWrites: number;
  /** Entries of the torn write that landed anyway (-1 when nothing was torn). */
  tornEntries: number;
}

export class SimDisk {
  hardState: HardState = { term: 0, vote: 0, commit: 0 };
  /** The durable log and snapshot (always empty in memory mode). */
  log = new MemoryStorage();
  private pending: DiskWrite[] = [];
  private lastCompletionMs = 0;

  constructor(
    readonly persistence: Persistence,
    /** Latency and tearing; a harness may swap it to make one disk slow. */
    public model: DiskModel,
  ) {}

  get pendingCount(): number {
    return this.pending.length;
  }

  /** Queues a write; returns when it completes (never before a write queued earlier). */
  enqueue(write: DiskWrite, nowMs: number, rng: SimRandom): number {
    const m = this.model;
    const slow = m.slowRate > 0 && rng.chance(m.slowRate);
    const latencyMs = slow
      ? rng.floatIn(m.slowMinMs, m.slowMaxMs)
      : rng.floatIn(m.minLatencyMs, m.maxLatencyMs);
    const doneMs = Math.max(nowMs + latencyMs, this.lastCompletionMs);
    this.lastCompletionMs = doneMs;
    this.pending.push(write);
    return doneMs;
  }

  /** The oldest write in flight is now durable. */
  completeHead(): DiskWrite {
    const write = this.pending.shift();
    if (!write) throw new Error('disk: completion with no write in flight');
    this.applyDurable(write, write.entries.length, true);
    return write;
  }

  /** Power loss: writes in flight are gone; the one in progress may land in part. */
  crash(nowMs: number, rng: SimRandom): CrashOutcome {
    let tornEntries = -1;
    const head = this.pending[0];
    if (head && !head.appSnapshot && this.model.tearRate > 0 && rng.chance(this.model.tearRate)) {
      tornEntries = head.entries.length > 0 ? rng.int(head.entries.length) : 0;
      this.applyDurable(head, tornEntries, false);
    }
    const lostWrites = this.pending.length;
    this.pending = [];
    this.lastCompletionMs = nowMs;
    return { lostWrites, tornEntries };
  }

  private applyDurable(write: DiskWrite, entryCount: number, whole: boolean): void {
    if (this.persistence === 'memory') {
      if (whole && write.hardState) this.hardState = { ...write.hardState, commit: 0 };
      return;
    }
    if (write.appSnapshot) {
      this.compact(write.snapshot!, write.compactIndex);
      return;
    }
    if (write.snapshot && write.snapshot.metadata.index > this.log.snapshot().metadata.index) {
      this.log.applySnapshot(write.snapshot);
    }
    if (entryCount > 0)
      this.log.append(
        entryCount === write.entries.length ? write.entries : write.entries.slice(0, entryCount),
      );
    if (whole && write.hardState) this.hardState = write.hardState;
  }

  private compact(snapshot: Snapshot, compactIndex: number): void {
    const { index, term, confState } = snapshot.metadata;
    if (index <= this.log.snapshot().metadata.index) return;
    const stored = this.log.term(index);
    if (stored !== term) {
      throw new Error(`disk: snapshot at ${index} has term ${term}, the durable log has ${stored}`);
    }
    this.log.createSnapshot(index, confState, snapshot.data);
    this.log.compact(compactIndex);
  }

  /** A fresh in-memory copy of the durable log, for a restarted node. */
  loadLog(): MemoryStorage {
    const copy = new MemoryStorage();
    const snapshot = this.log.snapshot();
    if (snapshot.metadata.index > 0) copy.applySnapshot(snapshot);
    const first = this.log.firstIndex();
    const last = this.log.lastIndex();
    if (last >= first) copy.append(this.log.entries(first, last + 1, Number.POSITIVE_INFINITY));
    return copy;
  }

  /** Bytes of durable Raft state besides the snapshot: the log and the hard state. */
  raftStateBytes(): number {
    let bytes = 24;
    const first = this.log.firstIndex();
    const last = this.log.lastIndex();
    if (last < first) return bytes;
    for (const entry of this.log.entries(first, last + 1, Number.POSITIVE_INFINITY))
      bytes += entry.data.length + 24;
    return bytes;
  }

  snapshotBytes(): number {
    return this.log.snapshot().data.length;
  }
}

export function confOf(snapshot: Snapshot, bootstrap: ConfState): ConfState {
  return snapshot.metadata.index > 0 ? snapshot.metadata.confState : bootstrap;
}
