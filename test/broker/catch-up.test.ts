// A replica that was down while megabytes were written catches up from the leader's segment files:
// on an in-process cluster over the real storage engine, with an entry cache far smaller than what
// it missed (so the leader reads it back from disk, ahead of the sends), it reaches the leader's
// high watermark with the same records, byte for byte.

import { describe, expect, it } from 'vitest';
import type { BrokerNode } from '../../src/broker/node.js';
import type { StoredRecord } from '../../src/broker/record-batch.js';
import { diskClusters } from './disk-cluster.js';
import { createOnePartitionTopic, eventually, leaderOf } from './in-process-cluster.js';

const RECORD_BYTES = 4096;
const RECORDS_PER_BATCH = 16;
const BATCHES = 64; // 4 MiB of values
/** Far less than what the replica misses: the leader must read it back from its segment files. */
const CACHE_BYTES = 64 * 1024;
const LOAD_BYTES = 64 * 1024;
// 200 ms heartbeats: sends that waited for the next heartbeat after each read from disk would
// make this catch-up take seconds instead of a fraction of one.
const TIMING = { tickMs: 20, heartbeatTicks: 10, electionTicks: 40 };
const CATCH_UP_DEADLINE_MS = 10_000;

async function readAll(node: BrokerNode, groupId: number, end: number): Promise<StoredRecord[]> {
  const records: StoredRecord[] = [];
  while (records.length < end) {
    const page = await node.fetch(groupId, {
      offset: records.length,
      limit: 1000,
      maxBytes: 1024 * 1024,
      waitMs: 0,
      consistency: 'local',
      minOffset: undefined,
    });
    if (page.records.length === 0) throw new Error(`node ${node.nodeId}: no records at ${records.length}`);
    records.push(...page.records);
  }
  return records;
}

describe('catch-up of a replica that was down', () => {
  const clusters = diskClusters('catch-up');

  it('reaches the leader from its segment files, with the same records byte for byte', async () => {
    const c = await clusters.start(
      { timing: TIMING },
      { cacheBytesMax: CACHE_BYTES, loadBytesMin: LOAD_BYTES },
    );
    const groupId = await createOnePartitionTopic(c, 't', { persistence: 'async' });
    const leader = leaderOf(c, groupId)!.node;
    const lagging = [...c.nodes.keys()].find((id) => id !== leader.nodeId)!;
    await c.kill(lagging);

    for (let batch = 0; batch < BATCHES; batch++) {
      const records = Array.from({ length: RECORDS_PER_BATCH }, (_, i) => {
        const value = new Uint8Array(RECORD_BYTES).fill((batch * RECORDS_PER_BATCH + i) % 251);
        return { key: null, value, headers: null, timestampMs: null };
      });
      await leader.produce(groupId, { records, producer: null, timeoutMs: 5000 });
    }
    const end = BATCHES * RECORDS_PER_BATCH;
    const leaderMachine = leader.localPartition(groupId)!.machine;
    expect(leaderMachine.highWatermark).toBe(end);

    const restarted = await c.start(lagging);
    const caughtUp = await eventually(
      () => restarted.localPartition(groupId)?.machine.highWatermark === end,
      CATCH_UP_DEADLINE_MS,
    );
    expect(caughtUp, `high watermark ${restarted.localPartition(groupId)?.machine.highWatermark}`).toBe(true);

    const expected = await readAll(leader, groupId, end);
    const actual = await readAll(restarted, groupId, end);
    expect(actual.length).toBe(end);
    for (let i = 0; i < end; i++) {
      expect(actual[i]!.offset).toBe(expected[i]!.offset);
      expect(Buffer.compare(actual[i]!.value, expected[i]!.value), `record ${i}`).toBe(0);
    }
  }, 30_000);
});
