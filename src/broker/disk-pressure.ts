// What a node does when its disk runs short (see disk-guard.ts for the floor itself): refuse
// produce to disk topics, turn away replicated entries, hand the leadership of its disk
// partitions to peers, and keep a log whose write failed anyway (ENOSPC, EIO) from taking the
// process down: that replica stops acknowledging and gives up its leadership.

import type { Logger } from 'pino';
import type { Message } from '../raft/index.js';
import type { DiskGuard } from './disk-guard.js';
import { BrokerError } from './errors.js';
import type { RaftGroup } from './raft-group.js';

/** A group whose leadership was handed away is not handed away again sooner than this. */
const HAND_OFF_RETRY_MS = 10_000;

export interface DiskPressureHost {
  /** The partition groups open here whose log is on disk (not memory topics). */
  diskGroups(): Iterable<RaftGroup>;
  group(groupId: number): RaftGroup | undefined;
  /** Transfers the group's leadership to its most caught-up live peer; false if there is none. */
  handOff(group: RaftGroup): boolean;
  logger: Logger;
}

export class DiskPressure {
  /** Failed writes by group, for produce's answer (ENOSPC: DISK_FULL; else NO_LEADER). */
  private readonly failed = new Map<number, Error>();
  private readonly handedOffAtMs = new Map<number, number>();

  constructor(
    private readonly host: DiskPressureHost,
    readonly guard: DiskGuard | null,
  ) {
    guard?.onChange((underFloor) => {
      if (underFloor) this.handOffLeaderships();
    });
  }

  /** Before a produce of `payloadBytes` to a disk partition this node leads. */
  checkProduce(group: RaftGroup, payloadBytes: number, partition: string): void {
    const failure = this.failed.get(group.groupId);
    if (failure) {
      const code = isOutOfSpace(failure) ? 'DISK_FULL' : 'NO_LEADER';
      throw new BrokerError(
        code,
        `${partition}: this replica's log write failed (${failure.message}); its leadership moves ` +
          'to a peer; retry',
      );
    }
    try {
      this.guard?.admitProduce(payloadBytes, partition);
    } catch (error) {
      // A leader that cannot take writes gives its partition to a peer that may.
      this.maybeHandOff(group, Date.now());
      throw error;
    }
  }

  /** Whether a disk replica takes this message's entries from its leader now. */
  admitsEntries(message: Message): boolean {
    if (this.guard === null || message.entries.length === 0) return true;
    let bytes = 0;
    for (let i = 0; i < message.entries.length; i++) bytes += message.entries[i]!.data.length;
    return this.guard.admitReplicated(bytes);
  }

  /** A log write failed: the replica acknowledges nothing more; it must not lead either. */
  groupFailed(groupId: number, error: Error): void {
    if (this.failed.has(groupId)) return;
    this.failed.set(groupId, error);
    this.host.logger.error(
      { group: groupId, err: error.message },
      'log write failed: this replica stops acknowledging and hands its leadership away until the node restarts',
    );
    const group = this.host.group(groupId);
    if (group?.isLeader) this.handOff(group, Date.now());
  }

  get failedGroups(): number {
    return this.failed.size;
  }

  private handOffLeaderships(): void {
    const nowMs = Date.now();
    for (const group of this.host.diskGroups()) this.maybeHandOff(group, nowMs);
  }

  private maybeHandOff(group: RaftGroup, nowMs: number): void {
    if (!group.isLeader) return;
    if (nowMs - (this.handedOffAtMs.get(group.groupId) ?? -HAND_OFF_RETRY_MS) < HAND_OFF_RETRY_MS) return;
    this.handOff(group, nowMs);
  }

  private handOff(group: RaftGroup, nowMs: number): void {
    this.handedOffAtMs.set(group.groupId, nowMs);
    if (!this.host.handOff(group)) {
      this.host.logger.warn({ group: group.groupId }, 'no live peer to hand leadership to');
    }
  }
}

function isOutOfSpace(error: Error): boolean {
  const text = `${error.message} ${String((error as { cause?: unknown }).cause ?? '')}`;
  return /ENOSPC|EDQUOT/.test(text);
}
