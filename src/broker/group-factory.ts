// How this node builds and feeds its Raft groups, metadata and partitions alike: open a group's
// log (setting a corrupt one aside), make its core, wrap both in a RaftGroup wired to the driver,
// the disk floor and the leadership view, and propose entries on it.

import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import { isRaftError, type RaftConfig, RawNode, SeededRandom } from '../raft/index.js';
import { isStorageError, type StorageError } from '../storage/index.js';
import type { DiskPressure } from './disk-pressure.js';
import type { Driver } from './driver.js';
import { BrokerError } from './errors.js';
import type { GroupStore, NodeStore } from './group-store.js';
import { METADATA_GROUP_ID, type PersistenceMode } from './metadata-state.js';
import { type GroupMachine, type GroupObserver, RaftGroup } from './raft-group.js';

export interface GroupFactoryOptions {
  nodeId: number;
  store: NodeStore;
  driver: Driver;
  logger: Logger;
  raftConfig: Partial<RaftConfig>;
  disk: DiskPressure;
  /** A group's role or known leader changed. */
  onLeadership: (group: RaftGroup) => void;
  /** The metrics observer of the moment (null: none yet). */
  observer: () => GroupObserver | null;
}

export interface CoreOptions {
  /** The voters of a group whose log holds no configuration yet. */
  voters: readonly number[];
  /** The index the state machine has applied up to. */
  applied: number;
}

export class GroupFactory {
  constructor(private readonly options: GroupFactoryOptions) {}

  /**
   * Opens a group's log. A log that refuses to open as corrupt (a bad frame before its tail) does
   * not take the node down: its files are set aside and the replica restarts empty at its
   * snapshot, flagged as having lost entries, so its core starts recovering (no vote, no ack
   * counted) and it catches up from the leader. The corrupt data is never read again.
   */
  async openStore(groupId: number, mode: PersistenceMode): Promise<GroupStore> {
    const nodeStore = this.options.store;
    try {
      return await nodeStore.openGroup(groupId, mode);
    } catch (error) {
      if (!isStorageError(error, 'CorruptLog') || !nodeStore.discardGroup) throw error;
      await this.setAside(groupId, error);
      return nodeStore.openGroup(groupId, mode);
    }
  }

  /** Whether a corrupt log of this kind can be set aside and rebuilt (a disk store can). */
  get canRebuild(): boolean {
    return this.options.store.discardGroup !== undefined;
  }

  /**
   * Moves a corrupt log's files aside (never read again) so that the group can open empty and
   * catch up from its peers. Corruption is found at open, by a read, or by storage's scrub.
   */
  async setAside(groupId: number, error: StorageError): Promise<void> {
    const movedTo = (await this.options.store.discardGroup?.(groupId)) ?? null;
    this.options.logger.error(
      { group: groupId, file: error.file, offsetBytes: error.offsetBytes, movedTo, err: error.message },
      'corrupt log: set aside; rebuilding this replica from its peers',
    );
  }

  /** The core of a group over its opened store. */
  core(store: GroupStore, { voters, applied }: CoreOptions): RawNode {
    const initial = store.initialState();
    return new RawNode({
      id: this.options.nodeId,
      storage: store,
      random: new SeededRandom(randomInt(2 ** 31)),
      initialState: {
        hardState: initial.hardState,
        confState:
          initial.confState.voters.length > 0 ? initial.confState : { voters: [...voters], learners: [] },
      },
      applied,
      config: this.options.raftConfig,
      // Rebuilt after corruption (openStore): no vote, no ack counted, until caught up.
      recovering: store.mayHaveLostEntries,
      nowTicks: this.options.driver.nowTicks(),
    });
  }

  group<Result>(
    groupId: number,
    raw: RawNode,
    store: GroupStore,
    machine: GroupMachine<Result>,
  ): RaftGroup<Result> {
    const { driver, disk } = this.options;
    const group = new RaftGroup<Result>({
      groupId,
      raw,
      store,
      machine,
      logger: this.options.logger,
      onLeadership: (g) => this.options.onLeadership(g),
      nowTicks: () => driver.nowTicks(),
      // The metadata log is small and must keep working under the disk floor; memory logs are
      // not on disk.
      admitsEntries:
        groupId === METADATA_GROUP_ID || store.mode === 'memory'
          ? undefined
          : (message) => disk.admitsEntries(message, store.mode),
    });
    group.observer = this.options.observer();
    return group;
  }

  /** Hands the group to the driver: from now on it ticks, steps messages and persists. */
  drive(group: RaftGroup): void {
    const driver = this.options.driver;
    group.store.onEntriesAvailable(() => {
      group.raw.notifyEntriesAvailable();
      driver.markDirty(group);
    });
    driver.add(group);
  }
}

/** Proposes one entry on a group this node leads; maps the core's refusals to coded errors. */
export function proposeEntry(driver: Driver, group: RaftGroup, data: Uint8Array): number {
  if (!group.isLeader) throw new BrokerError('NO_LEADER', `this node does not lead group ${group.groupId}`);
  try {
    const index = group.raw.propose(data);
    driver.markDirty(group);
    return index;
  } catch (error) {
    if (isRaftError(error, 'NotLeader') || isRaftError(error, 'ProposalDropped')) {
      throw new BrokerError('NO_LEADER', error.message);
    }
    if (isRaftError(error, 'UncommittedBytesFull')) throw new BrokerError('THROTTLED', error.message);
    throw error;
  }
}
