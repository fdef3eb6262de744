// The metadata Raft group on this node: opening it, proposing commands on it (typed results),
// read-your-writes against its leader, and cutting its log behind a snapshot now and then.

import type { Logger } from 'pino';
import type { Snapshot } from '../raft/index.js';
import type { Driver } from './driver.js';
import { BrokerError } from './errors.js';
import { type GroupFactory, proposeEntry } from './group-factory.js';
import { MetadataGroupMachine } from './group-machines.js';
import {
  encodeCommand,
  METADATA_GROUP_ID,
  type MetadataCommand,
  type MetadataResult,
  type MetadataState,
} from './metadata-state.js';
import type { RaftGroup } from './raft-group.js';
import { type Signal, waitUntil } from './wait.js';

export interface MetadataGroupOptions {
  state: MetadataState;
  factory: GroupFactory;
  driver: Driver;
  /** Every voting node of the cluster. */
  voters: readonly number[];
  logger: Logger;
  /** The log is snapshotted and cut after this many applied entries. */
  snapshotEveryEntries: number;
  /** Fired after every apply here (and whatever else changes what the node knows). */
  changed: Signal;
  /** Metadata changed: the node opens and drops partitions to match. */
  onChange: () => void;
}

export class MetadataGroup {
  /** Null until open() has run. */
  private raft: RaftGroup<MetadataResult | null> | null = null;
  private machine: MetadataGroupMachine | null = null;
  private snapshotInFlight = false;

  constructor(private readonly options: MetadataGroupOptions) {}

  async open(): Promise<void> {
    const { factory, state } = this.options;
    const store = await factory.openStore(METADATA_GROUP_ID, 'sync');
    const snapshot = store.snapshot();
    if (snapshot.metadata.index > 0) state.restore(snapshot.data);
    const voters = [...this.options.voters].sort((a, b) => a - b);
    const raw = factory.core(store, { voters, applied: snapshot.metadata.index });
    this.machine = new MetadataGroupMachine(state, snapshot.metadata.index, () => this.afterApply());
    this.raft = factory.group(METADATA_GROUP_ID, raw, store, this.machine);
    factory.drive(this.raft);
    // A lone node elects itself at once instead of waiting out an election timeout.
    if (voters.length === 1) raw.campaign();
  }

  /** The group, once open. */
  get group(): RaftGroup | null {
    return this.raft;
  }

  leader(): number | null {
    const leader = this.raft?.leaderId ?? 0;
    return leader === 0 ? null : leader;
  }

  /** The group's term as this node knows it (0 before it opened). */
  term(): number {
    return this.raft?.term ?? 0;
  }

  isLeader(): boolean {
    return this.raft?.isLeader ?? false;
  }

  /** Proposes a command on this node, which must lead the group; resolves once it is applied. */
  async propose(command: MetadataCommand, timeoutMs: number): Promise<MetadataResult> {
    const group = this.raft;
    if (!group?.isLeader) {
      throw new BrokerError('NO_LEADER', 'this node does not lead the metadata group');
    }
    const index = proposeEntry(this.options.driver, group, encodeCommand(command));
    const result = await group.waitForProposal(index, group.raw.term, timeoutMs);
    if (!result) throw new BrokerError('INTERNAL', 'metadata command applied without a result');
    return result;
  }

  /**
   * Read-your-writes for metadata on a node that may lag: confirms with the leader (ReadIndex)
   * and waits until this node has applied that far.
   */
  async sync(timeoutMs: number): Promise<void> {
    const group = this.raft;
    const machine = this.machine;
    if (!group || !machine) throw new BrokerError('NO_LEADER', 'metadata is not open yet');
    const reading = group.readIndex(timeoutMs);
    this.options.driver.markDirty(group);
    const index = await reading;
    const caughtUp = await waitUntil({
      done: () => machine.appliedIndex >= index,
      subscribe: (listener) => this.options.changed.subscribe(listener),
      deadlineMs: Date.now() + timeoutMs,
    });
    if (!caughtUp) throw new BrokerError('NO_LEADER', 'metadata did not catch up in time');
  }

  close(error: BrokerError): void {
    this.raft?.close(error);
  }

  private afterApply(): void {
    this.options.onChange();
    this.maybeSnapshot();
    this.options.changed.emit();
  }

  private maybeSnapshot(): void {
    const group = this.raft;
    const machine = this.machine;
    if (!group || !machine || this.snapshotInFlight) return;
    const applied = machine.appliedIndex;
    // A snapshot from the leader is applied before it is stored: until then the local log does
    // not reach its index, and there is nothing of our own to compact.
    if (applied > group.store.lastIndex()) return;
    if (applied - group.store.firstIndex() < this.options.snapshotEveryEntries) return;
    const snapshot: Snapshot = {
      metadata: { index: applied, term: group.store.term(applied), confState: group.raw.status().confState },
      data: this.options.state.serialize(),
    };
    this.snapshotInFlight = true;
    group.store
      .truncatePrefix(applied, snapshot)
      .catch((error: Error) => this.options.logger.error({ err: error.message }, 'metadata snapshot failed'))
      .finally(() => {
        this.snapshotInFlight = false;
      });
  }
}
