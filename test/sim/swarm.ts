// Swarm testing: one seed draws a cluster shape, the features it uses and its own fault rates,
// runs a fault phase with clients proposing, then heals everything and requires progress.

import { ConfChangeType, type NodeId, type RaftConfig } from '../../src/raft/index.js';
import { InvariantViolation } from './checker.js';
import { Cluster, SimFailure } from './cluster.js';
import { DEFAULT_DISK, type DiskModel, type Persistence } from './disk.js';
import { type NetworkFaults, RELIABLE_NETWORK, UNRELIABLE_NETWORK } from './network.js';
import { mixSeed, SimRandom } from './random.js';
import { bytesEqual } from './state-machine.js';

export interface SwarmParams {
  nodes: number;
  tickMs: number;
  persistence: Persistence;
  snapshotEvery: number;
  snapshotKeepEntries: number;
  confChanges: boolean;
  faultPhaseMs: number;
  network: NetworkFaults;
  disk: DiskModel;
  raft: Partial<RaftConfig>;
  crashPerSec: number;
  /** Chance that a crash takes every node down at once (disk mode only). */
  crashAllRate: number;
  downtimeMaxMs: number;
  partitionPerSec: number;
  partitionMaxMs: number;
  pausePerSec: number;
  transferPerSec: number;
  proposalIntervalMs: number;
  maxBatch: number;
  /** Chance, per proposal, of crashing the leader right after it (6.824's Figure 8 pattern). */
  leaderKillRate: number;
  /** Chance that a newly elected leader is crashed within leaderChurnMaxMs of its election. */
  leaderChurnRate: number;
  leaderChurnMaxMs: number;
  /** Mean time between linearizable reads by clients (0: no reads). */
  readIntervalMs: number;
  /** Which family of runs this seed drew. */
  profile: 'swarm' | 'figure8';
}

export interface SeedResult {
  seed: number;
  violation: InvariantViolation | SimFailure | null;
  params: SwarmParams;
  virtualMs: number;
  proposed: number;
  acked: number;
  readsStarted: number;
  readsAnswered: number;
  crashes: number;
  partitions: number;
  messages: number;
  digest: number;
}

/** After the faults stop, a leader and a commit on every member must come within this. */
export const LIVENESS_BOUND_MS = 10_000;
const SPARE_NODES = 3;
const MAX_VOTERS = 7;
const MIN_VOTERS = 3;
/** Clients hold back while the leader has this many entries uncommitted (bounded in-flight). */
const MAX_UNCOMMITTED_ENTRIES = 256;

export function drawParams(seed: number): SwarmParams {
  const rng = new SimRandom(mixSeed(seed, 0x5eed));
  const params = drawSwarmParams(rng);
  const drawn = rng.chance(0.25) ? figure8(params, rng) : params;
  // Reads draw from a stream of their own, so adding them left every seed's other draws as they were.
  const reads = new SimRandom(mixSeed(seed, 0x4ead));
  return { ...drawn, readIntervalMs: reads.chance(0.75) ? reads.floatIn(2, 40) : 0 };
}

/**
 * 6.824's Figure 8 test: rounds of "propose on the leader, wait 0–13 ms, crash it", keeping a
 * majority up. An old-term entry then often reaches a majority without the new leader's no-op,
 * which is what the paper's Figure 8 needs; one entry per App makes acks split per entry.
 */
function figure8(p: SwarmParams, rng: SimRandom): SwarmParams {
  const tiny = rng.chance(0.7);
  return {
    ...p,
    profile: 'figure8',
    // Short election timeouts: many short-lived leaders in one run.
    tickMs: rng.intIn(10, 30),
    nodes: [3, 5, 7][rng.weighted([6, 3, 1])]!,
    persistence: 'disk',
    snapshotEvery: 0,
    confChanges: false,
    faultPhaseMs: rng.intIn(5000, 15_000),
    raft: { ...p.raft, ...(tiny ? { maxBytesPerMessage: 1, maxInflightMessages: rng.intIn(1, 3) } : {}) },
    network: {
      ...RELIABLE_NETWORK,
      minDelayMs: 0.5,
      maxDelayMs: rng.floatIn(2, 12),
      dropRate: rng.pick([0, 0, 0.05, 0.1]),
    },
    crashPerSec: 0,
    partitionPerSec: rng.pick([0, 0, 0.3]),
    pausePerSec: 0,
    transferPerSec: 0,
    maxBatch: 1,
    leaderKillRate: 0,
    leaderChurnRate: rng.pick([0, 0.5, 0.8]),
    leaderChurnMaxMs: rng.intIn(2, 20),
  };
}

function drawSwarmParams(rng: SimRandom): SwarmParams {
  const nodes = [1, 3, 5, 7][rng.weighted([6, 45, 40, 9])]!;
  const persistence: Persistence = nodes >= 3 && rng.chance(0.25) ? 'memory' : 'disk';
  const snapshots = rng.chance(0.4);
  const checkQuorum = rng.chance(0.8);
  const raft: Partial<RaftConfig> = {
    preVote: rng.chance(0.8),
    checkQuorum,
    leaseReads: checkQuorum,
    heartbeatTicks: rng.chance(0.2) ? rng.intIn(2, 3) : 1,
  };
  if (rng.chance(0.3)) raft.maxBytesPerMessage = rng.intIn(1, 300);
  // With entries one per App, a full window of 256 resent after every loss makes runs crawl.
  if (raft.maxBytesPerMessage !== undefined || rng.chance(0.3)) raft.maxInflightMessages = rng.intIn(1, 16);
  const minLatencyMs = rng.floatIn(0.05, 0.5);
  // One entry per App replicates slowly: offer less load, or followers never catch up in time.
  const tinyMessages = raft.maxBytesPerMessage !== undefined;
  return {
    nodes,
    tickMs: 50,
    persistence,
    snapshotEvery: snapshots ? rng.intIn(3, 40) : 0,
    snapshotKeepEntries: rng.pick([0, 0, 2, 10]),
    confChanges: persistence === 'disk' && nodes >= 3 && rng.chance(0.3),
    faultPhaseMs: rng.intIn(3000, 10_000),
    network: drawNetwork(rng),
    disk: {
      ...DEFAULT_DISK,
      minLatencyMs,
      maxLatencyMs: minLatencyMs + rng.floatIn(0.1, 5),
      slowRate: rng.chance(0.3) ? rng.floatIn(0.01, 0.1) : 0,
      slowMinMs: 10,
      slowMaxMs: rng.intIn(20, 300),
    },
    raft,
    crashPerSec: rng.chance(0.75) ? rng.floatIn(0.1, 1.5) : 0,
    crashAllRate: persistence === 'disk' ? rng.pick([0, 0.05, 0.2]) : 0,
    downtimeMaxMs: rng.intIn(50, 3000),
    partitionPerSec: rng.chance(0.7) ? rng.floatIn(0.1, 1) : 0,
    partitionMaxMs: rng.intIn(100, 3000),
    pausePerSec: rng.chance(0.3) ? rng.floatIn(0.1, 0.5) : 0,
    transferPerSec: rng.chance(0.2) ? rng.floatIn(0.1, 0.5) : 0,
    proposalIntervalMs: rng.floatIn(tinyMessages ? 15 : 3, 60),
    maxBatch: rng.pick(tinyMessages ? [1, 1, 3] : [1, 1, 3, 8]),
    leaderKillRate: rng.chance(0.3) ? rng.floatIn(0.02, 0.2) : 0,
    leaderChurnRate: rng.chance(0.2) ? rng.floatIn(0.05, 0.5) : 0,
    leaderChurnMaxMs: rng.intIn(5, 500),
    readIntervalMs: 0,
    profile: 'swarm',
  };
}

function drawNetwork(rng: SimRandom): NetworkFaults {
  const fifo = rng.chance(0.7);
  return { ...drawNetworkProfile(rng), fifo };
}

function drawNetworkProfile(rng: SimRandom): NetworkFaults {
  switch (rng.weighted([25, 35, 20, 20])) {
    case 0: // calm
      return { ...RELIABLE_NETWORK, maxDelayMs: rng.floatIn(0.5, 5) };
    case 1: // lossy
      return { ...RELIABLE_NETWORK, maxDelayMs: rng.floatIn(1, 20), dropRate: rng.floatIn(0, 0.3) };
    case 2: // 6.824
      return {
        ...UNRELIABLE_NETWORK,
        longDelayRate: rng.chance(0.5) ? 2 / 3 : 0,
        longDelayRepliesOnly: true,
      };
    default: // chaos: loss, duplication and reordering of everything
      return {
        ...RELIABLE_NETWORK,
        maxDelayMs: rng.floatIn(1, 30),
        dropRate: rng.floatIn(0, 0.2),
        duplicateRate: rng.floatIn(0, 0.1),
        longDelayRate: rng.floatIn(0, 0.1),
        longDelayMaxMs: rng.intIn(300, 3000),
      };
  }
}

/** One seed's run: the fault phase, then the liveness phase. Fault generators live here. */
class SwarmRun {
  readonly cluster: Cluster;
  private readonly faults: SimRandom;
  private readonly client: SimRandom;
  private readonly reader: SimRandom;
  private stopped = false;
  private partitioned = false;
  private nextValue = 0;
  private readonly everMember = new Set<NodeId>();
  crashes = 0;
  partitions = 0;

  constructor(
    readonly seed: number,
    readonly params: SwarmParams,
    traceSink: ((line: string) => void) | null,
  ) {
    const root = new SimRandom(mixSeed(seed, 0xfa17));
    this.faults = root.fork(1);
    this.client = root.fork(2);
    this.reader = root.fork(3);
    this.cluster = new Cluster({
      seed,
      nodes: params.nodes,
      tickMs: params.tickMs,
      spareNodes: params.confChanges ? SPARE_NODES : 0,
      raft: params.raft,
      network: params.network,
      disk: params.disk,
      persistence: params.persistence,
      snapshotEvery: params.snapshotEvery,
      snapshotKeepEntries: params.snapshotKeepEntries,
      uniqueValues: true,
      traceSink: traceSink ?? undefined,
      onNewLeader: (id) => this.maybeChurn(id),
    });
    for (let id = 1; id <= params.nodes; id++) this.everMember.add(id);
  }

  run(): void {
    const p = this.params;
    this.every(p.crashPerSec, () => this.crashSome());
    this.every(p.partitionPerSec, () => this.partitionSome());
    this.every(p.pausePerSec, () => this.pauseSome());
    this.every(p.transferPerSec, () => this.transferSome());
    if (p.confChanges) this.every(1.5, () => this.changeMembership());
    if (p.profile === 'figure8') this.cluster.schedule(0, () => this.figure8Round());
    else this.cluster.schedule(this.client.floatIn(0, p.proposalIntervalMs), () => this.proposeLoop());
    if (p.readIntervalMs > 0)
      this.cluster.schedule(this.reader.floatIn(0, p.readIntervalMs), () => this.readLoop());
    this.cluster.runFor(p.faultPhaseMs);
    this.stopped = true;
    this.liveness();
    this.cluster.finish();
  }

  /** Calls `action` at exponentially distributed intervals while the fault phase lasts. */
  private every(ratePerSec: number, action: () => void): void {
    if (ratePerSec <= 0) return;
    const next = (): void => {
      if (this.stopped) return;
      action();
      this.cluster.schedule(this.exponentialMs(ratePerSec), next);
    };
    this.cluster.schedule(this.exponentialMs(ratePerSec), next);
  }

  private exponentialMs(ratePerSec: number): number {
    return (-Math.log(1 - this.faults.float()) / ratePerSec) * 1000;
  }

  // ---- faults ------------------------------------------------------------------------------

  /** Running nodes that may crash now without breaking what this persistence mode promises. */
  private crashable(): NodeId[] {
    const c = this.cluster;
    const up = c.ids.filter((id) => c.isUp(id));
    if (this.params.persistence === 'disk') return up;
    // Memory mode keeps data only on a majority: never let a majority be down or recovering.
    const voters = c.members().voters;
    const tolerated = (voters.length - 1) >> 1;
    let atRisk = 0;
    for (const id of voters) if (!c.isUp(id) || c.status(id).recovering) atRisk++;
    if (atRisk >= tolerated) return up.filter((id) => !voters.includes(id));
    return up;
  }

  private crashSome(): void {
    const c = this.cluster;
    if (this.faults.chance(this.params.crashAllRate)) {
      for (const id of c.upIds()) this.crashFor(id);
      return;
    }
    const candidates = this.crashable();
    if (candidates.length > 0) this.crashFor(this.faults.pick(candidates));
  }

  private crashFor(id: NodeId): void {
    const c = this.cluster;
    c.crash(id);
    this.crashes++;
    c.schedule(this.faults.floatIn(10, this.params.downtimeMaxMs), () => {
      if (!c.isUp(id) && !c.node(id).retired) c.restart(id);
    });
  }

  private partitionSome(): void {
    if (this.partitioned) return;
    const c = this.cluster;
    const ids = c.ids.filter((id) => c.isUp(id));
    if (ids.length < 2) return;
    const leader = c.leader();
    switch (this.faults.weighted([3, 3, 3, 2])) {
      case 0:
        c.disconnect(this.faults.pick(ids));
        break;
      case 1:
        c.disconnect(leader ?? this.faults.pick(ids));
        break;
      case 2: {
        const shuffled = this.faults.shuffled(c.ids);
        const cut = this.faults.intIn(1, shuffled.length - 1);
        c.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
        break;
      }
      default: {
        // One-way: some links carry traffic in one direction only.
        const from = leader ?? this.faults.pick(ids);
        for (const to of ids) if (to !== from && this.faults.chance(0.6)) c.cutLink(from, to);
        if (this.faults.chance(0.5)) {
          for (const to of ids) if (to !== from && this.faults.chance(0.3)) c.cutLink(to, from);
        }
      }
    }
    this.partitioned = true;
    this.partitions++;
    c.schedule(this.faults.floatIn(50, this.params.partitionMaxMs), () => {
      c.heal();
      this.partitioned = false;
    });
  }

  private pauseSome(): void {
    const c = this.cluster;
    const ids = c.upIds();
    if (ids.length === 0) return;
    const id = this.faults.chance(0.5) ? (c.leader() ?? this.faults.pick(ids)) : this.faults.pick(ids);
    c.pause(id, this.faults.chance(0.5));
    c.schedule(this.faults.floatIn(50, 1500), () => c.resume(id));
  }

  private transferSome(): void {
    const c = this.cluster;
    const leader = c.leader();
    if (leader === undefined || c.node(leader).paused) return;
    const voters = c.members().voters.filter((id) => id !== leader);
    if (voters.length > 0) c.transferLeader(leader, this.faults.pick(voters));
  }

  private changeMembership(): void {
    const c = this.cluster;
    this.retireRemoved();
    const leader = c.leader();
    if (leader === undefined || c.node(leader).paused) return;
    const { voters, learners } = c.node(leader).sm.confState;
    const spare = c.ids.find(
      (id) => !this.everMember.has(id) && !c.node(id).retired && id > this.params.nodes,
    );
    const choice = this.faults.weighted([
      spare !== undefined ? 3 : 0,
      learners.length > 0 && voters.length < MAX_VOTERS ? 3 : 0,
      learners.length > 0 ? 1 : 0,
      voters.length > MIN_VOTERS ? 2 : 0,
    ]);
    if (choice === 0 && spare !== undefined) {
      c.addNode(spare);
      c.proposeConfChange(leader, { type: ConfChangeType.AddLearner, nodeId: spare });
    } else if (choice === 1 && learners.length > 0) {
      c.proposeConfChange(leader, { type: ConfChangeType.AddVoter, nodeId: this.faults.pick(learners) });
    } else if (choice === 2 && learners.length > 0) {
      c.proposeConfChange(leader, { type: ConfChangeType.Remove, nodeId: this.faults.pick(learners) });
    } else if (choice === 3 && voters.length > MIN_VOTERS) {
      c.proposeConfChange(leader, { type: ConfChangeType.Remove, nodeId: this.faults.pick(voters) });
    }
  }

  /** A node that was a member and is not in the latest committed membership leaves for good. */
  private retireRemoved(): void {
    const c = this.cluster;
    const { voters, learners } = c.members();
    for (const id of [...voters, ...learners]) this.everMember.add(id);
    for (const id of this.everMember) {
      if (!voters.includes(id) && !learners.includes(id) && !c.node(id).retired) c.retire(id);
    }
  }

  // ---- clients -----------------------------------------------------------------------------

  private proposeLoop(): void {
    if (this.stopped) return;
    const c = this.cluster;
    const up = c.upIds();
    const target = this.client.chance(0.85) ? c.leader() : up.length > 0 ? this.client.pick(up) : undefined;
    const backlog = target === undefined ? 0 : c.raw(target).lastIndex - c.raw(target).commitIndex;
    if (target !== undefined && backlog < MAX_UNCOMMITTED_ENTRIES) {
      const count = this.client.intIn(1, this.params.maxBatch);
      const values = Array.from({ length: count }, () => this.newValue());
      const index = c.propose(target, values);
      if (index !== null && this.faults.chance(this.params.leaderKillRate)) {
        const candidates = this.crashable();
        if (candidates.includes(target)) c.schedule(this.faults.floatIn(0, 30), () => this.crashIfUp(target));
      }
    }
    c.schedule(this.client.floatIn(0.5, 1.5) * this.params.proposalIntervalMs, () => this.proposeLoop());
  }

  /**
   * Linearizable reads at the leader, at any running node, or at a paused one (whose read waits
   * for its resume, as a request waits in a stopped process's socket): the checker requires each
   * answer to cover every write acknowledged before the read started.
   */
  private readLoop(): void {
    if (this.stopped) return;
    const c = this.cluster;
    const up = c.upIds();
    const paused = up.filter((id) => c.node(id).paused);
    const choice = this.reader.weighted([3, up.length > 0 ? 4 : 0, paused.length > 0 ? 2 : 0]);
    const target = choice === 0 ? c.leader() : choice === 1 ? this.reader.pick(up) : this.reader.pick(paused);
    if (target !== undefined) c.read(target);
    c.schedule(this.reader.floatIn(0.5, 1.5) * this.params.readIntervalMs, () => this.readLoop());
  }

  /** One round of 6.824's Figure 8: propose on the leader, wait a little, crash it. */
  private figure8Round(): void {
    if (this.stopped) return;
    const c = this.cluster;
    const leader = c.leader();
    if (leader !== undefined) c.propose(leader, [this.newValue()]);
    const waitMs = this.client.chance(0.1) ? this.client.floatIn(0, 250) : this.client.floatIn(0, 13);
    c.schedule(waitMs, () => {
      if (this.stopped) return;
      if (leader !== undefined && c.isUp(leader)) {
        c.crash(leader);
        this.crashes++;
      }
      const down = c.ids.filter((id) => !c.isUp(id));
      if (c.ids.length - down.length <= c.ids.length >> 1) c.restart(this.client.pick(down));
      this.figure8Round();
    });
  }

  /** A leader that dies young: what Figure 8's old-term commit needs. */
  private maybeChurn(id: NodeId): void {
    if (this.stopped || !this.faults.chance(this.params.leaderChurnRate)) return;
    this.cluster.schedule(this.faults.floatIn(0, this.params.leaderChurnMaxMs), () => this.crashIfUp(id));
  }

  private crashIfUp(id: NodeId): void {
    if (!this.stopped && this.cluster.isUp(id) && this.crashable().includes(id)) this.crashFor(id);
  }

  private newValue(): Uint8Array {
    return new TextEncoder().encode(`s${this.seed}-${this.nextValue++}`);
  }

  // ---- liveness ----------------------------------------------------------------------------

  /** Heal everything, restart everyone; then a leader and a new commit on every member. */
  private liveness(): void {
    const c = this.cluster;
    c.heal();
    this.partitioned = false;
    c.network.faults = { ...RELIABLE_NETWORK, maxDelayMs: Math.min(this.params.network.maxDelayMs, 30) };
    for (const id of c.ids) if (c.isUp(id) && c.node(id).paused) c.resume(id);
    for (const id of c.ids) {
      const node = c.node(id);
      if (!node.up && !node.retired && node.incarnation > 0) c.restart(id);
    }
    const highestBefore = c.checker.highestCommit;
    const deadline = c.nowMs + LIVENESS_BOUND_MS;
    let pending: { node: NodeId; index: number; data: Uint8Array; atMs: number } | null = null;
    while (c.nowMs < deadline) {
      if (pending && this.appliedEverywhere(pending.index, pending.data)) {
        if (pending.index <= highestBefore) {
          throw new InvariantViolation(
            'commit monotonic',
            `new entry at ${pending.index} ≤ earlier commit ${highestBefore}`,
          );
        }
        return;
      }
      const leader = c.leader();
      const stale = pending && (pending.node !== leader || c.nowMs - pending.atMs > 2000);
      if (leader !== undefined && (!pending || stale)) {
        const data = this.newValue();
        const index = c.propose(leader, [data]);
        if (index !== null) pending = { node: leader, index, data, atMs: c.nowMs };
      }
      c.runFor(10);
    }
    throw new InvariantViolation(
      'liveness',
      `no leader and commit on every member within ${LIVENESS_BOUND_MS} ms: ${this.describe()}`,
    );
  }

  private appliedEverywhere(index: number, data: Uint8Array): boolean {
    const c = this.cluster;
    const value = c.checker.appliedValue(index);
    if (!value || !bytesEqual(value, data)) return false;
    const { voters, learners } = c.members();
    for (const id of [...voters, ...learners]) if (c.node(id).sm.appliedIndex < index) return false;
    return true;
  }

  private describe(): string {
    const c = this.cluster;
    return c.ids
      .filter((id) => c.node(id).incarnation > 0)
      .map((id) => {
        const n = c.node(id);
        if (!n.up) return `n${id} down`;
        const role = ['F', 'P', 'C', 'L'][n.raw.role] ?? '?';
        return `n${id} ${role} t${n.raw.term} commit ${n.raw.commitIndex} applied ${n.sm.appliedIndex} last ${n.raw.lastIndex}`;
      })
      .join('; ');
  }
}

/** Runs one seed; never throws for a violation, returns it. */
export function runSeed(seed: number, traceSink: ((line: string) => void) | null = null): SeedResult {
  const params = drawParams(seed);
  const run = new SwarmRun(seed, params, traceSink);
  let violation: InvariantViolation | SimFailure | null = null;
  try {
    run.run();
  } catch (error) {
    violation = asViolation(run.cluster, error);
  }
  const c = run.cluster;
  return {
    seed,
    violation,
    params,
    virtualMs: c.nowMs,
    proposed: c.clientStats.proposed,
    acked: c.clientStats.acked,
    readsStarted: c.clientStats.readsStarted,
    readsAnswered: c.clientStats.readsAnswered,
    crashes: run.crashes,
    partitions: run.partitions,
    messages: c.messagesSent(),
    digest: c.tracer.digest,
  };
}

function asViolation(cluster: Cluster, error: unknown): InvariantViolation | SimFailure {
  const v =
    error instanceof InvariantViolation || error instanceof SimFailure
      ? error
      : new InvariantViolation(
          'crash',
          error instanceof Error ? (error.stack ?? error.message) : String(error),
        );
  if (v.seed < 0) {
    v.seed = cluster.seed;
    v.timeMs = cluster.nowMs;
    v.trace = cluster.traceLines();
  }
  return v;
}

/** A one-line summary of what a seed drew. */
export function describeParams(p: SwarmParams): string {
  const features = [
    p.profile,
    p.persistence,
    p.snapshotEvery ? `snapshot/${p.snapshotEvery}` : '',
    p.confChanges ? 'conf-changes' : '',
    p.raft.preVote ? 'prevote' : '',
    p.raft.checkQuorum ? 'checkquorum' : '',
    p.raft.maxBytesPerMessage ? `msg≤${p.raft.maxBytesPerMessage}B` : '',
    p.raft.leaseReads ? 'lease' : '',
    p.readIntervalMs ? `reads/${p.readIntervalMs.toFixed(0)}ms` : '',
  ].filter(Boolean);
  return (
    `${p.nodes} nodes, ${features.join(' ')}; drop ${p.network.dropRate.toFixed(2)} dup ${p.network.duplicateRate.toFixed(2)} ` +
    `long ${p.network.longDelayRate.toFixed(2)}; crash/s ${p.crashPerSec.toFixed(2)} partition/s ${p.partitionPerSec.toFixed(2)} ` +
    `pause/s ${p.pausePerSec.toFixed(2)} kill ${p.leaderKillRate.toFixed(2)} churn ${p.leaderChurnRate.toFixed(2)}; fault phase ${p.faultPhaseMs} ms`
  );
}
