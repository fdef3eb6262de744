// One simulated replica: a RawNode over an in-memory view of its log, its disk, and its state
// machine. It runs the driver side of the Ready contract; the cluster gives it time and a network.

import {
  type ConfState,
  type Entry,
  MemoryStorage,
  type Message,
  type NodeId,
  type RaftConfig,
  RawNode,
  type ReadState,
  type Ready,
  StateRole,
} from '../../src/raft/index.js';
import { type CheckedNode, type InvariantChecker, InvariantViolation } from './checker.js';
import { type CrashOutcome, confOf, type DiskModel, type Persistence, SimDisk } from './disk.js';
import { mixSeed, SimRandom } from './random.js';
import { StateMachine } from './state-machine.js';
import { TraceKind, type Tracer } from './trace.js';

/** What a node needs from the cluster around it. */
export interface NodeHost {
  readonly nowMs: number;
  readonly checker: InvariantChecker;
  readonly tracer: Tracer;
  readonly diskRandom: SimRandom;
  send(from: SimNode, messages: Message[]): void;
  scheduleDiskDone(node: SimNode, atMs: number): void;
  onApplied(node: SimNode, entry: Entry): void;
  /** The core answered a linearizable read this node started (or forwarded to its leader). */
  onReadState(node: SimNode, state: ReadState): void;
}

/** What waits for a paused node, in arrival order: a peer's message, or a client's read. */
export interface InboxItem {
  message: Message | null;
  /** A read's id when message is null. */
  readId: number;
}

export interface SimNodeOptions {
  id: NodeId;
  /** The membership of the group at index 0, which every replica starts from. */
  bootstrap: ConfState;
  persistence: Persistence;
  disk: DiskModel;
  raft: Partial<RaftConfig>;
  /** Seed of this node's cores; each incarnation gets its own stream. */
  coreSeed: number;
  /** Take a snapshot and cut the log every this many applied entries (0: never). */
  snapshotEvery: number;
  /** Entries kept behind a snapshot, for followers that are only a little behind. */
  snapshotKeepEntries: number;
}

/** Readys one step may produce before we call it a livelock inside the core. */
const MAX_READYS_PER_STEP = 10_000;

function sameMembers(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  if (a.length !== b.length) return false;
  const sortedA = a.slice().sort((x, y) => x - y);
  const sortedB = b.slice().sort((x, y) => x - y);
  return sortedA.every((id, i) => id === sortedB[i]);
}

export class SimNode implements CheckedNode {
  readonly id: NodeId;
  readonly disk: SimDisk;
  /** Bumped by every start: events of an older incarnation are dropped. */
  incarnation = 0;
  up = false;
  /** Stopped like SIGSTOP: no ticks or steps; messages, reads and durable writes wait for resume. */
  paused = false;
  pausedInbox: InboxItem[] = [];
  /** While paused, peers' messages are lost rather than queued (see Cluster.pause). */
  pausedLinksDrop = false;
  pausedPersistId = 0;
  /** Removed from the group for good; never restarted. */
  retired = false;
  raw!: RawNode;
  storage!: MemoryStorage;
  sm!: StateMachine;
  checkedCommit = 0;
  /** The last term this node was seen leading (for the cluster's new-leader hook). */
  leaderTermSeen = 0;
  /** This incarnation's proposals not yet applied: index → value. */
  readonly proposals = new Map<number, Uint8Array>();
  private lastSnapshotIndex = 0;

  constructor(private readonly options: SimNodeOptions) {
    this.id = options.id;
    this.disk = new SimDisk(options.persistence, options.disk);
  }

  get persistence(): Persistence {
    return this.options.persistence;
  }

  /** Builds a new core from the durable image only (the first start finds it empty), at `nowTicks`. */
  start(nowTicks: number): void {
    const o = this.options;
    this.incarnation++;
    const memory = o.persistence === 'memory';
    this.storage = memory ? new MemoryStorage() : this.disk.loadLog();
    const snapshot = this.storage.snapshot();
    const confState = confOf(snapshot, o.bootstrap);
    this.sm =
      snapshot.metadata.index > 0
        ? StateMachine.decode(snapshot.data, confState)
        : new StateMachine(confState);
    const hardState = memory ? { ...this.disk.hardState, commit: 0 } : this.disk.hardState;
    this.raw = new RawNode({
      id: this.id,
      storage: this.storage,
      random: new SimRandom(mixSeed(o.coreSeed, this.incarnation)),
      initialState: { hardState, confState },
      applied: snapshot.metadata.index,
      config: o.raft,
      // A memory-mode replica that ran before lost what it acknowledged.
      recovering: memory && this.incarnation > 1,
      nowTicks,
    });
    this.lastSnapshotIndex = snapshot.metadata.index;
    this.checkedCommit = this.raw.commitIndex;
    this.up = true;
    this.paused = false;
    this.pausedInbox = [];
    this.pausedPersistId = 0;
    this.proposals.clear();
  }

  /** Power loss: the core and everything not durable are gone. */
  crash(nowMs: number, rng: SimRandom): CrashOutcome {
    this.up = false;
    this.paused = false;
    this.pausedInbox = [];
    this.proposals.clear();
    return this.disk.crash(nowMs, rng);
  }

  /** Runs the Ready loop until the core has nothing more to say. */
  drain(host: NodeHost): void {
    for (let i = 0; this.raw.hasReady(); i++) {
      if (i >= MAX_READYS_PER_STEP) {
        throw new InvariantViolation('livelock', `n${this.id} produced ${i} Readys in one step`);
      }
      this.handleReady(host, this.raw.ready());
    }
  }

  private handleReady(host: NodeHost, ready: Ready): void {
    host.tracer.add(host.nowMs, this.id, TraceKind.Ready, null, ready);
    if (ready.softState) {
      host.tracer.add(
        host.nowMs,
        this.id,
        TraceKind.Role,
        null,
        null,
        ready.softState.role,
        this.raw.term,
        ready.softState.lead ? `lead n${ready.softState.lead}` : '',
      );
    }
    if (ready.snapshot) this.installSnapshot(host, ready);
    const entries = this.appendable(ready.entries);
    if (entries.length > 0) {
      host.checker.onAppend(this.id, entries, this.storage.term(entries[0]!.index - 1));
      this.storage.append(entries);
    }
    if (ready.snapshot || entries.length > 0 || ready.hardState) {
      const write = {
        persistId: ready.persistId,
        snapshot: ready.snapshot,
        entries,
        hardState: ready.hardState,
      };
      host.scheduleDiskDone(
        this,
        this.disk.enqueue({ ...write, appSnapshot: false, compactIndex: 0 }, host.nowMs, host.diskRandom),
      );
    } else if (ready.persistId !== 0) {
      throw new InvariantViolation(
        'ready contract',
        `n${this.id} persistId ${ready.persistId} with nothing to persist`,
      );
    }
    if (ready.messages.length > 0) host.send(this, ready.messages);
    for (const state of ready.readStates) host.onReadState(this, state);
    let confChanged = false;
    for (const entry of ready.committedEntries) confChanged = this.apply(host, entry) || confChanged;
    this.raw.advance(ready);
    if (confChanged || ready.snapshot) this.checkConfState();
    this.maybeSnapshot(host);
  }

  /** Entries at or below the snapshot are already covered by it. */
  private appendable(entries: Entry[]): Entry[] {
    if (entries.length === 0) return entries;
    const snapshotIndex = this.storage.firstIndex() - 1;
    if (entries[0]!.index > snapshotIndex) return entries;
    return entries.filter((e) => e.index > snapshotIndex);
  }

  private installSnapshot(host: NodeHost, ready: Ready): void {
    const snapshot = ready.snapshot!;
    if (snapshot.metadata.index <= this.sm.appliedIndex) {
      throw new InvariantViolation(
        'snapshot',
        `n${this.id} got snapshot ${snapshot.metadata.index} at applied ${this.sm.appliedIndex}`,
      );
    }
    this.storage.applySnapshot(snapshot);
    this.sm = StateMachine.decode(snapshot.data, snapshot.metadata.confState);
    this.lastSnapshotIndex = snapshot.metadata.index;
    host.checker.onSnapshotRestore(this.id, snapshot, this.sm);
    host.tracer.add(
      host.nowMs,
      this.id,
      TraceKind.Snapshot,
      null,
      null,
      snapshot.metadata.index,
      0,
      `install snapshot ${snapshot.metadata.index}/t${snapshot.metadata.term}`,
    );
  }

  private apply(host: NodeHost, entry: Entry): boolean {
    const hash = host.checker.onApply(this.id, this.sm, entry);
    const isConf = this.sm.apply(entry, hash);
    host.checker.afterApply(this.id, this.sm);
    host.onApplied(this, entry);
    return isConf;
  }

  /** The membership the core acts on must be the one our applied log says. */
  private checkConfState(): void {
    const core = this.raw.status().confState;
    const ours = this.sm.confState;
    if (!sameMembers(core.voters, ours.voters) || !sameMembers(core.learners, ours.learners)) {
      throw new InvariantViolation(
        'membership',
        `n${this.id} core has voters [${core.voters}] learners [${core.learners}], ` +
          `applied log says [${ours.voters}] [${ours.learners}]`,
      );
    }
  }

  /** Snapshots the state machine and cuts the log prefix, in memory now and on disk in order. */
  private maybeSnapshot(host: NodeHost): void {
    const every = this.options.snapshotEvery;
    const applied = this.sm.appliedIndex;
    if (every <= 0 || applied - this.lastSnapshotIndex < every) return;
    this.lastSnapshotIndex = applied;
    if (applied <= this.storage.snapshot().metadata.index) return;
    const snapshot = this.storage.createSnapshot(applied, this.sm.confState, this.sm.encode());
    const compactIndex = Math.max(this.storage.firstIndex() - 1, applied - this.options.snapshotKeepEntries);
    this.storage.compact(compactIndex);
    const write = { persistId: 0, snapshot, entries: [], hardState: null, appSnapshot: true, compactIndex };
    host.scheduleDiskDone(this, this.disk.enqueue(write, host.nowMs, host.diskRandom));
    host.tracer.add(
      host.nowMs,
      this.id,
      TraceKind.Snapshot,
      null,
      null,
      applied,
      compactIndex,
      `snapshot ${applied}, log cut to ${compactIndex}`,
    );
  }

  get isLeader(): boolean {
    return this.up && this.raw.role === StateRole.Leader;
  }
}
