// The state machines of the two kinds of group, as the driver sees them: the metadata group
// (topics, placement, group offsets) and a partition group (offsets and the high watermark).

import type { Entry, Snapshot } from '../raft/index.js';
import type { EntryOffsets } from './group-store.js';
import { decodeCommand, type MetadataResult, type MetadataState } from './metadata-state.js';
import { decodePartitionSnapshot, type PartitionMachine } from './partition-machine.js';
import type { GroupMachine } from './raft-group.js';

/** Applies metadata commands; tells the node after each change so it can add or drop groups. */
export class MetadataGroupMachine implements GroupMachine<MetadataResult | null> {
  appliedIndex: number;

  constructor(
    readonly state: MetadataState,
    appliedIndex: number,
    private readonly onChange: () => void,
  ) {
    this.appliedIndex = appliedIndex;
  }

  noteAppended(): void {}

  apply(entry: Entry): MetadataResult | null {
    this.appliedIndex = entry.index;
    if (entry.type !== 0 || entry.data.length === 0) return null; // no-op or membership
    return this.state.apply(decodeCommand(entry.data));
  }

  restoreSnapshot(snapshot: Snapshot): void {
    this.state.restore(snapshot.data);
    this.appliedIndex = snapshot.metadata.index;
    this.onChange();
  }

  afterApply(): void {
    this.onChange();
  }
}

/** A partition group's machine: offsets via PartitionMachine, plus a change hook for waiters. */
export class PartitionGroupMachine implements GroupMachine<EntryOffsets | null> {
  readonly partition: PartitionMachine;

  constructor(partition: PartitionMachine) {
    this.partition = partition;
  }

  noteAppended(entries: readonly Entry[]): void {
    this.partition.noteAppendedEntries(entries);
  }

  apply(entry: Entry): EntryOffsets | null {
    return this.partition.apply(entry);
  }

  restoreSnapshot(snapshot: Snapshot): void {
    this.partition.restore(snapshot.metadata.index, decodePartitionSnapshot(snapshot.data));
  }

  afterApply(): void {
    this.partition.publish();
  }
}
