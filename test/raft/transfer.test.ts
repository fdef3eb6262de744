// Leadership transfer: caught-up check, TimeoutNow, proposals refused meanwhile, and the abort
// after an election timeout.

import { describe, expect, it } from 'vitest';
import { isRaftError, StateRole } from '../../src/raft/index.js';
import { TestNetwork } from './network.js';

describe('leadership transfer', () => {
  it('moves leadership to a caught-up follower at once', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    net.propose(1, 'x');
    net.raw(1).transferLeader(2);
    net.stabilize();
    expect(net.raw(2).role).toBe(StateRole.Leader);
    expect(net.raw(1).role).toBe(StateRole.Follower);
    expect(net.raw(1).leaderId).toBe(2);
  });

  it('brings a lagging target up to date first, then sends TimeoutNow', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    net.isolate(3);
    for (let i = 0; i < 5; i++) net.propose(1, `v${i}`);
    net.heal();
    net.raw(1).transferLeader(3);
    net.tick(3);
    expect(net.raw(3).role).toBe(StateRole.Leader);
    expect([...net.node(3).applied.values()]).toContain('v4');
  });

  it('refuses proposals while a transfer is under way', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    net.isolate(3);
    net.raw(1).transferLeader(3);
    let error: unknown;
    try {
      net.raw(1).propose(new Uint8Array(1));
    } catch (e) {
      error = e;
    }
    expect(isRaftError(error, 'ProposalDropped')).toBe(true);
  });

  it('abandons a transfer that does not finish within an election timeout', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    net.isolate(3);
    net.raw(1).transferLeader(3);
    net.tick(10, [1, 2]);
    expect(net.raw(1).role).toBe(StateRole.Leader);
    expect(net.raw(1).status().leadTransferee).toBe(0);
    expect(() => net.raw(1).propose(new Uint8Array(1))).not.toThrow();
  });

  it('a follower can ask the leader to transfer', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    net.raw(3).transferLeader(3);
    net.stabilize();
    expect(net.raw(3).role).toBe(StateRole.Leader);
  });

  it('the target campaigns through the voters lease (TimeoutNow forces the vote)', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    net.tick(2);
    const term = net.raw(1).term;
    net.raw(1).transferLeader(2);
    net.stabilize();
    expect(net.raw(2).role).toBe(StateRole.Leader);
    expect(net.raw(2).term).toBe(term + 1);
  });

  it('ignores a transfer to a node that is not a voter, or to itself', () => {
    const net = new TestNetwork({ voters: [1, 2, 3], learners: [4] });
    net.elect(1);
    net.raw(1).transferLeader(4);
    net.raw(1).transferLeader(1);
    net.stabilize();
    expect(net.raw(1).role).toBe(StateRole.Leader);
    expect(net.raw(1).status().leadTransferee).toBe(0);
  });
});
