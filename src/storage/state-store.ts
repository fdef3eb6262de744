// The lmdb environment of a node: per-log Raft state (hard state, membership, snapshot, log
// start, applied index), the group-id → log-id table, node metadata (boot id, clean shutdown) and
// the broker's key-value area. Writes are queued (lmdb batches a turn's puts into one transaction);
// `durable()` resolves once everything put so far is flushed, not merely committed: with
// overlappingSync a resolved put survives a process crash but not a power loss.

import path from 'node:path';
import { type Database, open, type RootDatabase } from 'lmdb';
import type { ConfState, HardState, SnapshotMetadata } from '../raft/types.js';

/** Where a log starts after prefix truncation: entries below firstIndex are gone. */
export interface LogStart {
  firstIndex: number;
  /** Term of entry firstIndex - 1 (the snapshot's or the compaction point's). */
  prevTerm: number;
  /**
   * Bumped by each snapshot install, which replaces the whole log: segment files of an older
   * generation are leftovers to delete, never entries to recover.
   */
  generation: number;
}

export interface StoredSnapshot {
  metadata: SnapshotMetadata;
  data: Uint8Array;
}

/**
 * The recovery point of one segment file: what a scan of it would find, stored once the file is
 * synced and no longer appended to (it rolled, or the log closed cleanly). A restart takes it
 * instead of reading the file when the file still has `sizeBytes`.
 */
export interface SegmentIndexRecord {
  generation: number;
  baseIndex: number;
  sequence: number;
  sizeBytes: number;
  lastIndex: number;
  firstOffset: number;
  firstOffsetPosition: number;
  /** Float64 [raftIndex, position, recordOffset] triples, little-endian. */
  points: Uint8Array;
  /**
   * Float64 largest record timestamp per point (the time index), little-endian; absent in
   * indexes stored before the time index (then unknown).
   */
  pointMaxTimestamps?: Uint8Array;
  /** [startIndex, term] per run, flattened. */
  termRuns: number[];
}

export interface NodeRecord {
  bootId: string;
  cleanShutdown: boolean;
}

type LogStateKind = 'hard' | 'conf' | 'snap' | 'start' | 'applied' | 'lost';
type LogStateKey = [number, LogStateKind];

export class StateStore {
  private readonly root: RootDatabase;
  private readonly logIds: Database<number, string>;
  private readonly logState: Database<unknown, LogStateKey>;
  readonly kv: Database<Uint8Array, string>;
  private readonly meta: Database<unknown, string>;
  private readonly segmentIndexes: Database<SegmentIndexRecord, [number, number]>;
  /** The next log id to hand out, once read; see logIdFor. */
  private nextLogId: number | undefined;
  /** Ids handed out whose puts may not be visible to reads yet. */
  private readonly allocatedLogIds = new Map<string, number>();

  constructor(dataDir: string) {
    this.root = open({ path: path.join(dataDir, 'state.mdb'), overlappingSync: true });
    this.logIds = this.root.openDB<number, string>({ name: 'log-ids' });
    this.logState = this.root.openDB<unknown, LogStateKey>({ name: 'log-state' });
    this.kv = this.root.openDB<Uint8Array, string>({ name: 'kv', encoding: 'binary' });
    this.meta = this.root.openDB<unknown, string>({ name: 'meta' });
    this.segmentIndexes = this.root.openDB<SegmentIndexRecord, [number, number]>({ name: 'segment-index' });
  }

  /** Resolves when every write queued so far is flushed to disk. */
  durable(): Promise<unknown> {
    return this.root.flushed;
  }

  /**
   * The log id of a group, allocating one (durably, before returning) on first use. An lmdb put
   * is visible to reads only once committed, so ids are counted in memory: logs opened at the
   * same time must not read the same nextLogId and share an id (and a directory).
   */
  async logIdFor(groupId: string): Promise<number> {
    const existing = this.allocatedLogIds.get(groupId) ?? this.logIds.get(groupId);
    if (existing !== undefined) return existing;
    this.nextLogId ??= ((this.meta.get('nextLogId') as number | undefined) ?? 1) as number;
    const next = this.nextLogId++;
    this.allocatedLogIds.set(groupId, next);
    this.meta.put('nextLogId', this.nextLogId);
    this.logIds.put(groupId, next);
    await this.durable();
    this.allocatedLogIds.delete(groupId);
    return next;
  }

  findLogId(groupId: string): number | undefined {
    return this.logIds.get(groupId);
  }

  hardState(logId: number): HardState {
    return (this.logState.get([logId, 'hard']) as HardState | undefined) ?? { term: 0, vote: 0, commit: 0 };
  }

  putHardState(logId: number, hardState: HardState): void {
    this.logState.put([logId, 'hard'], {
      term: hardState.term,
      vote: hardState.vote,
      commit: hardState.commit,
    });
  }

  confState(logId: number): ConfState {
    return (this.logState.get([logId, 'conf']) as ConfState | undefined) ?? { voters: [], learners: [] };
  }

  putConfState(logId: number, confState: ConfState): void {
    this.logState.put([logId, 'conf'], { voters: [...confState.voters], learners: [...confState.learners] });
  }

  snapshot(logId: number): StoredSnapshot | undefined {
    const stored = this.logState.get([logId, 'snap']) as StoredSnapshot | undefined;
    if (stored === undefined) return undefined;
    return { metadata: stored.metadata, data: new Uint8Array(stored.data) };
  }

  putSnapshot(logId: number, snapshot: StoredSnapshot): void {
    this.logState.put([logId, 'snap'], { metadata: snapshot.metadata, data: snapshot.data });
  }

  logStart(logId: number): LogStart | undefined {
    return this.logState.get([logId, 'start']) as LogStart | undefined;
  }

  putLogStart(logId: number, start: LogStart): void {
    this.logState.put([logId, 'start'], {
      firstIndex: start.firstIndex,
      prevTerm: start.prevTerm,
      generation: start.generation,
    });
  }

  applied(logId: number): number {
    return (this.logState.get([logId, 'applied']) as number | undefined) ?? 0;
  }

  putApplied(logId: number, index: number): void {
    this.logState.put([logId, 'applied'], index);
  }

  /** Sticky until the broker says the replica caught up: it may have lost acknowledged writes. */
  lostTail(logId: number): boolean {
    return this.logState.get([logId, 'lost']) === true;
  }

  putLostTail(logId: number, lost: boolean): void {
    if (lost) this.logState.put([logId, 'lost'], true);
    else this.logState.remove([logId, 'lost']);
  }

  /** The stored segment indexes of a log, by sequence. */
  segmentIndexesOf(logId: number): Map<number, SegmentIndexRecord> {
    const found = new Map<number, SegmentIndexRecord>();
    for (const { key, value } of this.segmentIndexes.getRange({ start: [logId, 0], end: [logId + 1, 0] })) {
      found.set(key[1], { ...value, points: new Uint8Array(value.points) });
    }
    return found;
  }

  putSegmentIndex(logId: number, record: SegmentIndexRecord): void {
    this.segmentIndexes.put([logId, record.sequence], record);
  }

  removeSegmentIndex(logId: number, sequence: number): void {
    this.segmentIndexes.remove([logId, sequence]);
  }

  removeSegmentIndexes(logId: number): void {
    const keys = [...this.segmentIndexes.getKeys({ start: [logId, 0], end: [logId + 1, 0] })];
    for (const key of keys) this.segmentIndexes.remove(key);
  }

  /** Forgets a log: its id and every state record (its files are removed by the caller). */
  removeLog(groupId: string, logId: number): void {
    this.logIds.remove(groupId);
    for (const kind of ['hard', 'conf', 'snap', 'start', 'applied', 'lost'] as const)
      this.logState.remove([logId, kind]);
    this.removeSegmentIndexes(logId);
  }

  nodeRecord(): NodeRecord | undefined {
    return this.meta.get('node') as NodeRecord | undefined;
  }

  putNodeRecord(record: NodeRecord): void {
    this.meta.put('node', { bootId: record.bootId, cleanShutdown: record.cleanShutdown });
  }

  async close(): Promise<void> {
    await this.durable();
    await this.root.close();
  }
}
