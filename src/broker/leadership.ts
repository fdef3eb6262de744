// Which node leads each partition, as this node knows it. Authoritative for groups hosted here
// (from their cores); for the others, from the announcements that leaders send to every peer
// when they win and then every gossipIntervalMs. A higher term always wins.

import type { Logger } from 'pino';
import { Pool } from 'undici';

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

export const GOSSIP_PATH = '/v1/internal/partitions';
const GOSSIP_TIMEOUT_MS = 2000;

/**
 * Sends this node's leadership announcements to every peer over HTTP (undici). Announcements are
 * small and idempotent; a lost one is repaired by the next periodic round.
 */
export class LeadershipGossip {
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
