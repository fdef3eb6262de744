// What a node does when its disk runs short (see disk-guard.ts for the floor itself): refuse
// produce to disk topics, turn away replicated entries, hand the leadership of its disk
// partitions to peers, and keep a log whose write failed anyway (ENOSPC, EIO) from taking the
// process down: that replica stops acknowledging and gives up its leadership.

import type { Logger } from 'pino';
import type { AppMessage } from '../raft/index.js';
import type { DiskGuard } from './disk-guard.js';
import { BrokerError } from './errors.js';
import type { PersistenceMode } from './metadata-state.js';
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
      const reason = failureReason(failure);
      throw new BrokerError(
        reason === 'ENOSPC' || reason === 'EDQUOT' ? 'DISK_FULL' : 'NO_LEADER',
        `${partition}: this replica could not write its log (${reason}); its leadership moves to a ` +
          'peer; retry',
      );
    }
    try {
      this.guard?.admitProduce(diskBytesOf(payloadBytes, group.store.mode), partition);
    } catch (error) {
      // A leader that cannot take writes gives its partition to a peer that may.
      this.maybeHandOff(group, Date.now());
      throw error;
    }
  }

  /** Whether a disk replica (of a topic in `mode`) takes this message's entries from its leader now. */
  admitsEntries(message: AppMessage, mode: PersistenceMode): boolean {
    if (this.guard === null || message.entries.length === 0) return true;
    let bytes = 0;
    for (let i = 0; i < message.entries.length; i++) bytes += message.entries[i]!.data.length;
    return this.guard.admitReplicated(diskBytesOf(bytes, mode));
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

/** What a payload takes on disk: a `sync` write goes to the shared WAL and then to its segment. */
function diskBytesOf(payloadBytes: number, mode: PersistenceMode): number {
  return mode === 'sync' ? 2 * payloadBytes : payloadBytes;
}

/**
 * The errno code of a failed write (ENOSPC, EDQUOT, EIO...), found on the error or its causes,
 * for clients: never the message, which holds server paths and a worker's stack.
 */
function failureReason(error: Error): string {
  let at: unknown = error;
  for (let depth = 0; depth < 4 && at instanceof Error; depth++) {
    const code = (at as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
    const errno = /\b(E[A-Z]{2,})\b/.exec(at.message);
    if (errno) return errno[1]!;
    at = (at as { cause?: unknown }).cause;
  }
  return 'an I/O error';
}
