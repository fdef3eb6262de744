// The metadata group compacts its log into snapshots; a node that was down while that happened
// is brought back by a snapshot from the leader, and must install it without taking a snapshot
// of its own from a log that does not yet hold the snapshot's index.

import { afterEach, describe, expect, it } from 'vitest';
import { eventually, InProcessCluster } from './in-process-cluster.js';

let cluster: InProcessCluster | null = null;

afterEach(async () => {
  await cluster?.stopAll();
  cluster = null;
});

describe('metadata snapshots', () => {
  it('a node restarted behind the leader log start installs the snapshot and catches up', async () => {
    const errors: unknown[] = [];
    const onError = (error: unknown) => errors.push(error);
    process.on('uncaughtException', onError);
    process.on('unhandledRejection', onError);
    try {
      cluster = new InProcessCluster(3, { timing: { metadataSnapshotEveryEntries: 10 } });
      await cluster.startAll();
      expect(await eventually(() => cluster!.metadataLeader() !== undefined, 5000)).toBe(true);
      const leader = cluster.metadataLeader()!;
      const created = await leader.proposeMetadata(
        {
          type: 'createTopic',
          name: 't',
          partitions: 1,
          replicationFactor: 3,
          config: { persistence: 'async', retentionMs: -1, retentionBytes: -1 },
        },
        5000,
      );
      expect(created.ok).toBe(true);
      const victim = [...cluster.nodes.keys()].find((id) => id !== leader.nodeId)!;
      await cluster.kill(victim);
      for (let i = 0; i < 40; i++) {
        const result = await leader.proposeMetadata(
          { type: 'commitOffsets', group: 'g', offsets: [{ topic: 't', partition: 0, offset: i }] },
          5000,
        );
        expect(result.ok).toBe(true);
      }
      // The leader's log now starts past every index the victim holds.
      const node = await cluster.start(victim);
      const caughtUp = await eventually(
        () => node.groupOffsets('g').some((o) => o.offset === 39) && errors.length === 0,
        5000,
      );
      expect(errors).toEqual([]);
      expect(caughtUp).toBe(true);
      // And it goes on applying (and compacting) after the snapshot.
      for (let i = 40; i < 60; i++) {
        await leader.proposeMetadata(
          { type: 'commitOffsets', group: 'g', offsets: [{ topic: 't', partition: 0, offset: i }] },
          5000,
        );
      }
      expect(await eventually(() => node.groupOffsets('g').some((o) => o.offset === 59), 5000)).toBe(true);
      expect(errors).toEqual([]);
    } finally {
      process.off('uncaughtException', onError);
      process.off('unhandledRejection', onError);
    }
  });
});
