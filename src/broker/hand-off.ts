// Moving leadership away from this node: to a chosen replica (the API's leadership route), or to
// the best live peer of each group it leads (a drain, a stop, a disk at its floor). The core
// sends the target what it lacks, then tells it to campaign; these wait for the outcome on
// leadership events, with a deadline.

import { StateRole } from '../raft/index.js';
import type { Driver } from './driver.js';
import { BrokerError } from './errors.js';
import type { LocalPartition } from './partitions.js';
import type { RaftGroup } from './raft-group.js';
import { type Signal, waitUntil } from './wait.js';

export interface HandOffOptions {
  nodeId: number;
  /** Whether the link to a peer is up. */
  isPeerAlive: (nodeId: number) => boolean;
  driver: Driver;
  /** Fired on every leadership change of a group here, and when a group closes. */
  changed: Signal;
}

/**
 * The core gives up a transfer that does not finish within an election timeout; until the
 * deadline the leader asks again this often (a target that was catching up may be ready now).
 */
const TRANSFER_RETRY_MS = 500;

export class LeadershipHandOff {
  constructor(private readonly options: HandOffOptions) {}

  /** Asks the group's core, which leads here, to hand leadership to replica `to`. */
  transfer(group: RaftGroup, to: number): void {
    group.raw.transferLeader(to);
    this.options.driver.markDirty(group);
  }

  /** Transfers one group's leadership to its best peer (see target); false if there is none. */
  handOff(group: RaftGroup): boolean {
    const target = this.target(group);
    if (target === null) return false;
    this.transfer(group, target);
    return true;
  }

  /**
   * Hands every one of `groups` this node leads to its best peer and waits until none is led
   * here any more (or closed), or until `deadlineMs` from now.
   */
  async handOffAll(groups: readonly RaftGroup[], deadlineMs: number): Promise<void> {
    const led = groups.filter((g) => g.isLeader);
    for (const group of led) this.handOff(group);
    await waitUntil({
      done: () => led.every((g) => g.closed || g.raw.role !== StateRole.Leader),
      subscribe: (listener) => this.options.changed.subscribe(listener),
      deadlineMs: Date.now() + deadlineMs,
    });
  }

  /**
   * On the partition's leader: moves its leadership to replica `target`, and resolves once this
   * node sees `target` lead. Throws TIMEOUT at the deadline, NO_LEADER if the partition closes.
   */
  async move(local: LocalPartition, target: number, timeoutMs: number): Promise<void> {
    const group = local.group;
    // Only the leader can hand leadership on; after stepping down it waits to hear the target.
    const ask = () => {
      if (group.isLeader) this.transfer(group, target);
    };
    ask();
    const retry = setInterval(ask, TRANSFER_RETRY_MS);
    try {
      await waitUntil({
        done: () => group.closed || group.leaderId === target,
        subscribe: (listener) => this.options.changed.subscribe(listener),
        deadlineMs: Date.now() + timeoutMs,
      });
    } finally {
      clearInterval(retry);
    }
    const name = `${local.topic}/${local.partition}`;
    if (group.closed) throw new BrokerError('NO_LEADER', `${name} closed during the transfer; retry`);
    if (group.leaderId !== target) {
      throw new BrokerError(
        'TIMEOUT',
        `node ${target} did not take leadership of ${name} within ${timeoutMs} ms (leader now: ${group.leaderId || 'none'})`,
      );
    }
  }

  /** The live voter with the highest match (under load none may be exactly caught up). */
  private target(group: RaftGroup): number | null {
    const status = group.raw.status();
    if (!status.progress) return null;
    let best: number | null = null;
    let bestMatch = -1;
    for (const [id, pr] of status.progress) {
      if (id === this.options.nodeId || pr.isLearner || pr.recovering) continue;
      if (!this.options.isPeerAlive(id) || pr.match <= bestMatch) continue;
      best = id;
      bestMatch = pr.match;
    }
    return best;
  }
}
