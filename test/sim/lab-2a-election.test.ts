// 6.824 lab 2A (leader election) on the simulator, in virtual time, with the lab's bounds:
// a leader within checkOneLeader's ~5 s, one leader per term, no term change without faults.

import { describe, expect, it } from 'vitest';
import { ELECTION_TIMEOUT_MS, electedAfter, figures, forSeeds, labCluster, peer } from './lab.js';

/** checkOneLeader polls 10 times 450–550 ms: a leader within about 5 s. */
const LEADER_BOUND_MS = 5000;

describe('6.824 2A: leader election', () => {
  it('InitialElection', () => {
    forSeeds([1, 2, 3], (seed) => {
      const { c, elections } = labCluster({ seed, nodes: 3 });
      c.checkOneLeader();
      // The lab sleeps 50 ms so that followers have heard of the new term.
      c.runFor(50);
      const term1 = c.checkTerms();
      expect(term1).toBeGreaterThanOrEqual(1);
      const electedMs = elections[0]!.timeMs;
      expect(electedMs).toBeLessThanOrEqual(LEADER_BOUND_MS);
      // With no faults the term must hold over two election timeouts (the lab only warns; we fail).
      c.runFor(2 * ELECTION_TIMEOUT_MS);
      expect(c.checkTerms()).toBe(term1);
      c.checkOneLeader();
      expect(elections.length).toBe(1);
      c.finish();
      figures('InitialElection', seed, { leaderAtMs: electedMs, term: term1 });
    });
  });

  it('ReElection', () => {
    forSeeds([1, 2, 3], (seed) => {
      const servers = 3;
      const { c, elections } = labCluster({ seed, nodes: servers });
      const leader1 = c.checkOneLeader();

      // The leader disconnects: a new one must be elected.
      c.disconnect(leader1);
      const cutAt = c.nowMs;
      const leader2 = c.checkOneLeader();
      expect(leader2).not.toBe(leader1);
      const reelectedMs = electedAfter(elections, cutAt);
      expect(reelectedMs).toBeGreaterThan(0);
      expect(reelectedMs).toBeLessThanOrEqual(LEADER_BOUND_MS);

      // The old leader rejoins: it must not disturb the new one (pre-vote and check-quorum keep
      // it from forcing an election; the lab only asks for some leader, we ask for the same).
      const term2 = c.checkTerms();
      c.connect(leader1);
      expect(c.checkOneLeader()).toBe(leader2);
      expect(c.checkTerms()).toBe(term2);

      // No quorum: no leader.
      c.disconnect(leader2);
      c.disconnect(peer(leader2, 1, servers));
      c.runFor(2 * ELECTION_TIMEOUT_MS);
      c.checkNoLeader();

      // A quorum again: a leader.
      c.connect(peer(leader2, 1, servers));
      const healedAt = c.nowMs;
      c.checkOneLeader();
      const quorumBackMs = electedAfter(elections, healedAt);
      // The last node back: still one leader.
      c.connect(leader2);
      c.checkOneLeader();
      c.finish();
      figures('ReElection', seed, { reelectedMs, quorumBackMs });
    });
  });

  it('ManyElections', () => {
    forSeeds([1, 2, 3], (seed) => {
      const servers = 7;
      const { c, rng } = labCluster({ seed, nodes: servers });
      c.checkOneLeader();
      for (let iteration = 0; iteration < 10; iteration++) {
        // Three random peers (perhaps the same one twice) go away; at least 4 of 7 remain.
        const gone = [rng.intIn(1, servers), rng.intIn(1, servers), rng.intIn(1, servers)];
        for (const id of gone) c.disconnect(id);
        // Either the current leader is still alive, or the remaining four elect a new one.
        c.checkOneLeader();
        for (const id of gone) c.connect(id);
      }
      c.checkOneLeader();
      c.finish();
      figures('ManyElections', seed, { virtualMs: c.nowMs, terms: c.checkTerms() });
    });
  });
});
