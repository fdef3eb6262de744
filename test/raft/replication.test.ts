// Log replication: durability-gated commit, acks after persistence, fast backtracking, flow
// control, the current-term commit rule, uncommitted limits, and snapshot install.

import { describe, expect, it } from 'vitest';
import {
  type Entry,
  EntryType,
  isRaftError,
  MessageType,
  makeMessage,
  RaftError,
  StateRole,
} from '../../src/raft/index.js';
import { TestNetwork } from './network.js';

const bytes = (s: string) => new TextEncoder().encode(s);

describe('durability', () => {
  it('the leader does not count itself toward commit until its own write is durable', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    const leader = net.node(1);
    leader.holdWrites = true;
    net.isolate(3);
    const index = net.propose(1, 'x');
    // Node 2 has acked, but 1 of 3 is not a quorum without the leader's own durable copy.
    expect(leader.raw.commitIndex).toBeLessThan(index);
    net.releaseWrites(1);
    expect(leader.raw.commitIndex).toBe(index);
  });

  it('a follower acknowledges entries only after they are durable', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    net.node(2).holdWrites = true;
    net.node(3).holdWrites = true;
    const since = net.delivered.length;
    const index = net.propose(1, 'x');
    expect(net.countDelivered(MessageType.AppResp, since)).toBe(0);
    expect(net.raw(1).commitIndex).toBeLessThan(index);
    net.releaseWrites(2);
    expect(net.countDelivered(MessageType.AppResp, since)).toBe(1);
    expect(net.raw(1).commitIndex).toBe(index);
  });

  it('an ack for entries replaced before they became durable is never sent', () => {
    const net = new TestNetwork({ voters: [1, 2, 3], config: { checkQuorum: false, leaseReads: false } });
    net.elect(1);
    const follower = net.raw(3);
    const term = net.raw(1).term;
    const last = follower.lastIndex;
    // Entry (last+1, term) arrives, then a newer leader replaces it before the write is reported.
    const app = makeMessage(MessageType.App, 1, 3, term);
    app.prevIndex = last;
    app.prevTerm = term;
    app.entries = [{ term, index: last + 1, type: EntryType.Normal, data: bytes('old') }];
    follower.step(app);
    const replace = makeMessage(MessageType.App, 2, 3, term + 1);
    replace.prevIndex = last;
    replace.prevTerm = term;
    replace.entries = [{ term: term + 1, index: last + 1, type: EntryType.Normal, data: bytes('new') }];
    follower.step(replace);
    const ready = follower.ready();
    net.node(3).storage.append(ready.entries);
    follower.advance(ready);
    follower.reportPersisted(ready.persistId);
    const acks = follower
      .ready()
      .messages.filter((m) => m.type === MessageType.AppResp)
      .filter((m) => !m.reject);
    expect(acks.map((m) => [m.to, m.matchIndex])).toEqual([[2, last + 1]]);
  });
});

describe('replication', () => {
  it('commits and applies the same entries on every node', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    for (let i = 0; i < 20; i++) net.propose(1, `v${i}`);
    net.tick(2);
    const expected = [...net.node(1).applied.entries()];
    expect(expected).toHaveLength(20);
    for (const node of net.nodes.values()) expect([...node.applied.entries()]).toEqual(expected);
  });

  it('backs up over a long conflicting log in a few round trips (fast backtracking)', () => {
    const net = new TestNetwork({ voters: [1, 2, 3, 4, 5] });
    net.elect(1);
    // Old leader 1 accumulates 50 uncommitted entries in a minority.
    net.isolate(3);
    net.isolate(4);
    net.isolate(5);
    for (let i = 0; i < 50; i++) net.raw(1).propose(bytes(`lost${i}`));
    net.stabilize();
    net.heal();
    net.isolate(1);
    net.isolate(2);
    net.tick(40, [3, 4, 5]);
    const newLeader = net.leader()!;
    expect([3, 4, 5]).toContain(newLeader.id);
    for (let i = 0; i < 50; i++) newLeader.raw.propose(bytes(`kept${i}`));
    net.stabilize();
    net.heal();
    const since = net.delivered.length;
    net.tick(3);
    const rejections = net.delivered
      .slice(since)
      .filter((m) => m.type === MessageType.AppResp && m.reject && (m.from === 1 || m.from === 2));
    expect(rejections.length).toBeLessThanOrEqual(4);
    expect([...net.node(1).applied.values()].filter((v) => v.startsWith('lost'))).toEqual([]);
    expect(net.raw(1).commitIndex).toBe(newLeader.raw.commitIndex);
  });

  it('bounds the messages in flight to a follower by maxInflightMessages', () => {
    const net = new TestNetwork({
      voters: [1, 2],
      config: { maxInflightMessages: 3, maxBytesPerMessage: 1 },
    });
    net.elect(1);
    net.dropTypes.add(MessageType.AppResp);
    const since = net.delivered.length;
    for (let i = 0; i < 10; i++) net.raw(1).propose(bytes(`e${i}`));
    net.stabilize();
    expect(net.countDelivered(MessageType.App, since)).toBe(3);
  });

  it('bounds the bytes in flight by maxInflightBytes', () => {
    const net = new TestNetwork({
      voters: [1, 2],
      config: { maxInflightMessages: 100, maxInflightBytes: 1000, maxBytesPerMessage: 1 },
    });
    net.elect(1);
    net.dropTypes.add(MessageType.AppResp);
    const since = net.delivered.length;
    for (let i = 0; i < 20; i++) net.raw(1).propose(new Uint8Array(300));
    net.stabilize();
    // Each App carries 324 bytes: the window fills after four.
    expect(net.countDelivered(MessageType.App, since)).toBe(4);
  });

  it('batches entries into one App up to maxBytesPerMessage', () => {
    const net = new TestNetwork({ voters: [1, 2], config: { maxBytesPerMessage: 1000 } });
    net.elect(1);
    net.cutLink(1, 2);
    for (let i = 0; i < 30; i++) net.raw(1).propose(new Uint8Array(100));
    net.stabilize();
    net.heal();
    const since = net.delivered.length;
    net.tick(1);
    const apps = net.delivered
      .slice(since)
      .filter((m) => m.type === MessageType.App)
      .filter((m) => m.entries.length > 0);
    for (const app of apps) {
      const size = app.entries.reduce((sum, e) => sum + e.data.length + 24, 0);
      expect(size <= 1000 || app.entries.length === 1).toBe(true);
    }
    expect(net.raw(2).commitIndex).toBe(net.raw(1).commitIndex);
  });

  it('sends to a lagging follower as soon as the storage loads entries it reported pending', () => {
    const net = new TestNetwork({ voters: [1, 2, 3], config: { maxBytesPerMessage: 1000 } });
    net.elect(1);
    net.isolate(3);
    for (let i = 0; i < 30; i++) net.raw(1).propose(new Uint8Array(100));
    net.stabilize();
    // The leader's storage has the old entries on disk only: a read starts a load and throws.
    const storage = net.node(1).storage;
    const read = storage.entries.bind(storage);
    let loaded = false;
    let pendingReads = 0;
    storage.entries = (lo, hi, maxBytes) => {
      if (loaded) return read(lo, hi, maxBytes);
      pendingReads++;
      throw new RaftError('EntriesPending', `entries(${lo}, ${hi}): loading`);
    };
    net.heal();
    // The second heartbeat response finds the first Apps lost; the probe's read is pending.
    net.tick(2);
    expect(pendingReads).toBeGreaterThan(0);
    expect(net.raw(3).lastIndex).toBeLessThan(net.raw(1).lastIndex);
    loaded = true;
    net.raw(1).notifyEntriesAvailable();
    net.stabilize(); // no tick: the load alone resumes the sends
    expect(net.raw(3).lastIndex).toBe(net.raw(1).lastIndex);
    expect(net.raw(3).commitIndex).toBe(net.raw(1).commitIndex);
  });

  it('never commits an entry of an earlier term by counting replicas (Figure 8)', () => {
    const net = new TestNetwork({
      voters: [1, 2, 3, 4, 5],
      config: { checkQuorum: false, leaseReads: false, maxBytesPerMessage: 1 },
    });
    net.elect(1);
    // Term 1: leader 1 writes index 2, which reaches only node 2.
    for (const id of [3, 4, 5]) net.isolate(id);
    net.raw(1).propose(bytes('old'));
    net.stabilize();
    expect(net.node(2).storage.lastIndex()).toBe(2);
    // Term 2: node 5 wins with 3 and 4 and writes its own index 2, which goes nowhere.
    net.heal();
    net.isolate(1);
    net.isolate(2);
    net.dropIf = (m) => m.from === 5 && m.type === MessageType.App;
    net.elect(5);
    net.isolate(5);
    net.raw(5).propose(bytes('other'));
    net.stabilize();
    // Term 3: node 1 wins again. It brings index 2 (term 1) to nodes 3 and 4, a majority with
    // 1 and 2, but its own no-op at index 3 reaches nobody.
    net.heal();
    net.isolate(5);
    net.dropIf = (m) =>
      m.type === MessageType.App &&
      m.entries.some((e) => e.index >= 3) &&
      net.node(m.to).storage.lastIndex() >= 2;
    net.tick(1, [1]); // hears of term 2 and steps down
    net.campaign(1);
    const leader = net.raw(1);
    expect(leader.role).toBe(StateRole.Leader);
    expect(net.node(3).storage.term(2)).toBe(1);
    expect(net.node(4).storage.term(2)).toBe(1);
    // Counting replicas would commit index 2 now; a crash of 1 would then let 5 (last term 2)
    // win with 2, 3, 4 and overwrite it. The rule keeps commit below 2.
    expect(leader.commitIndex).toBe(1);
    net.heal();
    net.isolate(5);
    net.tick(3);
    expect(leader.commitIndex).toBe(3);
  });

  it('refuses proposals beyond maxUncommittedBytes', () => {
    const net = new TestNetwork({ voters: [1, 2, 3], config: { maxUncommittedBytes: 1000 } });
    net.elect(1);
    net.isolate(2);
    net.isolate(3);
    net.raw(1).propose(new Uint8Array(600));
    let error: unknown;
    try {
      net.raw(1).propose(new Uint8Array(600));
    } catch (e) {
      error = e;
    }
    expect(isRaftError(error, 'UncommittedBytesFull')).toBe(true);
    net.heal();
    net.tick(2);
    expect(() => net.raw(1).propose(new Uint8Array(600))).not.toThrow();
  });

  it('followers learn a new commit index without waiting for a heartbeat (Commit notice)', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    const since = net.delivered.length;
    const index = net.propose(1, 'x');
    // No tick: the notice, not a heartbeat, carried the commit.
    expect(net.raw(2).commitIndex).toBe(index);
    expect(net.raw(3).commitIndex).toBe(index);
    expect(net.countDelivered(MessageType.Commit, since)).toBe(2);
    expect(net.countDelivered(MessageType.Heartbeat, since)).toBe(0);
  });

  it('a follower whose ack comes after the commit still gets a notice, not a heartbeat later', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    net.node(3).holdWrites = true;
    const index = net.propose(1, 'x');
    // Nodes 1 and 2 commit without 3, which has not stored the entry yet.
    expect(net.raw(1).commitIndex).toBe(index);
    expect(net.raw(3).commitIndex).toBeLessThan(index);
    const since = net.delivered.length;
    net.releaseWrites(3);
    // No tick: its ack brought a notice back.
    expect(net.raw(3).commitIndex).toBe(index);
    expect(net.countDelivered(MessageType.Commit, since)).toBe(1);
    expect(net.countDelivered(MessageType.Heartbeat, since)).toBe(0);
  });

  it('costs one Commit notice per follower per commit advance', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    net.propose(1, 'x');
    const since = net.delivered.length;
    // The App for 'y' carries the commit of 'x'; only y's own commit needs a notice.
    net.raw(1).propose(new TextEncoder().encode('y'));
    net.stabilize();
    const commits = net.countDelivered(MessageType.Commit, since);
    const apps = net.countDelivered(MessageType.App, since);
    expect(apps).toBe(2);
    expect(commits).toBe(2);
  });

  it('a follower refuses a proposal with NotLeader', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    let error: unknown;
    try {
      net.raw(2).propose(bytes('x'));
    } catch (e) {
      error = e;
    }
    expect(isRaftError(error, 'NotLeader')).toBe(true);
  });
});

describe('snapshots and prefix truncation', () => {
  it('sends a snapshot to a follower that is behind the log start, then resumes the log', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    net.isolate(3);
    for (let i = 0; i < 30; i++) net.propose(1, `v${i}`);
    const leader = net.node(1);
    const applied = leader.raw.status().applied;
    leader.storage.createSnapshot(applied, leader.raw.status().confState, bytes(`state@${applied}`));
    leader.storage.compact(applied);
    net.heal();
    net.tick(3);
    const follower = net.node(3);
    expect(follower.storage.snapshot().metadata.index).toBe(applied);
    expect(new TextDecoder().decode(follower.storage.snapshot().data)).toBe(`state@${applied}`);
    net.propose(1, 'after');
    net.tick(2);
    expect(follower.raw.commitIndex).toBe(leader.raw.commitIndex);
    expect([...follower.applied.values()]).toEqual(['after']);
  });

  it('resends a snapshot that was lost', () => {
    const net = new TestNetwork({ voters: [1, 2, 3] });
    net.elect(1);
    net.isolate(3);
    for (let i = 0; i < 10; i++) net.propose(1, `v${i}`);
    const leader = net.node(1);
    const applied = leader.raw.status().applied;
    leader.storage.createSnapshot(applied, leader.raw.status().confState, bytes('s'));
    leader.storage.compact(applied);
    net.heal();
    net.dropTypes.add(MessageType.Snapshot);
    net.tick(3);
    expect(net.node(3).storage.snapshot().metadata.index).toBe(0);
    net.heal();
    net.tick(15);
    expect(net.node(3).storage.snapshot().metadata.index).toBe(applied);
  });

  it('a compacted follower log still answers terms at its start (LogStorage invariant)', () => {
    const net = new TestNetwork({ voters: [1] });
    net.elect(1);
    for (let i = 0; i < 5; i++) net.propose(1, `v${i}`);
    const node = net.node(1);
    const index = node.raw.status().applied;
    node.storage.createSnapshot(index, node.raw.status().confState, new Uint8Array(0));
    node.storage.compact(index);
    expect(node.storage.firstIndex()).toBe(index + 1);
    expect(node.storage.term(index)).toBe(node.raw.term);
    const entries: Entry[] = [];
    expect(() => node.storage.entries(index, index + 1, 100)).toThrow();
    expect(entries).toEqual([]);
    expect(node.raw.role).toBe(StateRole.Leader);
  });
});
