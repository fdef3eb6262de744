// 6.824 lab 2D (log compaction) on the simulator, in virtual time. Every node snapshots its state
// machine and cuts its log every SNAPSHOT_INTERVAL applied entries (the lab's service does the
// same through Snapshot()); a follower behind the leader's log start gets the snapshot installed.
// The lab's bound: persisted Raft state (log and hard state, not the snapshot) stays under
// MAX_LOG_BYTES on every node, measured as the lab's LogSize with raftStateBytes.

import { describe, expect, it } from 'vitest';
import { MessageType } from '../../src/raft/index.js';
import {
  figures,
  forSeeds,
  labCluster,
  MAX_LOG_BYTES,
  maxRaftStateBytes,
  peer,
  SNAPSHOT_INTERVAL,
  Values,
} from './lab.js';

interface SnapCommon {
  disconnect: boolean;
  reliable: boolean;
  crash: boolean;
}

/** 6.824's snapCommon: 30 rounds of a victim going away while the others take 5–14 entries. */
function snapCommon(seed: number, scenario: string, { disconnect, reliable, crash }: SnapCommon): void {
  const servers = 3;
  const { c, rng } = labCluster({ seed, nodes: servers, reliable, snapshotEvery: SNAPSHOT_INTERVAL });
  const values = new Values(rng);
  c.one(values.take(), servers, true);
  let leader1 = c.checkOneLeader();
  let largestStateBytes = 0;
  for (let iteration = 0; iteration < 30; iteration++) {
    // Every third round the victim is the leader and proposals go to a follower (which refuses
    // unless it has become leader meanwhile).
    let victim = peer(leader1, 1, servers);
    let sender = leader1;
    if (iteration % 3 === 1) {
      sender = peer(leader1, 1, servers);
      victim = leader1;
    }
    if (disconnect) {
      c.disconnect(victim);
      c.one(values.take(), servers - 1, true);
    }
    if (crash) {
      c.crash(victim);
      c.one(values.take(), servers - 1, true);
    }
    // Perhaps enough to get a snapshot.
    const count = SNAPSHOT_INTERVAL / 2 + rng.int(SNAPSHOT_INTERVAL);
    for (let i = 0; i < count; i++) c.start(sender, values.take());
    // Let the appliers catch up with the Starts. Without a victim all three must have everything,
    // so that SnapshotBasic needs no InstallSnapshot.
    c.one(values.take(), disconnect || crash ? servers - 1 : servers, true);
    const stateBytes = maxRaftStateBytes(c);
    largestStateBytes = Math.max(largestStateBytes, stateBytes);
    expect(stateBytes, 'log size too large').toBeLessThanOrEqual(MAX_LOG_BYTES);
    if (disconnect) {
      // The victim may be behind the others' log start: it needs a snapshot.
      c.connect(victim);
      c.one(values.take(), servers, true);
      leader1 = c.checkOneLeader();
    }
    if (crash) {
      c.restart(victim);
      c.one(values.take(), servers, true);
      leader1 = c.checkOneLeader();
    }
  }
  c.finish();
  const installs = c.network.stats.byType.get(MessageType.Snapshot) ?? 0;
  if (disconnect || crash) expect(installs, 'no follower was sent a snapshot').toBeGreaterThan(0);
  figures(scenario, seed, {
    largestStateBytes,
    bound: MAX_LOG_BYTES,
    snapshotsSent: installs,
    applied: c.checker.appliedLength,
  });
}

describe('6.824 2D: snapshots', () => {
  it('SnapshotBasic', () => {
    forSeeds([1, 2, 3], (seed) =>
      snapCommon(seed, 'SnapshotBasic', { disconnect: false, reliable: true, crash: false }),
    );
  });

  it('SnapshotInstall', () => {
    forSeeds([1, 2, 3], (seed) =>
      snapCommon(seed, 'SnapshotInstall', { disconnect: true, reliable: true, crash: false }),
    );
  });

  it('SnapshotInstallUnreliable', () => {
    forSeeds([1, 2, 3], (seed) =>
      snapCommon(seed, 'SnapshotInstallUnreliable', { disconnect: true, reliable: false, crash: false }),
    );
  });

  it('SnapshotInstallCrash', () => {
    forSeeds([1, 2, 3], (seed) =>
      snapCommon(seed, 'SnapshotInstallCrash', { disconnect: false, reliable: true, crash: true }),
    );
  });

  it('SnapshotInstallUnCrash', () => {
    forSeeds([1, 2, 3], (seed) =>
      snapCommon(seed, 'SnapshotInstallUnCrash', { disconnect: false, reliable: false, crash: true }),
    );
  });

  it('SnapshotAllCrash', () => {
    forSeeds([1, 2, 3], (seed) => {
      const servers = 3;
      const { c, rng } = labCluster({ seed, nodes: servers, snapshotEvery: SNAPSHOT_INTERVAL });
      const values = new Values(rng);
      c.one(values.take(), servers, true);
      const steps: string[] = [];
      for (let iteration = 0; iteration < 5; iteration++) {
        // Perhaps enough to get a snapshot.
        const count = SNAPSHOT_INTERVAL / 2 + rng.int(SNAPSHOT_INTERVAL);
        for (let i = 0; i < count; i++) c.one(values.take(), servers, true);
        const index1 = c.one(values.take(), servers, true);
        // Crash all, then revive all from their disks.
        for (const id of c.ids) c.crash(id);
        for (const id of c.ids) c.restart(id);
        const index2 = c.one(values.take(), servers, true);
        expect(index2, `index decreased from ${index1} to ${index2}`).toBeGreaterThanOrEqual(index1 + 1);
        expect(maxRaftStateBytes(c), 'log size too large').toBeLessThanOrEqual(MAX_LOG_BYTES);
        steps.push(`${index1}->${index2}`);
      }
      c.finish();
      figures('SnapshotAllCrash', seed, { indexes: steps.join(' '), virtualMs: c.nowMs });
    });
  });
});
