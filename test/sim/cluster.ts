// The deterministic cluster harness: N simulated replicas of one Raft group on a virtual clock,
// network and disks, all driven from one seed, with every safety invariant checked after every event.
//
// Usage (the 6.824 scenarios are written on this):
//
//   const c = new Cluster({ seed: 1, nodes: 3 });            // reliable network, 50 ms ticks
//   const leader = c.checkOneLeader();                        // polls ~5 s virtual, like 6.824
//   const index = c.one('x', 3, false);                       // 6.824 one(): index of 'x' once 3 applied it
//   c.disconnect(leader); c.runFor(1000); c.connect(leader);
//   c.crash(2); c.restart(2);                                 // restart rebuilds from the durable image only
//   c.partition([[1, 2], [3]]); c.heal();
//   c.messageCount(); c.bytesSent();                          // 6.824 Count and RPCBytes
//
// Options (ClusterOptions): seed, nodes (voters 1..n), spareNodes (ids n+1.. for conf changes),
// tickMs (50), raft (core config overrides; electionTicks 10, heartbeatTicks 1 by default),
// reliable (false: 6.824's 0–27 ms and 10% loss), longReordering (2/3 of replies 200–2200 ms late),
// network / disk (fault model overrides), persistence ('disk' | 'memory'), snapshotEvery (take a
// snapshot and cut the log every N applied entries), uniqueValues (a value applied twice is a
// violation), traceCapacity / traceSink.
//
// Time moves only inside runFor / runUntil / the check helpers. Connectivity (disconnect,
// partition, cutLink) and liveness (crash, restart, pause) are independent: a crashed node keeps
// its network state, and restart does not reconnect it. Harness expectations that fail (no leader,
// no agreement) throw SimFailure; a broken invariant throws InvariantViolation, both carrying the
// seed and the last events of the trace.

import {
  type ConfChange,
  type ConfState,
  type Entry,
  isRaftError,
  type Message,
  type NodeId,
  type RaftConfig,
  type RawNode,
  type ReadState,
  StateRole,
  type Status,
} from '../../src/raft/index.js';
import { InvariantChecker, InvariantViolation } from './checker.js';
import { DEFAULT_DISK, type DiskModel, type Persistence } from './disk.js';
import {
  LONG_REORDERING,
  type NetworkFaults,
  RELIABLE_NETWORK,
  SimNetwork,
  UNRELIABLE_NETWORK,
} from './network.js';
import { type NodeHost, SimNode } from './node.js';
import { SimRandom } from './random.js';
import { EventKind, EventQueue, type SimEvent } from './scheduler.js';
import { bytesEqual } from './state-machine.js';
import { TraceKind, Tracer } from './trace.js';

export interface ClusterOptions {
  seed: number;
  /** Initial voters, ids 1..nodes. */
  nodes: number;
  /** Ids nodes+1..nodes+spareNodes exist but start only when added (addNode). */
  spareNodes?: number;
  tickMs?: number;
  raft?: Partial<RaftConfig>;
  /** Default true. False is 6.824's unreliable network. */
  reliable?: boolean;
  longReordering?: boolean;
  /** Overrides on top of the reliable/unreliable profile. */
  network?: Partial<NetworkFaults>;
  disk?: Partial<DiskModel>;
  persistence?: Persistence;
  /** Snapshot and cut the log every this many applied entries (0: never). */
  snapshotEvery?: number;
  snapshotKeepEntries?: number;
  /** Every proposed value is distinct, so a value applied twice is a violation. */
  uniqueValues?: boolean;
  /** Events kept for the report of a violation. */
  traceCapacity?: number;
  /** Receives every event as it happens. */
  traceSink?: (line: string) => void;
  /** Called (as its own event, right after) whenever a node becomes leader of a new term. */
  onNewLeader?: (id: NodeId, term: number) => void;
}

/** A harness expectation that did not hold (6.824's t.Fatalf). */
export class SimFailure extends Error {
  seed = -1;
  timeMs = 0;
  trace: string[] = [];
  constructor(message: string) {
    super(message);
    this.name = 'SimFailure';
  }
}

export interface ClientStats {
  proposed: number;
  acked: number;
  /** Another entry took the proposal's index: definitely not applied there. */
  failed: number;
  /** Linearizable reads started, and those the core answered (the rest were dropped or late). */
  readsStarted: number;
  readsAnswered: number;
}

/** A client's linearizable read, from its start until the core answers it. */
interface PendingRead {
  id: number;
  node: NodeId;
  incarnation: number;
  startedMs: number;
  /** The highest index acknowledged when the read started: the answer must reach it. */
  mustReach: number;
}

/** Guards against a run that schedules events forever without time passing. */
const MAX_EVENTS_PER_RUN = 50_000_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeValue(value: string | number): Uint8Array {
  return encoder.encode(String(value));
}

export class Cluster implements NodeHost {
  readonly seed: number;
  readonly tickMs: number;
  readonly network: SimNetwork;
  readonly checker: InvariantChecker;
  readonly tracer: Tracer;
  readonly diskRandom: SimRandom;
  readonly clientStats: ClientStats = { proposed: 0, acked: 0, failed: 0, readsStarted: 0, readsAnswered: 0 };
  /** Every node id that exists, started or not, in order. */
  readonly ids: NodeId[] = [];
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly queue = new EventQueue();
  private readonly networkRandom: SimRandom;
  private readonly harnessRandom: SimRandom;
  private readonly bootstrap: ConfState;
  private readonly onNewLeader: ((id: NodeId, term: number) => void) | null;
  private now = 0;
  private failure: Error | null = null;
  private readonly reads = new Map<number, PendingRead>();
  private nextReadId = 1;
  /** The membership at the highest index any node applied: only moves forward. */
  private latestMembers: { index: number; conf: ConfState };

  constructor(options: ClusterOptions) {
    const root = new SimRandom(options.seed);
    this.seed = options.seed;
    this.onNewLeader = options.onNewLeader ?? null;
    this.tickMs = options.tickMs ?? 50;
    this.networkRandom = root.fork(1);
    this.diskRandom = root.fork(2);
    this.harnessRandom = root.fork(3);
    const coreRandom = root.fork(4);
    this.network = new SimNetwork(networkProfile(options));
    this.tracer = new Tracer(options.traceCapacity ?? 200, options.traceSink ?? null);
    this.checker = new InvariantChecker(() => this.nodes.values(), options.uniqueValues ?? false);
    const voters = Array.from({ length: options.nodes }, (_, i) => i + 1);
    this.bootstrap = { voters, learners: [] };
    this.latestMembers = { index: 0, conf: this.bootstrap };
    const total = options.nodes + (options.spareNodes ?? 0);
    for (let id = 1; id <= total; id++) {
      this.ids.push(id);
      this.nodes.set(
        id,
        new SimNode({
          id,
          bootstrap: this.bootstrap,
          persistence: options.persistence ?? 'disk',
          disk: { ...DEFAULT_DISK, ...options.disk },
          raft: { electionTicks: 10, heartbeatTicks: 1, ...options.raft },
          coreSeed: coreRandom.fork(id).seed,
          snapshotEvery: options.snapshotEvery ?? 0,
          snapshotKeepEntries: options.snapshotKeepEntries ?? 0,
        }),
      );
    }
    this.guard(() => {
      for (const id of voters) this.startNode(this.node(id));
    });
  }

  // ---- time --------------------------------------------------------------------------------

  get nowMs(): number {
    return this.now;
  }

  /**
   * The nodes' clock in ticks, as a real driver reads its monotonic clock: handed to a core before
   * each input (tick, step, read), so a node that was paused sees the time it lost.
   */
  get nowTicks(): number {
    return this.now / this.tickMs;
  }

  /** Advances virtual time by `ms`, running every event due. */
  runFor(ms: number): void {
    this.runUntilTime(this.now + ms, null);
  }

  /** Runs until `predicate` holds (checked after every event) or `timeoutMs` passes. */
  runUntil(predicate: () => boolean, timeoutMs: number): boolean {
    if (predicate()) return true;
    return this.runUntilTime(this.now + timeoutMs, predicate);
  }

  /** Schedules a callback at `delayMs` from now (fault injection, clients). */
  schedule(delayMs: number, call: () => void): void {
    this.push(this.now + delayMs, EventKind.Call, 0, 0, 0, null, call);
  }

  private runUntilTime(endMs: number, predicate: (() => boolean) | null): boolean {
    this.throwIfFailed();
    return this.guard(() => {
      for (let events = 0; events < MAX_EVENTS_PER_RUN; events++) {
        const next = this.queue.peek();
        if (!next || next.timeMs > endMs) {
          this.now = endMs;
          return false;
        }
        this.queue.pop();
        this.now = next.timeMs;
        this.dispatch(next);
        if (predicate?.()) return true;
      }
      throw new InvariantViolation('livelock', `more than ${MAX_EVENTS_PER_RUN} events in one run`);
    });
  }

  private dispatch(e: SimEvent): void {
    switch (e.kind) {
      case EventKind.Tick:
        this.onTick(e);
        return;
      case EventKind.Deliver:
        this.onDeliver(e);
        return;
      case EventKind.DiskDone:
        this.onDiskDone(e);
        return;
      case EventKind.Call:
        e.call!();
        for (const node of this.nodes.values()) if (node.up && !node.paused) this.settle(node);
        return;
    }
  }

  private push(
    timeMs: number,
    kind: EventKind,
    node: NodeId,
    incarnation: number,
    targetIncarnation: number,
    message: Message | null,
    call: (() => void) | null,
  ): void {
    this.queue.push({ timeMs, kind, node, incarnation, targetIncarnation, message, call });
  }

  private live(e: SimEvent): SimNode | null {
    const node = this.nodes.get(e.node);
    return node?.up && node.incarnation === e.incarnation ? node : null;
  }

  private onTick(e: SimEvent): void {
    const node = this.live(e);
    if (!node) return;
    this.push(this.now + this.tickMs, EventKind.Tick, node.id, node.incarnation, 0, null, null);
    if (node.paused) return;
    node.raw.tick(this.nowTicks);
    this.settle(node);
  }

  private onDeliver(e: SimEvent): void {
    const m = e.message!;
    const from = this.nodes.get(m.from)!;
    const to = this.nodes.get(m.to)!;
    let reason = '';
    if (!from.up || from.incarnation !== e.incarnation) reason = 'sender restarted';
    else if (!to.up || to.incarnation !== e.targetIncarnation) reason = 'receiver restarted';
    else if (!this.network.linkOpen(m.from, m.to)) reason = 'partitioned';
    if (reason) {
      this.tracer.add(this.now, m.to, TraceKind.Drop, m, null, 0, 0, reason);
      return;
    }
    if (to.paused) {
      if (to.pausedLinksDrop)
        this.tracer.add(this.now, m.to, TraceKind.Drop, m, null, 0, 0, 'paused, link down');
      else to.pausedInbox.push({ message: m, readId: 0 });
      return;
    }
    this.tracer.add(this.now, m.to, TraceKind.Deliver, m, null);
    to.raw.advanceClock(this.nowTicks);
    to.raw.step(m);
    this.settle(to);
  }

  private onDiskDone(e: SimEvent): void {
    const node = this.live(e);
    if (!node) return;
    const write = node.disk.completeHead();
    if (write.persistId === 0) return;
    if (node.paused) {
      node.pausedPersistId = write.persistId;
      return;
    }
    this.tracer.add(this.now, node.id, TraceKind.Durable, null, null, write.persistId);
    node.raw.advanceClock(this.nowTicks);
    node.raw.reportPersisted(write.persistId);
    this.settle(node);
  }

  /** Runs a node's Ready loop and checks what its step could have broken. */
  private settle(node: SimNode): void {
    node.drain(this);
    this.checker.afterStep(node);
    if (node.raw.role === StateRole.Leader && node.leaderTermSeen !== node.raw.term) {
      node.leaderTermSeen = node.raw.term;
      const hook = this.onNewLeader;
      const term = node.raw.term;
      if (hook) this.schedule(0, () => hook(node.id, term));
    }
  }

  /** Runs `body`; a failure inside is stamped with the seed, time and trace, and sticks. */
  private guard<T>(body: () => T): T {
    try {
      return body();
    } catch (error) {
      throw this.fail(error);
    }
  }

  private fail(error: unknown): Error {
    const wrapped =
      error instanceof InvariantViolation || error instanceof SimFailure
        ? error
        : new InvariantViolation(
            'core assertion',
            error instanceof Error ? (error.stack ?? error.message) : String(error),
          );
    if (wrapped.seed < 0) {
      wrapped.seed = this.seed;
      wrapped.timeMs = this.now;
      wrapped.trace = this.tracer.lines();
    }
    if (wrapped instanceof InvariantViolation) this.failure = wrapped;
    return wrapped;
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  // ---- NodeHost ----------------------------------------------------------------------------

  send(from: SimNode, messages: Message[]): void {
    for (const m of messages) {
      this.network.stats.record(m);
      const to = this.nodes.get(m.to);
      let reason = '';
      if (!to?.up) reason = 'receiver down';
      else if (!this.network.linkOpen(m.from, m.to)) reason = 'partitioned';
      if (reason) {
        this.tracer.add(this.now, from.id, TraceKind.Drop, m, null, 0, 0, reason);
        continue;
      }
      const arrivals = this.network.arrivalTimes(m, this.now, this.networkRandom);
      if (arrivals.length === 0) this.tracer.add(this.now, from.id, TraceKind.Drop, m, null, 0, 0, 'lost');
      for (const atMs of arrivals) {
        this.push(atMs, EventKind.Deliver, m.to, from.incarnation, to!.incarnation, m, null);
      }
    }
  }

  scheduleDiskDone(node: SimNode, atMs: number): void {
    this.push(atMs, EventKind.DiskDone, node.id, node.incarnation, 0, null, null);
  }

  onReadState(node: SimNode, state: ReadState): void {
    const read = this.reads.get(state.requestId);
    if (!read || read.node !== node.id || read.incarnation !== node.incarnation) return;
    this.reads.delete(read.id);
    this.clientStats.readsAnswered++;
    this.tracer.add(
      this.now,
      node.id,
      TraceKind.Note,
      null,
      null,
      read.id,
      state.index,
      `read ${read.id} answered: index ${state.index}`,
    );
    this.checker.readAnswered(node.id, read, state.index);
  }

  onApplied(node: SimNode, entry: Entry): void {
    if (entry.index > this.latestMembers.index)
      this.latestMembers = { index: entry.index, conf: node.sm.confState };
    const proposed = node.proposals.get(entry.index);
    if (!proposed) return;
    node.proposals.delete(entry.index);
    if (bytesEqual(proposed, entry.data)) {
      this.checker.ack(entry.index, proposed);
      this.clientStats.acked++;
    } else {
      this.clientStats.failed++;
    }
  }

  // ---- nodes -------------------------------------------------------------------------------

  node(id: NodeId): SimNode {
    const node = this.nodes.get(id);
    if (!node) throw new SimFailure(`no node ${id}`);
    return node;
  }

  raw(id: NodeId): RawNode {
    return this.node(id).raw;
  }

  status(id: NodeId): Status {
    return this.node(id).raw.status();
  }

  isUp(id: NodeId): boolean {
    return this.node(id).up;
  }

  /** Ids of nodes that are running. */
  upIds(): NodeId[] {
    return this.ids.filter((id) => this.node(id).up);
  }

  /** 6.824's GetState. */
  getState(id: NodeId): { term: number; isLeader: boolean } {
    const node = this.node(id);
    return { term: node.raw.term, isLeader: node.isLeader };
  }

  /** The running leader with the highest term, if any. */
  leader(): NodeId | undefined {
    let best: SimNode | undefined;
    for (const node of this.nodes.values()) {
      if (node.isLeader && (!best || node.raw.term > best.raw.term)) best = node;
    }
    return best?.id;
  }

  private startNode(node: SimNode): void {
    node.start(this.nowTicks);
    this.checker.onRestart(node);
    const phaseMs = this.harnessRandom.float() * this.tickMs;
    this.push(this.now + phaseMs, EventKind.Tick, node.id, node.incarnation, 0, null, null);
    this.tracer.add(
      this.now,
      node.id,
      TraceKind.Restart,
      null,
      null,
      node.incarnation,
      0,
      `start #${node.incarnation}: log [${node.storage.firstIndex()}, ${node.storage.lastIndex()}], ` +
        `term ${node.raw.term}, commit ${node.raw.commitIndex}${node.raw.status().recovering ? ', recovering' : ''}`,
    );
    this.settle(node);
  }

  /** Power loss on `id`: writes in flight are lost, messages in flight from and to it too. */
  crash(id: NodeId): void {
    this.throwIfFailed();
    const node = this.node(id);
    if (!node.up) return;
    const outcome = node.crash(this.now, this.diskRandom);
    const torn = outcome.tornEntries >= 0 ? `, torn write kept ${outcome.tornEntries} entries` : '';
    this.tracer.add(
      this.now,
      id,
      TraceKind.Crash,
      null,
      null,
      outcome.lostWrites,
      0,
      `crash: ${outcome.lostWrites} writes lost${torn}`,
    );
  }

  /** Starts a crashed (or never started) node as a new instance built from its durable image. */
  restart(id: NodeId): void {
    this.throwIfFailed();
    const node = this.node(id);
    if (node.retired) throw new SimFailure(`node ${id} was removed from the group`);
    if (node.up) this.crash(id);
    this.guard(() => this.startNode(node));
  }

  /** Starts a spare node (for a conf change that adds it). */
  addNode(id: NodeId): void {
    const node = this.node(id);
    if (!node.up && !node.retired) this.restart(id);
  }

  /** Stops a removed node for good. */
  retire(id: NodeId): void {
    this.crash(id);
    this.node(id).retired = true;
  }

  /** Changes one node's disk (e.g. make it slow); writes already queued keep their times. */
  setDisk(id: NodeId, model: Partial<DiskModel>): void {
    const disk = this.node(id).disk;
    disk.model = { ...disk.model, ...model };
  }

  /** Makes `id` start an election now (pre-vote first if configured). */
  campaign(id: NodeId): void {
    this.withCore(id, (raw) => raw.campaign());
  }

  /** Asks `id` (the leader, or a follower that forwards it) to hand leadership to `to`. */
  transferLeader(id: NodeId, to: NodeId): void {
    this.withCore(id, (raw) => raw.transferLeader(to));
  }

  /** Runs `action` on a running node's core, then its Ready loop and the checks. */
  withCore(id: NodeId, action: (raw: RawNode) => void): void {
    this.throwIfFailed();
    const node = this.node(id);
    if (!node.up || node.paused) return;
    this.guard(() => {
      node.raw.advanceClock(this.nowTicks);
      action(node.raw);
      this.settle(node);
    });
  }

  /**
   * SIGSTOP: the node neither ticks nor steps; what arrives waits for resume. With `linksDrop`,
   * peers' messages sent meanwhile are lost instead, as when their connections to a stopped
   * process give up (bounded queues, timeouts); clients' reads still wait in its sockets.
   */
  pause(id: NodeId, linksDrop = false): void {
    const node = this.node(id);
    if (node.up) {
      node.paused = true;
      node.pausedLinksDrop = linksDrop;
    }
    this.tracer.add(
      this.now,
      id,
      TraceKind.Note,
      null,
      null,
      0,
      0,
      linksDrop ? 'pause, links drop' : 'pause',
    );
  }

  resume(id: NodeId): void {
    const node = this.node(id);
    if (!node.up || !node.paused) return;
    node.paused = false;
    this.tracer.add(
      this.now,
      id,
      TraceKind.Note,
      null,
      null,
      0,
      0,
      `resume with ${node.pausedInbox.length} messages`,
    );
    this.guard(() => {
      // Everything that waited is handled now, before the next tick: the clock first.
      node.raw.advanceClock(this.nowTicks);
      if (node.pausedPersistId > 0) node.raw.reportPersisted(node.pausedPersistId);
      node.pausedPersistId = 0;
      this.settle(node);
      const inbox = node.pausedInbox;
      node.pausedInbox = [];
      for (const { message, readId } of inbox) {
        if (!node.up || node.paused) break;
        if (message) {
          this.tracer.add(this.now, id, TraceKind.Deliver, message, null);
          node.raw.advanceClock(this.nowTicks);
          node.raw.step(message);
          this.settle(node);
        } else {
          this.startRead(node, readId);
        }
      }
    });
  }

  // ---- network -----------------------------------------------------------------------------

  /** Cuts `id` off from everyone, both ways. */
  disconnect(id: NodeId): void {
    this.network.disconnect(id);
    this.tracer.add(this.now, id, TraceKind.Network, null, null, 0, 0, 'disconnect');
  }

  connect(id: NodeId): void {
    this.network.connect(id);
    this.tracer.add(this.now, id, TraceKind.Network, null, null, 0, 0, 'connect');
  }

  isConnected(id: NodeId): boolean {
    return this.network.isConnected(id);
  }

  /** Only nodes in the same group can talk; a node in no group talks to no one. */
  partition(groups: readonly (readonly NodeId[])[]): void {
    this.network.partition(groups, this.ids);
    this.tracer.add(
      this.now,
      0,
      TraceKind.Network,
      null,
      null,
      0,
      0,
      `partition ${groups.map((g) => `{${g.join(',')}}`).join(' ')}`,
    );
  }

  /** Cuts one direction only. */
  cutLink(from: NodeId, to: NodeId): void {
    this.network.cutLink(from, to);
    this.tracer.add(this.now, from, TraceKind.Network, null, null, 0, 0, `cut ${from}→${to}`);
  }

  /** Ends every partition, cut and disconnect. */
  heal(): void {
    this.network.heal();
    this.tracer.add(this.now, 0, TraceKind.Network, null, null, 0, 0, 'heal');
  }

  setReliable(reliable: boolean): void {
    const base = reliable ? RELIABLE_NETWORK : UNRELIABLE_NETWORK;
    const long = this.network.faults.longDelayRate > 0 && this.network.faults.longDelayRepliesOnly;
    this.network.faults = { ...base, ...(long ? LONG_REORDERING : {}) };
  }

  setLongReordering(on: boolean): void {
    const f = this.network.faults;
    this.network.faults = on ? { ...f, ...LONG_REORDERING } : { ...f, longDelayRate: 0 };
  }

  /** RPCs sent (requests; a reply is part of its RPC), as 6.824's Count test counts. */
  messageCount(): number {
    return this.network.stats.rpcs;
  }

  /** Every message sent, requests and replies. */
  messagesSent(): number {
    return this.network.stats.messages;
  }

  bytesSent(): number {
    return this.network.stats.bytes;
  }

  /** Durable Raft state of `id` besides its snapshot (6.824's RaftStateSize). */
  raftStateBytes(id: NodeId): number {
    return this.node(id).disk.raftStateBytes();
  }

  // ---- clients -----------------------------------------------------------------------------

  /** 6.824's Start: proposes on `id` if it believes it leads. Null when it refuses. */
  start(id: NodeId, value: string | number | Uint8Array): { index: number; term: number } | null {
    const index = this.propose(id, [typeof value === 'object' ? value : encodeValue(value)]);
    return index === null ? null : { index, term: this.node(id).raw.term };
  }

  /** Proposes values as one batch on `id`; returns the first index, or null when refused. */
  propose(id: NodeId, values: readonly Uint8Array[]): number | null {
    this.throwIfFailed();
    const node = this.node(id);
    if (!node.up || node.paused) return null;
    return this.guard(() => {
      let first: number;
      try {
        first = values.length === 1 ? node.raw.propose(values[0]!) : node.raw.proposeBatch(values);
      } catch (error) {
        if (
          isRaftError(error, 'NotLeader') ||
          isRaftError(error, 'ProposalDropped') ||
          isRaftError(error, 'UncommittedBytesFull')
        )
          return null;
        throw error;
      }
      for (let i = 0; i < values.length; i++) node.proposals.set(first + i, values[i]!);
      this.clientStats.proposed += values.length;
      this.tracer.add(
        this.now,
        id,
        TraceKind.Propose,
        null,
        null,
        first,
        values.length,
        `propose ${values.length} at ${first}`,
      );
      this.settle(node);
      return first;
    });
  }

  /**
   * A client's linearizable read at `id` (the leader, or a follower that asks it): the answer must
   * cover every write acknowledged before now. A paused node gets the read on resume, in arrival
   * order with its messages, as a stopped process finds requests waiting in its sockets. Returns
   * the read's id, or null when the node is down. The answer is checked in onReadState; one that
   * never comes (no leader, the node restarted) is allowed.
   */
  read(id: NodeId): number | null {
    this.throwIfFailed();
    const node = this.node(id);
    if (!node.up) return null;
    const read: PendingRead = {
      id: this.nextReadId++,
      node: id,
      incarnation: node.incarnation,
      startedMs: this.now,
      mustReach: this.checker.highestAcked,
    };
    this.reads.set(read.id, read);
    this.clientStats.readsStarted++;
    this.tracer.add(
      this.now,
      id,
      TraceKind.Note,
      null,
      null,
      read.id,
      read.mustReach,
      `read ${read.id} starts${node.paused ? ' (queued: paused)' : ''}, must reach ${read.mustReach}`,
    );
    if (node.paused) node.pausedInbox.push({ message: null, readId: read.id });
    else this.guard(() => this.startRead(node, read.id));
    return read.id;
  }

  private startRead(node: SimNode, readId: number): void {
    node.raw.advanceClock(this.nowTicks);
    node.raw.readIndex(readId);
    this.settle(node);
  }

  /** Proposes a membership change on `id`; null when refused (not leader, one pending, invalid). */
  proposeConfChange(id: NodeId, change: ConfChange): number | null {
    this.throwIfFailed();
    const node = this.node(id);
    if (!node.up || node.paused) return null;
    return this.guard(() => {
      let index: number;
      try {
        index = node.raw.proposeConfChange(change);
      } catch (error) {
        if (isRaftError(error)) return null;
        throw error;
      }
      this.tracer.add(
        this.now,
        id,
        TraceKind.Propose,
        null,
        null,
        index,
        1,
        `propose conf change ${JSON.stringify(change)} at ${index}`,
      );
      this.settle(node);
      return index;
    });
  }

  /** How many nodes applied `index`, and the value there (6.824's nCommitted). */
  nCommitted(index: number): { count: number; value: string | undefined } {
    let count = 0;
    for (const node of this.nodes.values()) if (node.sm && node.sm.appliedIndex >= index) count++;
    const data = count > 0 ? this.checker.appliedValue(index) : undefined;
    return { count, value: data ? decoder.decode(data) : undefined };
  }

  /** The membership at the highest index any node ever applied (restarts do not move it back). */
  members(): ConfState {
    return this.latestMembers.conf;
  }

  // ---- 6.824 checks ------------------------------------------------------------------------

  private connectedUp(): SimNode[] {
    return this.ids.map((id) => this.node(id)).filter((n) => n.up && this.network.isConnected(n.id));
  }

  /** 6.824's checkOneLeader: polls ~5 s; fails on two leaders in a term or none at all. */
  checkOneLeader(): NodeId {
    for (let round = 0; round < 10; round++) {
      this.runFor(450 + this.harnessRandom.int(100));
      const leaders = new Map<number, NodeId[]>();
      for (const node of this.connectedUp()) {
        if (node.raw.role !== StateRole.Leader) continue;
        const list = leaders.get(node.raw.term) ?? [];
        list.push(node.id);
        leaders.set(node.raw.term, list);
      }
      let lastTerm = -1;
      for (const [term, list] of leaders) {
        if (list.length > 1) throw this.fail(new SimFailure(`term ${term} has ${list.length} (>1) leaders`));
        lastTerm = Math.max(lastTerm, term);
      }
      if (leaders.size > 0) return leaders.get(lastTerm)![0]!;
    }
    throw this.fail(new SimFailure('expected one leader, got none'));
  }

  /** 6.824's checkNoLeader: no connected node believes it leads. */
  checkNoLeader(): void {
    for (const node of this.connectedUp()) {
      if (node.isLeader)
        throw this.fail(
          new SimFailure(`expected no leader among connected servers, but ${node.id} claims to be leader`),
        );
    }
  }

  /** 6.824's checkTerms: connected nodes agree on the term; returns it. */
  checkTerms(): number {
    let term = -1;
    for (const node of this.connectedUp()) {
      if (term === -1) term = node.raw.term;
      else if (term !== node.raw.term) throw this.fail(new SimFailure('servers disagree on term'));
    }
    return term;
  }

  /**
   * 6.824's one(): tries every connected node's start for up to 10 s; after a successful start,
   * waits up to 2 s for `expectedServers` nodes to apply exactly this value. Returns its index.
   */
  one(value: string | number, expectedServers: number, retry: boolean): number {
    const data = encodeValue(value);
    const wanted = String(value);
    const deadline = this.now + 10_000;
    let starts = 0;
    while (this.now < deadline) {
      let index = -1;
      for (let tried = 0; tried < this.ids.length; tried++) {
        starts = (starts + 1) % this.ids.length;
        const id = this.ids[starts]!;
        const node = this.node(id);
        if (!node.up || !this.network.isConnected(id)) continue;
        const started = this.start(id, data);
        if (started) {
          index = started.index;
          break;
        }
      }
      if (index === -1) {
        this.runFor(50);
        continue;
      }
      const agreedBy = this.now + 2000;
      while (this.now < agreedBy) {
        const { count, value: applied } = this.nCommitted(index);
        if (count > 0 && count >= expectedServers && applied === wanted) {
          this.guard(() => this.checker.ack(index, data));
          return index;
        }
        this.runFor(20);
      }
      if (!retry) throw this.fail(new SimFailure(`one(${wanted}) failed to reach agreement`));
    }
    throw this.fail(new SimFailure(`one(${wanted}) failed to reach agreement`));
  }

  /**
   * 6.824's wait(): waits for n nodes to apply `index`; returns the value, or -1 when some node
   * moved past `startTerm` (pass -1 to not watch terms).
   */
  wait(index: number, n: number, startTerm: number): string | -1 {
    let toMs = 10;
    for (let i = 0; i < 30; i++) {
      if (this.nCommitted(index).count >= n) break;
      this.runFor(toMs);
      if (toMs < 1000) toMs *= 2;
      if (startTerm > -1) {
        for (const node of this.nodes.values()) if (node.up && node.raw.term > startTerm) return -1;
      }
    }
    const { count, value } = this.nCommitted(index);
    if (count < n) throw this.fail(new SimFailure(`only ${count} decided for index ${index}; wanted ${n}`));
    return value ?? '';
  }

  /** The final checks of a run: every acknowledged value is still in the history. */
  finish(): void {
    this.throwIfFailed();
    this.guard(() => this.checker.finalCheck());
  }

  /** The last events, formatted. */
  traceLines(): string[] {
    return this.tracer.lines();
  }
}

function networkProfile(options: ClusterOptions): NetworkFaults {
  const base = options.reliable === false ? UNRELIABLE_NETWORK : RELIABLE_NETWORK;
  return { ...base, ...(options.longReordering ? LONG_REORDERING : {}), ...options.network };
}
