// The node's one loop over every Raft group. A turn collects the Ready of each group that has
// work, hands all their writes to storage as one batch, queues their messages per peer, applies
// committed entries, and ends with one flush of the transport (one write per peer). Turns run
// when something happened: a tick, a message, a proposal, a durable write.

import type { Logger } from 'pino';
import type { Message, NodeId } from '../raft/index.js';
import type { GroupStore, GroupWrite, NodeStore } from './group-store.js';
import type { RaftGroup } from './raft-group.js';

/** The part of the transport the driver uses. */
export interface MessageSink {
  send(toNodeId: NodeId, groupId: number, message: Message): void;
  /** Writes everything queued this turn: one write per peer. */
  flush(): void;
}

export interface DriverOptions {
  store: NodeStore;
  sink: MessageSink;
  tickMs: number;
  logger: Logger;
}

/** Readys taken from one group in one turn; more would mean a livelock in the core. */
const READYS_PER_GROUP_PER_TURN_MAX = 64;

export class Driver {
  readonly groups = new Map<number, RaftGroup>();
  private dirty = new Set<RaftGroup>();
  private scheduled = false;
  private ticker: NodeJS.Timeout | null = null;
  private stopped = false;
  /** Turns run so far, and messages dropped because their group is not (yet) here. */
  turns = 0;
  droppedForUnknownGroup = 0;

  constructor(private readonly options: DriverOptions) {}

  start(): void {
    this.ticker = setInterval(() => this.tickAll(), this.options.tickMs);
    this.ticker.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
  }

  add(group: RaftGroup): void {
    this.groups.set(group.groupId, group);
    this.markDirty(group);
  }

  remove(groupId: number): RaftGroup | undefined {
    const group = this.groups.get(groupId);
    if (!group) return undefined;
    this.groups.delete(groupId);
    this.dirty.delete(group);
    return group;
  }

  /** Something happened to the group (proposal, read, campaign): run a turn soon. */
  markDirty(group: RaftGroup): void {
    if (group.closed) return;
    this.dirty.add(group);
    this.schedule();
  }

  /** Messages from a peer, already decoded: step each into its group. */
  deliver(groupId: number, message: Message): void {
    const group = this.groups.get(groupId);
    if (!group) {
      // Created on this node once the metadata that names it is applied; Raft resends.
      this.droppedForUnknownGroup++;
      return;
    }
    group.raw.step(message);
    this.dirty.add(group);
    this.schedule();
  }

  private tickAll(): void {
    for (const group of this.groups.values()) {
      group.raw.tick();
      this.dirty.add(group);
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => this.turn());
  }

  /** One turn over every group with work. Public for tests that step the loop by hand. */
  turn(): void {
    this.scheduled = false;
    if (this.stopped) return;
    this.turns++;
    const writes: Array<{ store: GroupStore; write: GroupWrite }> = [];
    const groups = this.dirty;
    this.dirty = new Set();
    for (const group of groups) {
      if (!group.closed) this.processGroup(group, writes);
    }
    if (writes.length > 0) this.options.store.submit(writes);
    this.options.sink.flush();
  }

  private processGroup(group: RaftGroup, writes: Array<{ store: GroupStore; write: GroupWrite }>): void {
    const raw = group.raw;
    for (let round = 0; round < READYS_PER_GROUP_PER_TURN_MAX && raw.hasReady(); round++) {
      const ready = raw.ready();
      group.beforePersist(ready);
      if (ready.entries.length > 0 || ready.snapshot || ready.hardState || ready.confState) {
        const persistId = ready.persistId;
        writes.push({
          store: group.store,
          write: {
            entries: ready.entries,
            hardState: ready.hardState,
            snapshot: ready.snapshot,
            confState: ready.confState,
            mustSync: ready.mustSync,
            onDurable: persistId === 0 ? noop : () => this.persisted(group, persistId),
          },
        });
      }
      for (const message of ready.messages) this.options.sink.send(message.to, group.groupId, message);
      group.applyCommitted(ready.committedEntries);
      if (ready.readStates.length > 0) group.answerReads(ready.readStates);
      raw.advance(ready);
    }
    // A group that still has work after the cap comes back next turn rather than starve others.
    if (raw.hasReady()) this.markDirty(group);
  }

  private persisted(group: RaftGroup, persistId: number): void {
    if (group.closed) return;
    group.raw.reportPersisted(persistId);
    this.markDirty(group);
  }
}

function noop(): void {}
