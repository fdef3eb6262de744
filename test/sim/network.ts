// The simulated network: who can reach whom (disconnects, partitions, one-way cuts), what happens to
// each message in flight (delay, loss, duplication, long delays that reorder), and the counters
// the 6.824 Count and RPCBytes bounds are asserted on.

import { isResponse, type Message, MessageType, type NodeId } from '../../src/raft/index.js';
import type { SimRandom } from './random.js';

export interface NetworkFaults {
  minDelayMs: number;
  maxDelayMs: number;
  /** Chance that a message is lost. */
  dropRate: number;
  /** Chance that a delivered message arrives twice (independent delays). */
  duplicateRate: number;
  /** Chance that a message is held back for a long delay, arriving after later ones. */
  longDelayRate: number;
  longDelayMinMs: number;
  longDelayMaxMs: number;
  /** 6.824's long reordering delays replies only. */
  longDelayRepliesOnly: boolean;
  /**
   * Messages on one link arrive in the order sent (a persistent connection, as the real transport
   * uses), except those taking a long delay. False: each message has its own delay, as labrpc.
   */
  fifo: boolean;
}

/** A healthy network: sub-millisecond to a millisecond, nothing lost. */
export const RELIABLE_NETWORK: Readonly<NetworkFaults> = Object.freeze({
  minDelayMs: 0.1,
  maxDelayMs: 1,
  dropRate: 0,
  duplicateRate: 0,
  longDelayRate: 0,
  longDelayMinMs: 200,
  longDelayMaxMs: 2200,
  longDelayRepliesOnly: false,
  fifo: true,
});

/** 6.824's unreliable network: 0–27 ms, 10% of requests and 10% of replies lost. */
export const UNRELIABLE_NETWORK: Readonly<NetworkFaults> = Object.freeze({
  ...RELIABLE_NETWORK,
  minDelayMs: 0,
  maxDelayMs: 27,
  dropRate: 0.1,
  fifo: false,
});

/** 6.824's long reordering, added on top of another profile: 2/3 of replies 200–2200 ms late. */
export const LONG_REORDERING: Readonly<Pick<NetworkFaults, 'longDelayRate' | 'longDelayRepliesOnly'>> =
  Object.freeze({ longDelayRate: 2 / 3, longDelayRepliesOnly: true });

/** Fixed cost of a message on the wire, and of each entry and snapshot in it. */
export const MESSAGE_HEADER_BYTES = 40;
export const ENTRY_HEADER_BYTES = 24;
export const SNAPSHOT_HEADER_BYTES = 64;

export function messageBytes(m: Message): number {
  let bytes = MESSAGE_HEADER_BYTES;
  if (m.type === MessageType.App) {
    for (let i = 0; i < m.entries.length; i++) bytes += m.entries[i]!.data.length + ENTRY_HEADER_BYTES;
  } else if (m.type === MessageType.Snapshot) {
    bytes += m.snapshot.data.length + SNAPSHOT_HEADER_BYTES;
  }
  return bytes;
}

/** Counters of everything handed to the network, delivered or not (as 6.824's labrpc counts). */
export class NetworkStats {
  messages = 0;
  /** Requests only: a request and its reply are one RPC in 6.824's Count test. */
  rpcs = 0;
  bytes = 0;
  readonly byType = new Map<MessageType, number>();

  record(m: Message): void {
    this.messages++;
    if (!isResponse(m.type)) this.rpcs++;
    this.bytes += messageBytes(m);
    this.byType.set(m.type, (this.byType.get(m.type) ?? 0) + 1);
  }
}

const LINK_BASE = 1 << 16;
const NO_TIMES: number[] = [];

export class SimNetwork {
  faults: NetworkFaults;
  readonly stats = new NetworkStats();
  private readonly disconnected = new Set<NodeId>();
  /** One-way cuts, as from * LINK_BASE + to. */
  private readonly cut = new Set<number>();
  /** FIFO links: the latest arrival time scheduled on each link. */
  private readonly lastArrivalMs = new Map<number, number>();

  constructor(faults: NetworkFaults) {
    this.faults = { ...faults };
  }

  isConnected(id: NodeId): boolean {
    return !this.disconnected.has(id);
  }

  /** Whether a message from `from` to `to` gets through right now. */
  linkOpen(from: NodeId, to: NodeId): boolean {
    if (this.disconnected.size > 0 && (this.disconnected.has(from) || this.disconnected.has(to)))
      return false;
    return this.cut.size === 0 || !this.cut.has(from * LINK_BASE + to);
  }

  /** Cuts a node off from everyone, both ways (6.824's disconnect). */
  disconnect(id: NodeId): void {
    this.disconnected.add(id);
  }

  connect(id: NodeId): void {
    this.disconnected.delete(id);
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(from * LINK_BASE + to);
  }

  restoreLink(from: NodeId, to: NodeId): void {
    this.cut.delete(from * LINK_BASE + to);
  }

  /** Nodes in different groups cannot talk; a node in no group is cut off from all. */
  partition(groups: readonly (readonly NodeId[])[], all: readonly NodeId[]): void {
    const groupOf = new Map<NodeId, number>();
    groups.forEach((group, g) => {
      for (const id of group) groupOf.set(id, g);
    });
    for (const a of all) {
      for (const b of all) {
        if (a === b) continue;
        const ga = groupOf.get(a);
        if (ga === undefined || ga !== groupOf.get(b)) this.cutLink(a, b);
      }
    }
  }

  /** Removes every partition, cut and disconnect. */
  heal(): void {
    this.cut.clear();
    this.disconnected.clear();
  }

  /** Arrival times of each copy of `m` sent now: none when it is lost, two when duplicated. */
  arrivalTimes(m: Message, nowMs: number, rng: SimRandom): number[] {
    const f = this.faults;
    if (f.dropRate > 0 && rng.chance(f.dropRate)) return NO_TIMES;
    const first = this.arrivalMs(m, nowMs, rng);
    if (f.duplicateRate > 0 && rng.chance(f.duplicateRate)) return [first, this.arrivalMs(m, nowMs, rng)];
    return [first];
  }

  private arrivalMs(m: Message, nowMs: number, rng: SimRandom): number {
    const f = this.faults;
    const longOk = !f.longDelayRepliesOnly || isResponse(m.type);
    if (f.longDelayRate > 0 && longOk && rng.chance(f.longDelayRate)) {
      // Skewed toward the short end, as 6.824's 200 + rand(1 + rand(2000)).
      const span = f.longDelayMaxMs - f.longDelayMinMs;
      return nowMs + f.longDelayMinMs + rng.float() * rng.float() * span;
    }
    const arrival = nowMs + rng.floatIn(f.minDelayMs, f.maxDelayMs);
    if (!f.fifo) return arrival;
    const link = m.from * LINK_BASE + m.to;
    const ordered = Math.max(arrival, this.lastArrivalMs.get(link) ?? 0);
    this.lastArrivalMs.set(link, ordered);
    return ordered;
  }
}
