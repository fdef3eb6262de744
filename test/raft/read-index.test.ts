// Linearizable reads: ReadIndex confirmed by a heartbeat quorum, served from the leader lease when
// it is valid (judged by the clock the driver hands in, so a pause cannot stretch it), and usable
// from a follower.

import { describe, expect, it } from 'vitest';
import { MessageType, StateRole } from '../../src/raft/index.js';
import { TestNetwork } from './network.js';

const SAFE = { leaseReads: false };

describe('ReadIndex (quorum-confirmed)', () => {
  it('the leader answers with its commit index after a heartbeat quorum', () => {
    const net = new TestNetwork({ voters: [1, 2, 3], config: SAFE });
    net.elect(1);
    const index = net.propose(1, 'x');
    const since = net.delivered.length;
    net.raw(1).readIndex(42);
    net.stabilize();
    expect(net.countDelivered(MessageType.Heartbeat, since)).toBe(2);
    expect(net.node(1).readStates).toEqual([{ index, requestId: 42 }]);
  });

  it('a leader cut off from the quorum does not answer', () => {
    const net = new TestNetwork({ voters: [1, 2, 3], config: SAFE });
    net.elect(1);
    net.isolate(1);
    net.raw(1).readIndex(7);
    net.stabilize();
    expect(net.node(1).readStates).toEqual([]);
    // It steps down and the pending read is dropped, never answered late.
    net.tick(25, [1]);
    net.heal();
    net.tick(30);
    expect(net.node(1).readStates).toEqual([]);
  });

  it('one quorum answer confirms every read that was waiting on it or before it', () => {
    const net = new TestNetwork({ voters: [1, 2, 3], config: SAFE });
    net.elect(1);
    net.isolate(1);
    net.raw(1).readIndex(1);
    net.raw(1).readIndex(2);
    net.stabilize();
    net.heal();
    net.tick(1);
    expect(net.node(1).readStates.map((r) => r.requestId)).toEqual([1, 2]);
  });

  it('a follower read goes through the leader and returns the leader commit index', () => {
    const net = new TestNetwork({ voters: [1, 2, 3], config: SAFE });
    net.elect(1);
    const index = net.propose(1, 'x');
    net.raw(3).readIndex(9);
    net.stabilize();
    expect(net.node(3).readStates).toEqual([{ index, requestId: 9 }]);
  });

  it('a read on a leader whose first-term commit is pending waits for it', () => {
    const net = new TestNetwork({ voters: [1, 2, 3], config: SAFE });
    net.dropTypes.add(MessageType.App);
    net.elect(1);
    const leader = net.raw(1);
    // Node 1 won, but its no-op is not committed: its commit index may lag.
    expect(leader.commitIndex).toBe(0);
    leader.readIndex(3);
    net.stabilize();
    expect(net.node(1).readStates).toEqual([]);
    net.heal();
    net.tick(1);
    expect(net.node(1).readStates).toEqual([{ index: 1, requestId: 3 }]);
  });
});

describe('leader lease', () => {
  it('a valid lease answers a read at once, without a heartbeat round', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    net.tick(1);
    expect(net.raw(1).status().leaseValid).toBe(true);
    const since = net.delivered.length;
    net.raw(1).readIndex(11);
    net.stabilize();
    expect(net.countDelivered(MessageType.Heartbeat, since)).toBe(0);
    expect(net.node(1).readStates.map((r) => r.requestId)).toEqual([11]);
  });

  it('the lease expires before the followers could elect another leader', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    net.tick(1);
    net.isolate(1);
    // electionTicks 10, leaseMarginTicks 2: the lease ends 8 ticks after the last answered round.
    let expiredAfter = -1;
    for (let t = 1; t <= 10; t++) {
      net.tick(1, [1]);
      if (!net.raw(1).status().leaseValid) {
        expiredAfter = t;
        break;
      }
    }
    expect(expiredAfter).toBeGreaterThan(0);
    expect(expiredAfter).toBeLessThanOrEqual(8);
    // The followers do not even start an election while the lease could still be valid.
    net.tick(expiredAfter, [2, 3]);
    expect(net.raw(2).term).toBe(net.raw(1).term);
    expect(net.raw(3).term).toBe(net.raw(1).term);
    net.raw(1).readIndex(1);
    net.stabilize();
    expect(net.node(1).readStates).toEqual([]);
  });

  it('a leader transferring leadership stops serving from its lease', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    net.tick(1);
    net.dropTypes.add(MessageType.TimeoutNow);
    net.raw(1).transferLeader(2);
    net.stabilize();
    expect(net.raw(1).status().leaseValid).toBe(false);
  });
});

describe('leader lease after a pause (the clock, not the ticks)', () => {
  it('a read that waited out a pause finds the lease expired before any tick, and takes a round', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    const index = net.propose(1, 'x');
    net.tick(1);
    const leader = net.raw(1);
    expect(leader.status().leaseValid).toBe(true);
    // Stopped for 20 ticks of wall time: no timer ran; the driver reads the clock on resume.
    leader.advanceClock(leader.nowTicks + 20);
    expect(leader.status().leaseValid).toBe(false);
    const since = net.delivered.length;
    leader.readIndex(5);
    net.stabilize();
    expect(net.countDelivered(MessageType.Heartbeat, since)).toBe(2);
    expect(net.node(1).readStates).toEqual([{ index, requestId: 5 }]);
  });

  it('a leader paused while the others elected a new one never answers from its old view', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    net.propose(1, 'before');
    net.tick(1);
    expect(net.raw(1).status().leaseValid).toBe(true);
    net.isolate(1);
    net.tick(30, [2, 3]);
    const successor = [2, 3].find((id) => net.raw(id).role === StateRole.Leader);
    expect(successor).toBeDefined();
    const acknowledged = net.propose(successor!, 'during the pause');
    net.heal();
    // Node 1 resumes: the clock first, then the read that waited in its socket.
    const old = net.raw(1);
    old.advanceClock(old.nowTicks + 30);
    old.readIndex(8);
    net.stabilize();
    for (const state of net.node(1).readStates) expect(state.index).toBeGreaterThanOrEqual(acknowledged);
    expect(old.role).toBe(StateRole.Follower);
  });

  it('a lease that ticks alone would keep valid expires by the clock, however few ticks came', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    net.tick(1);
    net.isolate(1);
    // One timer callback after a long stall: one tick, carrying the real time.
    const leader = net.raw(1);
    leader.tick(leader.nowTicks + 9);
    expect(leader.status().leaseValid).toBe(false);
  });

  it('once a TimeoutNow went out, the lease stays off until the next term', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    net.tick(1);
    // The target never campaigns now, but could later (a paused target whose socket holds it).
    net.dropTypes.add(MessageType.TimeoutNow);
    net.raw(1).transferLeader(2);
    net.stabilize();
    net.tick(12);
    const status = net.raw(1).status();
    expect(status.role).toBe(StateRole.Leader);
    expect(status.leadTransferee).toBe(0); // abandoned after an election timeout
    expect(status.leaseValid).toBe(false);
    const since = net.delivered.length;
    net.raw(1).readIndex(3);
    net.stabilize();
    expect(net.countDelivered(MessageType.Heartbeat, since)).toBe(2);
    expect(net.node(1).readStates.map((r) => r.requestId)).toEqual([3]);
  });
});
