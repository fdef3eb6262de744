// Which node leads each partition, as this node knows it. Authoritative for groups hosted here
// (from their cores); for the others, from the announcements that leaders send to every peer
// when they win and then every gossipIntervalMs. A higher term always wins.

import type { Logger } from 'pino';
import { Pool } from 'undici';
import { METADATA_GROUP_ID } from './metadata-state.js';
import type { LocalPartition } from './partitions.js';
import type { RaftGroup } from './raft-group.js';
import type { Signal } from './wait.js';

export interface PartitionStatus {
  groupId: number;
  leader: number;
  term: number;
  highWatermark: number;
  logStartOffset: number;
}

/** Wire form, compact: [groupId, leader, term, highWatermark, logStartOffset]. */
export type StatusTuple = [number, number, number, number, number];

export function toTuple(s: PartitionStatus): StatusTuple {
  return [s.groupId, s.leader, s.term, s.highWatermark, s.logStartOffset];
}

export function fromTuple(t: StatusTuple): PartitionStatus {
  return { groupId: t[0], leader: t[1], term: t[2], highWatermark: t[3], logStartOffset: t[4] };
}

export class LeadershipTable {
  private readonly statuses = new Map<number, PartitionStatus>();

  /** Records a status unless a newer term is already known. Returns true if it was taken. */
  update(status: PartitionStatus): boolean {
    const known = this.statuses.get(status.groupId);
    if (known && known.term > status.term) return false;
    if (known && known.term === status.term && known.leader !== status.leader && status.leader === 0)
      return false;
    this.statuses.set(status.groupId, status);
    return true;
  }

  get(groupId: number): PartitionStatus | undefined {
    return this.statuses.get(groupId);
  }

  forget(groupId: number): void {
    this.statuses.delete(groupId);
  }
}

/** How leadership announcements reach peers. */
export interface Announcer {
  announce(statuses: PartitionStatus[]): void;
  close(): Promise<void>;
}

/**
 * This node's view of every partition's leader: its own replicas' cores, then what peers
 * announced. Announces the partitions it leads: at once when it wins, and periodically.
 */
export class LeadershipDirectory {
  private readonly table = new LeadershipTable();
  private readonly changedGroups = new Set<number>();
  private announceScheduled = false;

  constructor(
    private readonly nodeId: number,
    private readonly partitions: ReadonlyMap<number, LocalPartition>,
    private readonly gossip: Announcer,
    /** Fired whenever the view may have changed (waiters check what they wait for). */
    private readonly changed: Signal,
  ) {}

  /** A group here changed role or learned of a new leader. */
  groupChanged(group: RaftGroup): void {
    if (group.groupId !== METADATA_GROUP_ID) {
      const status = this.localStatus(group.groupId);
      if (status) this.table.update(status);
      if (group.isLeader) {
        this.changedGroups.add(group.groupId);
        this.scheduleAnnounce();
      }
    }
    this.changed.emit();
  }

  /** The status of a partition as known here: local core first, then announcements. */
  status(groupId: number): PartitionStatus | null {
    return this.localStatus(groupId) ?? this.table.get(groupId) ?? null;
  }

  /** Announcements from a peer. */
  receive(statuses: readonly PartitionStatus[]): void {
    for (const status of statuses) {
      if (this.partitions.has(status.groupId)) continue; // our own core knows better
      this.table.update(status);
    }
    this.changed.emit();
  }

  /** Announces every partition led here (the periodic round that repairs lost announcements). */
  announceAll(): void {
    const statuses: PartitionStatus[] = [];
    for (const local of this.partitions.values()) {
      if (!local.group.isLeader) continue;
      const status = this.localStatus(local.placement.groupId)!;
      this.table.update(status);
      statuses.push(status);
    }
    this.gossip.announce(statuses);
  }

  forget(groupId: number): void {
    this.table.forget(groupId);
    this.changed.emit();
  }

  close(): Promise<void> {
    return this.gossip.close();
  }

  private localStatus(groupId: number): PartitionStatus | null {
    const local = this.partitions.get(groupId);
    if (!local) return null;
    return {
      groupId,
      leader: local.group.leaderId,
      term: local.group.term,
      highWatermark: local.machine.highWatermark,
      logStartOffset: local.machine.logStartOffset,
    };
  }

  private scheduleAnnounce(): void {
    if (this.announceScheduled) return;
    this.announceScheduled = true;
    setImmediate(() => {
      this.announceScheduled = false;
      const statuses: PartitionStatus[] = [];
      for (const groupId of this.changedGroups) {
        const status = this.localStatus(groupId);
        if (status && status.leader === this.nodeId) statuses.push(status);
      }
      this.changedGroups.clear();
      this.gossip.announce(statuses);
    });
  }
}

export const GOSSIP_PATH = '/v1/internal/partitions';
const GOSSIP_TIMEOUT_MS = 2000;

/**
 * Sends this node's leadership announcements to every peer over HTTP (undici). Announcements are
 * small and idempotent; a lost one is repaired by the next periodic round.
 */
export class LeadershipGossip implements Announcer {
  private readonly pools = new Map<number, Pool>();

  constructor(
    private readonly nodeId: number,
    peers: Map<number, string>,
    private readonly logger: Logger,
  ) {
    for (const [id, url] of peers) {
      if (id !== nodeId) this.pools.set(id, new Pool(url, { connections: 2, pipelining: 1 }));
    }
  }

  announce(statuses: PartitionStatus[]): void {
    if (statuses.length === 0) return;
    const body = JSON.stringify({ from: this.nodeId, statuses: statuses.map(toTuple) });
    for (const [peer, pool] of this.pools) {
      pool
        .request({
          method: 'POST',
          path: GOSSIP_PATH,
          headers: { 'content-type': 'application/json' },
          body,
          headersTimeout: GOSSIP_TIMEOUT_MS,
          bodyTimeout: GOSSIP_TIMEOUT_MS,
        })
        .then((response) => response.body.dump())
        .catch((error: Error) =>
          this.logger.debug({ peer, err: error.message }, 'leadership announcement failed'),
        );
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((pool) => pool.close()));
  }
}
