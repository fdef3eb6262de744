// Tests of the simulator itself (determinism, the disk and crash model, the checker's teeth, the
// harness) and a swarm of seeds inside npm test. The full 2000-seed run is `npm run sim`.

import { describe, expect, it } from 'vitest';
import { EntryType, MessageType, StateRole } from '../../src/raft/index.js';
import { InvariantChecker, InvariantViolation } from './checker.js';
import { Cluster, encodeValue } from './cluster.js';
import { DEFAULT_DISK, SimDisk } from './disk.js';
import { SimRandom } from './random.js';
import { EventKind, EventQueue } from './scheduler.js';
import { StateMachine } from './state-machine.js';
import { runSeed } from './swarm.js';

const SWARM_SEEDS = 500;

function traceOf(seed: number): string[] {
  const lines: string[] = [];
  runSeed(seed, (line) => lines.push(line));
  return lines;
}

describe('swarm', () => {
  it(`runs ${SWARM_SEEDS} seeds without a violation`, () => {
    const failures: string[] = [];
    for (let seed = 1; seed <= SWARM_SEEDS; seed++) {
      const result = runSeed(seed);
      if (result.violation) failures.push(`seed ${seed}: ${result.violation.message}`);
    }
    expect(failures).toEqual([]);
  });
});

describe('determinism', () => {
  it('replays a seed event for event', () => {
    const first = traceOf(7);
    const second = traceOf(7);
    expect(first.length).toBeGreaterThan(200);
    expect(second).toEqual(first);
    expect(runSeed(7).digest).toBe(runSeed(7).digest);
  });

  it('runs differently for different seeds', () => {
    const digests = new Set([1, 2, 3, 4, 5].map((seed) => runSeed(seed).digest));
    expect(digests.size).toBe(5);
  });

  it('orders events by time, then by scheduling order', () => {
    const queue = new EventQueue();
    const base = {
      kind: EventKind.Call,
      node: 0,
      incarnation: 0,
      targetIncarnation: 0,
      message: null,
      call: null,
    };
    for (const [timeMs, node] of [
      [5, 1],
      [1, 2],
      [5, 3],
      [0, 4],
      [1, 5],
    ] as const) {
      queue.push({ ...base, timeMs, node });
    }
    const order: number[] = [];
    for (let e = queue.pop(); e; e = queue.pop()) order.push(e.node);
    expect(order).toEqual([4, 2, 5, 1, 3]);
  });

  it('forks independent, repeatable random streams', () => {
    const a = new SimRandom(42).fork(1);
    const b = new SimRandom(42).fork(1);
    const c = new SimRandom(42).fork(2);
    const draw = (r: SimRandom) => Array.from({ length: 5 }, () => r.next32());
    expect(draw(a)).toEqual(draw(b));
    expect(draw(new SimRandom(42).fork(1))).not.toEqual(draw(c));
  });
});

describe('disk and crashes', () => {
  const entry = (index: number) => ({ term: 1, index, type: EntryType.Normal, data: encodeValue(index) });

  it('loses writes still in flight at a crash and keeps completed ones', () => {
    const disk = new SimDisk('disk', { ...DEFAULT_DISK, tearRate: 0 });
    const rng = new SimRandom(1);
    const write = (first: number) => ({
      persistId: first,
      snapshot: null,
      entries: [entry(first), entry(first + 1)],
      hardState: { term: 1, vote: 1, commit: first - 1 },
      appSnapshot: false,
      compactIndex: 0,
    });
    disk.enqueue(write(1), 0, rng);
    disk.enqueue(write(3), 0, rng);
    disk.completeHead();
    expect(disk.crash(5, rng)).toEqual({ lostWrites: 1, tornEntries: -1 });
    expect(disk.log.lastIndex()).toBe(2);
    expect(disk.hardState.commit).toBe(0);
  });

  it('can tear the write in progress: a prefix of its entries lands, its hard state does not', () => {
    const disk = new SimDisk('disk', { ...DEFAULT_DISK, tearRate: 1 });
    const rng = new SimRandom(3);
    const entries = [1, 2, 3, 4, 5].map(entry);
    const hardState = { term: 1, vote: 1, commit: 0 };
    disk.enqueue(
      { persistId: 1, snapshot: null, entries, hardState, appSnapshot: false, compactIndex: 0 },
      0,
      rng,
    );
    const outcome = disk.crash(1, rng);
    expect(outcome.tornEntries).toBeGreaterThanOrEqual(0);
    expect(outcome.tornEntries).toBeLessThan(5);
    expect(disk.log.lastIndex()).toBe(outcome.tornEntries);
    expect(disk.hardState.term).toBe(0);
  });

  it('drops a follower’s unsynced entries at a crash, and it catches up after restart', () => {
    const c = new Cluster({ seed: 3, nodes: 3 });
    const leader = c.checkOneLeader();
    const follower = leader === 1 ? 2 : 1;
    c.one('a', 3, false);
    c.setDisk(follower, { minLatencyMs: 500, maxLatencyMs: 500 });
    const index = c.start(leader, 'b')!.index;
    c.runUntil(() => c.node(follower).storage.lastIndex() >= index, 100);
    expect(c.node(follower).disk.log.lastIndex()).toBeLessThan(index);
    c.crash(follower);
    c.setDisk(follower, { minLatencyMs: 0.1, maxLatencyMs: 1 });
    c.restart(follower);
    expect(c.node(follower).storage.lastIndex()).toBeLessThan(index);
    expect(c.wait(index, 3, -1)).toBe('b');
  });

  it('restarts a memory-mode replica empty and recovering, then catches it up', () => {
    const c = new Cluster({ seed: 4, nodes: 3, persistence: 'memory' });
    const leader = c.checkOneLeader();
    const follower = leader === 3 ? 2 : 3;
    for (let i = 0; i < 5; i++) c.one(`v${i}`, 3, false);
    c.crash(follower);
    c.restart(follower);
    expect(c.node(follower).storage.lastIndex()).toBe(0);
    expect(c.status(follower).recovering).toBe(true);
    const index = c.one('after', 3, false);
    expect(c.runUntil(() => !c.status(follower).recovering, 2000)).toBe(true);
    expect(c.nCommitted(index).count).toBe(3);
  });

  it('a candidate leads only once its own vote is durable', () => {
    // Regression (FINDINGS.md #3): winning on others' votes with a slow own write let a node
    // crash, come back in the old term, and lead the same term a second time.
    const c = new Cluster({
      seed: 1,
      nodes: 3,
      raft: { preVote: false, checkQuorum: false, leaseReads: false },
    });
    const leader = c.checkOneLeader();
    const candidate = leader === 1 ? 2 : 1;
    c.setDisk(candidate, { minLatencyMs: 200, maxLatencyMs: 200 });
    c.campaign(candidate);
    expect(c.runUntil(() => c.node(candidate).isLeader, 150)).toBe(false);
    c.crash(candidate);
    c.setDisk(candidate, { minLatencyMs: 0.1, maxLatencyMs: 1 });
    c.restart(candidate);
    c.campaign(candidate);
    c.runFor(100);
    expect(c.checkTerms()).toBeGreaterThan(0);
  });
});

describe('the checker fails when it should', () => {
  const noNodes = () => [];
  const at = (index: number, term: number, value: string) => ({
    index,
    term,
    type: EntryType.Normal,
    data: encodeValue(value),
  });

  it('catches two different entries applied at one index', () => {
    const checker = new InvariantChecker(noNodes, false);
    const a = new StateMachine({ voters: [1], learners: [] });
    const b = new StateMachine({ voters: [1], learners: [] });
    a.apply(at(1, 1, 'x'), checker.onApply(1, a, at(1, 1, 'x')));
    expect(() => checker.onApply(2, b, at(1, 1, 'y'))).toThrow(InvariantViolation);
  });

  it('catches a gap in what a node applies', () => {
    const checker = new InvariantChecker(noNodes, false);
    const sm = new StateMachine({ voters: [1], learners: [] });
    expect(() => checker.onApply(1, sm, at(2, 1, 'x'))).toThrow(/out of order/);
  });

  it('catches two entries with one index and term (log matching)', () => {
    const checker = new InvariantChecker(noNodes, false);
    checker.onAppend(1, [at(1, 1, 'x'), at(2, 1, 'y')], 0);
    expect(() => checker.onAppend(2, [at(2, 1, 'z')], 1)).toThrow(/log matching/);
    expect(() => checker.onAppend(3, [at(2, 1, 'y')], 0)).toThrow(/log matching/);
  });

  it('catches a value applied twice when values are unique', () => {
    const checker = new InvariantChecker(noNodes, true);
    const sm = new StateMachine({ voters: [1], learners: [] });
    sm.apply(at(1, 1, 'x'), checker.onApply(1, sm, at(1, 1, 'x')));
    expect(() => checker.onApply(1, sm, at(2, 1, 'x'))).toThrow(/duplicate/);
  });

  it('catches an acknowledgement of a value that is not there', () => {
    const checker = new InvariantChecker(noNodes, false);
    expect(() => checker.ack(1, encodeValue('x'))).toThrow(/lost acknowledgement/);
  });

  it('catches a linearizable read that misses an earlier acknowledgement', () => {
    const checker = new InvariantChecker(noNodes, false);
    const read = { id: 1, startedMs: 10, mustReach: 5 };
    expect(() => checker.readAnswered(1, read, 5)).not.toThrow();
    expect(() => checker.readAnswered(1, read, 4)).toThrow(/linearizable read/);
  });
});

describe('process pauses', () => {
  // Regression: the lease was counted in ticks, and a paused node gets none, so on resume the old
  // leader answered reads from its lease while another leader had acknowledged writes. Seeds 1084,
  // 1117, 1426, 1656 and 1900 of `npm run sim` failed the 'linearizable read' check that way.
  it.each([21, 22, 23])(
    'a leader paused past its lease answers no stale read on resume (seed %i)',
    (seed) => {
      const c = new Cluster({ seed, nodes: 3 });
      const old = c.checkOneLeader();
      c.one('before', 3, false);
      c.runFor(200);
      expect(c.status(old).leaseValid).toBe(true);
      // The peers' links to it give up while it is stopped: on resume the read comes first.
      c.pause(old, true);
      expect(c.runUntil(() => c.leader() !== old && c.leader() !== undefined, 5000)).toBe(true);
      const acknowledged = c.one('during the pause', 2, true);
      expect(c.checker.highestAcked).toBe(acknowledged);
      // The read waits in the paused node's inbox and is handled on resume, before any tick.
      c.read(old);
      c.resume(old);
      c.runFor(1000);
      c.finish();
      expect(c.clientStats.readsStarted).toBe(1);
      expect(c.node(old).raw.role).not.toBe(StateRole.Leader);
    },
  );

  it('a paused follower still answers reads through the leader on resume', () => {
    const c = new Cluster({ seed: 24, nodes: 3 });
    const leader = c.checkOneLeader();
    const follower = leader === 1 ? 2 : 1;
    c.one('x', 3, false);
    c.pause(follower);
    c.runFor(300);
    const index = c.one('y', 2, true);
    c.read(follower);
    c.resume(follower);
    expect(c.runUntil(() => c.clientStats.readsAnswered === 1, 1000)).toBe(true);
    c.finish();
    expect(index).toBeGreaterThan(0);
  });
});

describe('the 6.824 harness', () => {
  it('elects one leader and agrees on consecutive indexes', () => {
    const c = new Cluster({ seed: 11, nodes: 3 });
    const leader = c.checkOneLeader();
    const term = c.checkTerms();
    const first = c.one(101, 3, false);
    expect(c.one(102, 3, false)).toBe(first + 1);
    expect(c.one(103, 3, false)).toBe(first + 2);
    expect(c.checkOneLeader()).toBe(leader);
    expect(c.checkTerms()).toBe(term);
    c.finish();
  });

  it('elects a new leader when the old one is disconnected, and none without a majority', () => {
    const c = new Cluster({ seed: 12, nodes: 3 });
    const first = c.checkOneLeader();
    c.disconnect(first);
    const second = c.checkOneLeader();
    expect(second).not.toBe(first);
    c.connect(first);
    expect(c.checkOneLeader()).toBe(second);
    c.disconnect(second);
    c.disconnect((second % 3) + 1);
    c.runFor(2000);
    c.checkNoLeader();
  });

  it('counts RPCs and bytes', () => {
    const c = new Cluster({ seed: 13, nodes: 3 });
    c.checkOneLeader();
    const bytesBefore = c.bytesSent();
    c.one('x'.repeat(5000), 3, false);
    expect(c.bytesSent() - bytesBefore).toBeGreaterThan(2 * 5000);
    expect(c.bytesSent() - bytesBefore).toBeLessThan(3 * 5000 + 50_000);
    expect(c.messageCount()).toBeLessThan(c.messagesSent());
    expect(c.network.stats.byType.get(MessageType.App)).toBeGreaterThan(0);
  });

  it('sends a snapshot to a follower that fell behind the log start', () => {
    const c = new Cluster({ seed: 14, nodes: 3, snapshotEvery: 10 });
    const leader = c.checkOneLeader();
    const behind = leader === 1 ? 2 : 1;
    c.disconnect(behind);
    for (let i = 0; i < 30; i++) c.one(`s${i}`, 2, false);
    c.connect(behind);
    const index = c.one('after', 3, true);
    expect(c.node(behind).storage.snapshot().metadata.index).toBeGreaterThan(10);
    expect(c.nCommitted(index).count).toBe(3);
    expect(c.raftStateBytes(leader)).toBeLessThan(2000);
  });

  it('survives a full crash and never goes back below the committed index', () => {
    const c = new Cluster({ seed: 15, nodes: 3, snapshotEvery: 5 });
    c.checkOneLeader();
    let index = 0;
    for (let i = 0; i < 12; i++) index = c.one(`p${i}`, 3, false);
    for (const id of c.ids) c.crash(id);
    for (const id of c.ids) c.restart(id);
    expect(c.one('later', 3, true)).toBeGreaterThan(index);
    expect(c.leader()).toBeDefined();
    expect(c.raw(c.leader()!).role).toBe(StateRole.Leader);
  });
});
