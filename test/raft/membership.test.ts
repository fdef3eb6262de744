// Learners and single-server membership changes, and the rule for a replica that restarts with
// its log lost (memory mode): no vote and no commit weight until it has caught up.

import { describe, expect, it } from 'vitest';
import {
  ConfChangeType,
  EntryType,
  isRaftError,
  type MemoryStorage,
  MessageType,
  makeMessage,
  StateRole,
} from '../../src/raft/index.js';
import { TestNetwork } from './network.js';

describe('learners and membership change', () => {
  it('a learner receives the log but neither votes nor counts toward commit', () => {
    const net = new TestNetwork({ voters: [1, 2, 3], learners: [4] });
    net.elect(1);
    net.propose(1, 'a');
    net.tick(1);
    expect([...net.node(4).applied.values()]).toEqual(['a']);
    // With 2 and 3 down, 1 + learner 4 is not a quorum.
    net.isolate(2);
    net.isolate(3);
    const index = net.raw(1).propose(new TextEncoder().encode('b'));
    net.stabilize();
    expect(net.raw(1).commitIndex).toBeLessThan(index);
    // The learner never campaigns.
    net.isolate(1);
    net.tick(50, [4]);
    expect(net.raw(4).role).toBe(StateRole.Follower);
    expect(net.delivered.filter((m) => m.from === 4 && m.type === MessageType.PreVote)).toEqual([]);
  });

  it('adds a learner, promotes it, and removes a voter, one change at a time', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    net.propose(1, 'before');
    net.addNode(4, { voters: [1, 2, 3], learners: [] });
    net.raw(1).proposeConfChange({ type: ConfChangeType.AddLearner, nodeId: 4 });
    // A second change waits until the first is applied.
    let error: unknown;
    try {
      net.raw(1).proposeConfChange({ type: ConfChangeType.AddVoter, nodeId: 4 });
    } catch (e) {
      error = e;
    }
    expect(isRaftError(error, 'ConfChangeRejected')).toBe(true);
    net.stabilize();
    net.tick(1);
    expect(net.raw(1).status().confState).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect([...net.node(4).applied.values()]).toEqual(['before']);

    net.raw(1).proposeConfChange({ type: ConfChangeType.AddVoter, nodeId: 4 });
    net.tick(1);
    expect(net.raw(1).status().confState).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    expect(net.raw(4).status().confState).toEqual({ voters: [1, 2, 3, 4], learners: [] });

    net.raw(1).proposeConfChange({ type: ConfChangeType.Remove, nodeId: 3 });
    net.tick(1);
    expect(net.raw(1).status().confState).toEqual({ voters: [1, 2, 4], learners: [] });
    // With 3 gone, 1, 2 and 4 commit on their own.
    net.isolate(3);
    const index = net.propose(1, 'after');
    expect(net.raw(1).commitIndex).toBeGreaterThanOrEqual(index);
  });

  it('a leader that removes itself steps down and the others elect a new one', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    net.raw(1).proposeConfChange({ type: ConfChangeType.Remove, nodeId: 1 });
    net.tick(1);
    expect(net.raw(1).role).toBe(StateRole.Follower);
    net.isolate(1);
    net.tick(40, [2, 3]);
    const leader = net.leader();
    expect(leader && [2, 3].includes(leader.id)).toBe(true);
  });

  it('persists the new membership through Ready.confState', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    const raw = net.raw(2);
    net.raw(1).proposeConfChange({ type: ConfChangeType.AddLearner, nodeId: 9 });
    // Committed on the leader now; the follower learns the commit with the next heartbeat.
    net.tick(2);
    expect(raw.status().confState.learners).toEqual([9]);
  });
});

describe('restart with an empty log (memory mode)', () => {
  it('the restarted replica does not vote until it has caught up', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    for (let i = 0; i < 5; i++) net.propose(1, `v${i}`);
    net.tick(1);
    net.isolate(3);
    const node3 = net.restart(3, { loseLog: true });
    expect(node3.raw.status().recovering).toBe(true);
    expect(node3.raw.lastIndex).toBe(0);
    // Node 2, cut off from the leader, campaigns; node 3 must not help it.
    net.heal();
    net.isolate(1);
    net.tick(60, [2, 3]);
    expect(net.raw(2).role).not.toBe(StateRole.Leader);
    expect(net.raw(3).role).not.toBe(StateRole.Leader);
    // Back with the leader, node 3 catches up and votes again.
    net.heal();
    net.tick(5);
    expect(net.raw(3).status().recovering).toBe(false);
    expect(net.raw(3).lastIndex).toBe(net.raw(1).lastIndex);
  });

  it('the leader forgets acks from before the restart and does not count the replica until caught up', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    for (let i = 0; i < 5; i++) net.propose(1, `v${i}`);
    net.tick(1);
    net.restart(3, { loseLog: true });
    net.isolate(2);
    // Only 1 and the recovering 3 are up: a new entry must not commit on their two acks until 3
    // holds the whole committed log again; once it has caught up it counts.
    net.node(3).holdWrites = true;
    const index = net.raw(1).propose(new TextEncoder().encode('x'));
    net.tick(2);
    expect(net.raw(1).commitIndex).toBeLessThan(index);
    const pr = net.raw(1).status().progress!.get(3)!;
    expect(pr.match).toBe(0);
    net.node(3).holdWrites = false;
    net.releaseWrites(3);
    net.tick(2);
    expect(net.raw(1).commitIndex).toBeGreaterThanOrEqual(index);
  });

  it('stays recovering until it holds the new leader no-op, even when that leader commit lags', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    const node = net.restart(3, { loseLog: true }).raw;
    net.isolate(3);
    const app = (first: number, last: number, commit: number) => {
      const m = makeMessage(MessageType.App, 1, 3, 5);
      m.prevIndex = first - 1;
      m.prevTerm = first - 1 === 0 ? 0 : 4;
      m.entries = [];
      for (let i = first; i <= last; i++) {
        m.entries.push({ term: i === 10 ? 5 : 4, index: i, type: EntryType.Normal, data: new Uint8Array(1) });
      }
      m.commit = commit;
      m.termStartIndex = 10; // the leader's no-op of term 5
      return m;
    };
    const persist = () => {
      while (node.hasReady()) {
        const ready = node.ready();
        net.node(3).storage.append(ready.entries);
        node.advance(ready);
        if (ready.persistId) node.reportPersisted(ready.persistId);
      }
    };
    node.step(app(1, 5, 2));
    persist();
    // Stored past the leader's commit (2), but not its no-op (10): entries committed by an
    // earlier leader with this replica's lost acks may still be missing.
    expect(node.lastIndex).toBe(5);
    expect(node.recovering).toBe(true);
    node.step(app(6, 10, 2));
    persist();
    expect(node.recovering).toBe(false);
  });

  it('when every voter lost its log, they may elect one of themselves again', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    net.propose(1, 'gone');
    for (const id of [1, 2, 3]) net.restart(id, { loseLog: true });
    net.tick(80);
    const leader = net.leader();
    expect(leader).toBeDefined();
    const index = net.propose(leader!.id, 'fresh');
    net.tick(2);
    for (const node of net.nodes.values()) {
      expect(node.applied.get(index)).toBe('fresh');
      expect(node.raw.status().recovering).toBe(false);
    }
  });

  it('a lone voter that lost its log elects itself and commits again', () => {
    // A single-node cluster whose tail was cut on open (storage flags it): nobody else can help.
    const net = new TestNetwork({ voters: [1] });
    net.tick(30);
    expect(net.leader()?.id).toBe(1);
    net.propose(1, 'gone');
    net.restart(1, { loseLog: true });
    net.tick(30);
    expect(net.leader()?.id).toBe(1);
    const index = net.propose(1, 'fresh');
    net.tick(2);
    expect(net.node(1).applied.get(index)).toBe('fresh');
    expect(net.raw(1).status().recovering).toBe(false);
  });

  it('when a majority lost its log, the replica that kept its data is elected and keeps it', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    const kept = net.propose(1, 'kept');
    net.tick(1);
    // The leader and one follower restart empty: only node 3 still holds 'kept'.
    net.restart(1, { loseLog: true });
    net.restart(2, { loseLog: true });
    net.tick(120);
    expect(net.leader()?.id).toBe(3);
    const index = net.propose(3, 'after');
    net.tick(2);
    for (const node of net.nodes.values()) {
      expect(node.applied.get(kept)).toBe('kept');
      expect(node.applied.get(index)).toBe('after');
      expect(node.raw.status().recovering).toBe(false);
    }
  });

  it('while only a minority lost its log, an intact majority elects one of itself', () => {
    const net = new TestNetwork({ voters: [1, 2, 3, 4, 5] });
    net.elect(1);
    const x = net.propose(1, 'x');
    net.tick(1);
    // 5 loses its log and the leader is cut off: 2, 3 and 4 still hold 'x' and form a quorum.
    net.isolate(1);
    net.restart(5, { loseLog: true });
    net.tick(120, [2, 3, 4, 5]);
    const leaders = [2, 3, 4, 5].filter((id) => net.raw(id).role === StateRole.Leader);
    expect(leaders).toHaveLength(1);
    expect([2, 3, 4]).toContain(leaders[0]);
    expect(net.node(leaders[0]!).applied.get(x)).toBe('x');
  });

  it('a replica with its data never votes for one that lost it', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    net.propose(1, 'a');
    net.tick(1);
    net.isolate(1);
    net.restart(3, { loseLog: true });
    net.tick(80, [2, 3]);
    expect(net.raw(2).role).not.toBe(StateRole.Leader);
    expect(net.raw(3).role).not.toBe(StateRole.Leader);
    const storage: MemoryStorage = net.node(2).storage;
    expect(storage.lastIndex()).toBeGreaterThan(0);
  });
});
