// Elections: voting rules, pre-vote, check-quorum and the lease guard on votes.

import { describe, expect, it } from 'vitest';
import { MessageType, makeMessage, StateRole } from '../../src/raft/index.js';
import { TestNetwork } from './network.js';

describe('election', () => {
  it('elects exactly one leader by timeout, and followers learn it', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.tick(30);
    const leaders = [...net.nodes.values()].filter((n) => n.raw.role === StateRole.Leader);
    expect(leaders).toHaveLength(1);
    const leader = leaders[0]!;
    for (const node of net.nodes.values()) {
      expect(node.raw.leaderId).toBe(leader.id);
      expect(node.raw.term).toBe(leader.raw.term);
    }
  });

  it('commits a no-op of the new term on election', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    const leader = net.elect(1);
    expect(leader.raw.commitIndex).toBe(1);
    expect(leader.storage.term(1)).toBe(leader.raw.term);
    expect(leader.storage.entries(1, 2, 1 << 20)[0]!.data.length).toBe(0);
  });

  it('refuses a vote to a candidate whose log is behind (up-to-date check)', () => {
    const net = new TestNetwork({
      voters: [1, 2, 3],
      config: { preVote: false, checkQuorum: false, leaseReads: false },
    });
    net.elect(1);
    net.isolate(3);
    net.propose(1, 'a');
    net.heal();
    // Node 3 missed 'a'; its campaign must fail even though its term is newest.
    net.campaign(3);
    expect(net.raw(3).role).not.toBe(StateRole.Leader);
    expect(net.countDelivered(MessageType.VoteResp)).toBeGreaterThan(0);
    const grants = net.delivered.filter((m) => m.type === MessageType.VoteResp && m.to === 3 && !m.reject);
    expect(grants).toHaveLength(0);
  });

  it('grants at most one vote per term', () => {
    const net = new TestNetwork({
      voters: [1, 2, 3],
      config: { preVote: false, checkQuorum: false, leaseReads: false },
    });
    const voter = net.raw(3);
    const request = (from: number) => {
      const m = makeMessage(MessageType.Vote, from, 3, 5);
      return m;
    };
    net.cutLink(3, 1);
    net.cutLink(3, 2);
    voter.step(request(1));
    voter.step(request(2));
    const ready = voter.ready();
    voter.advance(ready);
    voter.reportPersisted(ready.persistId);
    const responses = [...ready.messages, ...voter.ready().messages].filter(
      (m) => m.type === MessageType.VoteResp,
    );
    // The rejection leaves at once; the grant only after the vote is durable.
    expect(responses.map((m) => [m.to, m.reject])).toEqual([
      [2, true],
      [1, false],
    ]);
  });

  it('sends a vote grant only after the vote is durable', () => {
    const net = new TestNetwork({
      voters: [1, 2, 3],
      config: { preVote: false, checkQuorum: false, leaseReads: false },
    });
    const voter = net.raw(2);
    voter.step(makeMessage(MessageType.Vote, 1, 2, 1));
    const ready = voter.ready();
    expect(ready.hardState?.vote).toBe(1);
    expect(ready.mustSync).toBe(true);
    expect(ready.messages.filter((m) => m.type === MessageType.VoteResp)).toHaveLength(0);
    voter.advance(ready);
    voter.reportPersisted(ready.persistId);
    const after = voter.ready().messages.filter((m) => m.type === MessageType.VoteResp);
    expect(after).toHaveLength(1);
    expect(after[0]!.reject).toBe(false);
  });

  it('a candidate counts its own vote only once durable', () => {
    const net = new TestNetwork({ voters: [1], config: { preVote: false } });
    const node = net.node(1);
    node.holdWrites = true;
    net.campaign(1);
    expect(node.raw.role).toBe(StateRole.Candidate);
    net.releaseWrites(1);
    expect(node.raw.role).toBe(StateRole.Leader);
  });
});

describe('pre-vote', () => {
  it('an isolated node does not inflate its term, and rejoining does not disturb the leader', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    const term = net.raw(1).term;
    net.isolate(3);
    net.tick(100, [3]);
    expect(net.raw(3).term).toBe(term);
    expect(net.raw(3).role).toBe(StateRole.PreCandidate);
    net.heal();
    net.tick(5);
    expect(net.raw(1).role).toBe(StateRole.Leader);
    expect(net.raw(1).term).toBe(term);
    expect(net.raw(3).leaderId).toBe(1);
  });

  it('without pre-vote the same isolation bumps terms and unseats the leader', () => {
    const net = new TestNetwork({
      voters: [1, 2, 3],
      config: { preVote: false, checkQuorum: false, leaseReads: false },
    });
    net.elect(1);
    const term = net.raw(1).term;
    net.isolate(3);
    net.tick(100, [3]);
    expect(net.raw(3).term).toBeGreaterThan(term);
    net.heal();
    net.tick(30);
    expect(net.raw(1).term).toBeGreaterThan(term);
  });

  it('a pre-vote grant does not change the voter term or vote', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.tick(11); // past the start-up lease guard
    const voter = net.raw(2);
    const before = voter.status();
    const m = makeMessage(MessageType.PreVote, 3, 2, before.term + 1);
    voter.step(m);
    const ready = voter.ready();
    expect(ready.hardState).toBeNull();
    const resp = ready.messages.find((x) => x.type === MessageType.PreVoteResp)!;
    expect(resp.reject).toBe(false);
    expect(resp.term).toBe(before.term + 1);
    expect(voter.term).toBe(before.term);
  });
});

describe('check-quorum', () => {
  it('a leader cut off from the quorum steps down within an election timeout', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    net.isolate(1);
    net.tick(21, [1]);
    expect(net.raw(1).role).toBe(StateRole.Follower);
  });

  it('a follower that heard from its leader recently ignores a vote request (lease)', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    net.tick(3);
    const follower = net.raw(2);
    const term = follower.term;
    const m = makeMessage(MessageType.Vote, 3, 2, term + 1);
    m.lastIndex = 100;
    m.lastTerm = term;
    follower.step(m);
    expect(follower.term).toBe(term);
    expect(follower.ready().messages.filter((x) => x.type === MessageType.VoteResp)).toHaveLength(0);
  });

  it('a restarted node ignores vote requests for one election timeout', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    const node = net.restart(2).raw;
    const term = node.term;
    expect(term).toBeGreaterThan(0);
    node.step(makeMessage(MessageType.Vote, 3, 2, term + 1));
    expect(node.term).toBe(term);
    net.isolate(2);
    net.tick(10, [2]);
    node.step(makeMessage(MessageType.Vote, 3, 2, term + 5));
    expect(node.term).toBe(term + 5);
  });

  it('a brand-new node (term 0) may vote at once: no leader can have relied on it', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    expect(net.raw(1).term).toBe(1);
  });

  it('a partitioned minority elects no leader; the majority keeps one', () => {
    const net = new TestNetwork({ voters: [1, 2, 3, 4, 5] });
    net.elect(1);
    net.isolate(4);
    net.isolate(5);
    net.cutLink(1, 4);
    net.tick(100);
    expect(net.raw(4).role).not.toBe(StateRole.Leader);
    expect(net.raw(5).role).not.toBe(StateRole.Leader);
    expect(net.leader()?.id).toBe(1);
  });
});
