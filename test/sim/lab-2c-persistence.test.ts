// 6.824 lab 2C (persistence) on the simulator, in virtual time. A crash keeps only what the node's
// disk had made durable (writes in flight are lost, the one in progress may tear); a restart is a
// new instance built from that image. The lab's crash1 also disconnects; here connectivity and
// liveness are independent, so a crashed node is simply down until restarted.
//
// As in 2B, each new leader's no-op takes an index, so expected indexes are taken from one().

import { describe, expect, it } from 'vitest';
import type { Cluster } from './cluster.js';
import {
  BackgroundOne,
  ChurnClient,
  ELECTION_TIMEOUT_MS,
  figures,
  forSeeds,
  labCluster,
  peer,
  startOnAll,
  Values,
} from './lab.js';

/** The lab's sleep between Figure 8 rounds: 0–500 ms one time in ten, else 0–12 ms. */
function figure8PauseMs(rng: { int(max: number): number }): number {
  return rng.int(1000) < 100 ? rng.int(ELECTION_TIMEOUT_MS / 2) : rng.int(13);
}

function restartAllDown(c: Cluster): void {
  for (const id of c.ids) if (!c.isUp(id)) c.restart(id);
}

describe('6.824 2C: persistence', () => {
  it('Persist1', () => {
    forSeeds([1, 2, 3], (seed) => {
      const servers = 3;
      const { c } = labCluster({ seed, nodes: servers });
      c.one(11, servers, true);
      // Crash and restart everyone.
      for (const id of c.ids) c.restart(id);
      c.one(12, servers, true);

      const leader1 = c.checkOneLeader();
      c.disconnect(leader1);
      c.restart(leader1);
      c.connect(leader1);
      c.one(13, servers, true);

      const leader2 = c.checkOneLeader();
      c.disconnect(leader2);
      const index14 = c.one(14, servers - 1, true);
      c.restart(leader2);
      c.connect(leader2);
      // Wait for leader2 to catch up before the next crash.
      expect(c.wait(index14, servers, -1)).toBe('14');

      const i3 = peer(c.checkOneLeader(), 1, servers);
      c.disconnect(i3);
      c.one(15, servers - 1, true);
      c.restart(i3);
      c.connect(i3);
      c.one(16, servers, true);
      c.finish();
    });
  });

  it('Persist2', () => {
    forSeeds([1, 2, 3], (seed) => {
      const servers = 5;
      const { c } = labCluster({ seed, nodes: servers });
      let value = 11;
      for (let iteration = 0; iteration < 5; iteration++) {
        c.one(value++, servers, true);
        const leader1 = c.checkOneLeader();
        const at = (k: number) => peer(leader1, k, servers);
        c.disconnect(at(1));
        c.disconnect(at(2));
        c.one(value++, servers - 2, true);

        // The three that agreed go down; the two that did not come back, restarted: no majority
        // with the committed entry until a third one from the majority returns.
        c.disconnect(at(0));
        c.disconnect(at(3));
        c.disconnect(at(4));
        c.restart(at(1));
        c.restart(at(2));
        c.connect(at(1));
        c.connect(at(2));
        c.runFor(ELECTION_TIMEOUT_MS);
        c.restart(at(3));
        c.connect(at(3));
        c.one(value++, servers - 2, true);
        c.connect(at(4));
        c.connect(at(0));
      }
      c.one(1000, servers, true);
      c.finish();
    });
  });

  it('Persist3', () => {
    forSeeds([1, 2, 3], (seed) => {
      const servers = 3;
      const { c } = labCluster({ seed, nodes: servers });
      c.one(101, 3, true);
      const leader = c.checkOneLeader();
      const at = (k: number) => peer(leader, k, servers);
      c.disconnect(at(2));
      c.one(102, 2, true);
      // The partitioned leader and its follower crash; the one that missed 102 returns.
      c.crash(at(0));
      c.crash(at(1));
      c.connect(at(2));
      c.restart(at(0));
      c.one(103, 2, true);
      c.restart(at(1));
      const last = c.one(104, servers, true);
      // 102 survived the crash of both nodes that held it.
      expect(
        Array.from({ length: last }, (_, i) => c.nCommitted(i + 1).value),
        'a committed entry was lost',
      ).toContain('102');
      c.finish();
    });
  });

  it('Figure8', () => {
    forSeeds([1, 2, 3], (seed) => {
      const servers = 5;
      const { c, rng, elections } = labCluster({ seed, nodes: servers });
      const values = new Values(rng);
      c.one(values.take(), 1, true);
      let up = servers;
      let crashes = 0;
      for (let iteration = 0; iteration < 1000; iteration++) {
        // Propose on every running node; crash the (last) one that took it, after a short while.
        const accepted = startOnAll(c, () => values.take());
        c.runFor(figure8PauseMs(rng));
        if (accepted.length > 0) {
          c.crash(accepted[accepted.length - 1]!.id);
          crashes++;
          up--;
        }
        // Keep at least three up.
        if (up < 3) {
          const s = rng.intIn(1, servers);
          if (!c.isUp(s)) {
            c.restart(s);
            up++;
          }
        }
      }
      restartAllDown(c);
      c.one(values.take(), servers, true);
      c.finish();
      figures('Figure8', seed, { virtualMs: c.nowMs, crashes, leaders: elections.length });
    });
  });

  it('UnreliableAgree', () => {
    forSeeds([1, 2, 3], (seed) => {
      const servers = 5;
      const { c } = labCluster({ seed, nodes: servers, reliable: false });
      const background: BackgroundOne[] = [];
      for (let iteration = 1; iteration < 50; iteration++) {
        // Four one() calls run concurrently with a fifth in the foreground.
        for (let j = 0; j < 4; j++) background.push(new BackgroundOne(c, `${100 * iteration + j}`, 1, true));
        c.one(iteration, 1, true);
      }
      c.setReliable(true);
      // The lab's wg.Wait(): each background one() has its own 10 s deadline.
      expect(c.runUntil(() => background.every((b) => b.done), 30_000)).toBe(true);
      c.one(100, servers, true);
      c.finish();
      figures('UnreliableAgree', seed, { virtualMs: c.nowMs, messages: c.messageCount() });
    });
  });

  it('Figure8Unreliable', () => {
    forSeeds([1, 2, 3], (seed) => {
      const servers = 5;
      const { c, rng, elections } = labCluster({ seed, nodes: servers, reliable: false });
      const values = new Values(rng);
      c.one(values.take(), 1, true);
      let connected = servers;
      for (let iteration = 0; iteration < 1000; iteration++) {
        if (iteration === 200) c.setLongReordering(true);
        let leader = 0;
        for (const { id } of startOnAll(c, () => values.take())) if (c.isConnected(id)) leader = id;
        c.runFor(figure8PauseMs(rng));
        // Half the rounds disconnect the leader; keep at least three connected.
        if (leader !== 0 && rng.int(1000) < ELECTION_TIMEOUT_MS / 2) {
          c.disconnect(leader);
          connected--;
        }
        if (connected < 3) {
          const s = rng.intIn(1, servers);
          if (!c.isConnected(s)) {
            c.connect(s);
            connected++;
          }
        }
      }
      for (const id of c.ids) c.connect(id);
      // Still unreliable and reordering, as in the lab.
      const healedAt = c.nowMs;
      c.one(values.take(), servers, true);
      c.finish();
      figures('Figure8Unreliable', seed, {
        virtualMs: c.nowMs,
        finalAgreementMs: c.nowMs - healedAt,
        leaders: elections.length,
      });
    });
  });

  /** 6.824's internalChurn: 3 clients propose while peers disconnect, crash and restart. */
  function churn(seed: number, unreliable: boolean): { committed: number; lastIndex: number } {
    const servers = 5;
    const { c, rng } = labCluster({ seed, nodes: servers, reliable: !unreliable });
    const values = new Values(rng);
    const clients = [0, 1, 2].map((me) => new ChurnClient(c, me, values));
    for (let iteration = 0; iteration < 20; iteration++) {
      if (rng.int(1000) < 200) c.disconnect(rng.intIn(1, servers));
      if (rng.int(1000) < 500) {
        const id = rng.intIn(1, servers);
        if (!c.isUp(id)) c.restart(id);
        c.connect(id);
      }
      if (rng.int(1000) < 200) c.crash(rng.intIn(1, servers));
      // Often enough that peers are rarely settled, rarely enough that they can often keep up.
      c.runFor((ELECTION_TIMEOUT_MS * 7) / 10);
    }
    c.runFor(ELECTION_TIMEOUT_MS);
    c.setReliable(true);
    restartAllDown(c);
    for (const id of c.ids) c.connect(id);
    for (const client of clients) client.stopped = true;
    c.runFor(ELECTION_TIMEOUT_MS);

    const lastIndex = c.one(values.take(), servers, true);
    const really = new Set<string>();
    for (let index = 1; index <= lastIndex; index++) {
      const value = c.wait(index, servers, -1);
      if (value !== -1) really.add(value);
    }
    const seen = clients.flatMap((client) => client.committed);
    // Every value a client saw committed is in the final log.
    for (const value of seen) expect(really.has(value), `value ${value} was lost`).toBe(true);
    expect(seen.length, 'no client saw anything commit').toBeGreaterThan(0);
    c.finish();
    return { committed: seen.length, lastIndex };
  }

  it('ReliableChurn', () => {
    forSeeds([1, 2, 3], (seed) => figures('ReliableChurn', seed, churn(seed, false)));
  });

  it('UnreliableChurn', () => {
    forSeeds([1, 2, 3], (seed) => figures('UnreliableChurn', seed, churn(seed, true)));
  });
});
