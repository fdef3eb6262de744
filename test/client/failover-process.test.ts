// The SDK across kill -9 of real node processes (issue 15, acceptance 4): a producer given three
// URLs, whose first URL is also the partition's leader (so the node it used first for metadata
// and for produce is the one that dies), keeps producing. Every send resolves, and the final log
// holds each value exactly once, in send order, at dense offsets: the offsets the sends resolved
// with. test/client/cluster.test.ts covers the same in-process; this one has real processes,
// real sockets and a real SIGKILL.

import { afterAll, expect, it } from 'vitest';
import { Raftlog, type RecordMetadata } from '../../src/client/index.js';
import { eventually, ProcessCluster } from '../integration/process-cluster.js';

const TOPIC = 'failover';
const BEFORE_KILL = 300;
const AFTER_KILL = 300;
const IN_FLIGHT_MAX = 16;

const clusters: ProcessCluster[] = [];
afterAll(async () => {
  for (const cluster of clusters) await cluster.destroy();
});

it('a producer given three URLs keeps producing, no duplicate and no gap, while the node it used first is killed', async () => {
  const cluster = await ProcessCluster.create(3);
  clusters.push(cluster);
  cluster.startAll();
  await cluster.waitReady(30_000);
  const urls = [1, 2, 3].map((id) => cluster.node(id).url);

  // Make node 1 the partition's leader, so that it is the first node the client uses for everything.
  const admin = new Raftlog({ urls });
  await admin.createTopic({ name: TOPIC, partitions: 1, replicationFactor: 3 });
  await admin.transferLeader(TOPIC, 0, 1, { timeoutMs: 20_000 });
  await admin.close();

  const client = new Raftlog({ urls });
  const producer = client.producer({ idempotent: true, lingerMs: 1 });
  const results = new Map<string, RecordMetadata>();
  const inFlight = new Set<Promise<void>>();
  const send = (i: number) => {
    const value = `v${i}`;
    const promise = producer.send(TOPIC, [{ value }], { timeoutMs: 30_000 }).then(([metadata]) => {
      results.set(value, metadata!);
    });
    const tracked = promise.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  };
  try {
    for (let i = 0; i < BEFORE_KILL + AFTER_KILL; i++) {
      if (i === BEFORE_KILL) {
        // Requests are in flight to node 1 at this moment.
        expect(inFlight.size).toBeGreaterThan(0);
        const exit = await cluster.kill(1, 'SIGKILL');
        expect(exit).not.toBe(0);
      }
      send(i);
      if (inFlight.size >= IN_FLIGHT_MAX) await Promise.race(inFlight);
    }
    await producer.flush({ timeoutMs: 30_000 });
    await Promise.all(inFlight); // Rejects if any send failed.
    await producer.close({ timeoutMs: 10_000 });
    expect(results.size).toBe(BEFORE_KILL + AFTER_KILL);

    // Read the whole log from the survivors, once they agree on a leader.
    const reader = new Raftlog({ urls: urls.slice(1) });
    try {
      await eventually(
        async () => {
          const leader = (await reader.describeTopic(TOPIC)).partitions[0]!.leader;
          return leader === 2 || leader === 3;
        },
        20_000,
        'a new leader among the survivors',
      );
      const log: string[] = [];
      const consumer = reader.consumer({ topic: TOPIC, readFrom: 'leader' });
      for await (const record of consumer.records({ follow: false })) {
        expect(record.offset).toBe(log.length); // Dense: no gap.
        log.push(record.value);
      }
      await consumer.close();
      // Each value once (no duplicate), in the order sent (one request in flight per partition).
      expect(log).toEqual(Array.from({ length: BEFORE_KILL + AFTER_KILL }, (_, i) => `v${i}`));
      // And each send resolved with the offset its record really has.
      for (const [value, metadata] of results) expect(log[metadata.offset]).toBe(value);
    } finally {
      await reader.close();
    }
  } finally {
    await client.close();
  }
}, 120_000);
