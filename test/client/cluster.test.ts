// The SDK against a real 3-node cluster (in-process brokers behind real HTTP listeners on
// 127.0.0.1): produce goes straight to partition leaders, fetches to followers; a leader change
// and a dead node cost no record and duplicate none (idempotent producer); a group of consumers
// shares the partitions, never two owners of one partition at a time, processing every record at
// least once; a consumer that dies without committing costs redelivery of its unfinished work only.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsumedRecord, partitionForKey, Raftlog } from '../../src/client/index.js';
import { ListeningCluster } from '../api/listening-cluster.js';
import { recordingAgent } from './recording-agent.js';

let cluster: ListeningCluster;
let urls: string[];
beforeAll(async () => {
  cluster = new ListeningCluster(3);
  await cluster.start();
  urls = [...cluster.urls.values()];
});
afterAll(async () => {
  await cluster.stop();
});

async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Every record of the topic, read to the high watermark: `partition` → values in offset order. */
async function readAll(client: Raftlog, topic: string): Promise<Map<number, string[]>> {
  const logs = new Map<number, string[]>();
  const consumer = client.consumer({ topic, readFrom: 'leader' });
  for await (const record of consumer.records({ follow: false })) {
    const log = logs.get(record.partition) ?? [];
    expect(record.offset).toBe(log.length); // Dense, in order.
    log.push(record.value);
    logs.set(record.partition, log);
  }
  return logs;
}

describe('routing against a real cluster', () => {
  it('produces straight to each partition leader and reads from followers', async () => {
    const { dispatcher, sent, agent } = recordingAgent();
    const client = new Raftlog({ urls, dispatcher });
    try {
      await client.createTopic({ name: 'routed', partitions: 3, replicationFactor: 3 });
      const producer = client.producer({ lingerMs: 2 });
      const records = Array.from({ length: 300 }, (_, i) => ({ key: `user-${i % 50}`, value: `v${i}` }));
      const results = await producer.send('routed', records);
      records.forEach((record, i) => {
        expect(results[i]!.partition).toBe(partitionForKey(Buffer.from(record.key), 3));
      });
      const described = await client.describeTopic('routed');
      const urlOf = (id: number | null) => cluster.urls.get(id!)!;
      const produces = sent.filter((s) => s.method === 'POST' && s.path.endsWith('/records'));
      expect(produces.length).toBeGreaterThanOrEqual(3);
      expect(produces.filter((s) => s.servedBy !== undefined)).toEqual([]); // None forwarded.
      const leaderUrls = new Set(described.partitions.map((p) => urlOf(p.leader)));
      for (const produce of produces) expect(leaderUrls.has(produce.origin)).toBe(true);

      const consumer = client.consumer({ topic: 'routed', readFrom: 'follower' });
      let count = 0;
      for await (const _ of consumer.records({ follow: false })) count++;
      expect(count).toBe(300);
      const fetches = sent.filter((s) => s.method === 'GET' && /partitions\/\d+\/records/.test(s.path));
      for (const fetch of fetches) {
        const partition = Number(fetch.path.split('/')[5]);
        expect(fetch.origin).not.toBe(urlOf(described.partitions[partition]!.leader));
        expect(fetch.servedBy).toBeUndefined();
      }
      await producer.close();
    } finally {
      await client.close();
      await agent.close();
    }
  });

  it('keeps producing across leader changes: no record lost, none twice', async () => {
    const client = new Raftlog({ urls });
    try {
      await client.createTopic({ name: 'moving', partitions: 2, replicationFactor: 3 });
      const producer = client.producer({ lingerMs: 1 });
      const sends: Promise<unknown>[] = [];
      for (let i = 0; i < 400; i++) {
        sends.push(producer.send('moving', [{ value: `m${i}`, partition: i % 2 }]));
        if (i % 100 === 50) {
          const partition = ((i / 100) % 2) | 0;
          const { leader } = (await client.describeTopic('moving')).partitions[partition]!;
          const next = (leader! % 3) + 1;
          await client.transferLeader('moving', partition, next);
        }
        if (i % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 2));
      }
      await Promise.all(sends);
      await producer.close();
      const logs = await readAll(client, 'moving');
      const values = [...logs.values()].flat();
      expect(values.length).toBe(400);
      expect(new Set(values).size).toBe(400);
    } finally {
      await client.close();
    }
  });
});

describe('a group of consumers against a real cluster', () => {
  it('shares 6 partitions among 3 members, one owner at a time, every record processed', async () => {
    const client = new Raftlog({ urls });
    const topic = 'shared';
    await client.createTopic({ name: topic, partitions: 6, replicationFactor: 3 });
    const producer = client.producer({ lingerMs: 2 });
    const total = 1200;
    await producer.send(
      topic,
      Array.from({ length: total }, (_, i) => ({ key: `k${i}`, value: `r${i}` })),
    );
    const owner = new Map<number, number>();
    const violations: string[] = [];
    const readers = new Set<number>();
    let revocations = 0;
    const processed = new Map<string, number>();
    const controllers = [0, 1, 2].map(() => new AbortController());
    const consumers = [0, 1, 2].map((member) =>
      client.consumer({
        topic,
        group: 'billing',
        sessionTimeoutMs: 2000,
        autoCommit: { intervalMs: 100 },
        onAssign: (partitions) => {
          for (const { partition } of partitions) {
            if (owner.has(partition))
              violations.push(`p${partition} given to ${member} while ${owner.get(partition)} owns it`);
            owner.set(partition, member);
          }
        },
        onRevoke: (partitions, reason) => {
          if (reason === 'rebalance') revocations++;
          for (const { partition } of partitions) {
            if (owner.get(partition) !== member)
              violations.push(`p${partition} revoked from ${member}, not its owner`);
            owner.delete(partition);
          }
        },
      }),
    );
    const loops = consumers.map(async (consumer, member) => {
      for await (const record of consumer.records({ signal: controllers[member]!.signal })) {
        if (owner.get(record.partition) !== member)
          violations.push(`${member} read p${record.partition} it does not own`);
        processed.set(record.value, (processed.get(record.value) ?? 0) + 1);
        readers.add(member);
        await new Promise((resolve) => setTimeout(resolve, 0)); // Slow work: rebalances land mid-stream.
      }
    });
    try {
      await until(
        () => processed.size >= total / 3 && readers.size === 3,
        'a third of the records, by all three',
      );
      expect(revocations).toBeGreaterThan(0); // The first member gave partitions up to the others.
      // One member leaves mid-stream: its partitions move to the others.
      controllers[2]!.abort();
      await loops[2];
      await consumers[2]!.close();
      await until(() => processed.size === total, 'every record');
      expect(violations).toEqual([]);
      const group = await client.describeGroup('billing');
      expect(group.members).toHaveLength(2);
    } finally {
      for (const controller of controllers) controller.abort();
      await Promise.all(loops);
      await Promise.all(consumers.map((c) => c.close()));
    }
    // Each member committed what it finished before letting go: the group is at the end.
    const described = await client.describeTopic(topic);
    const committed = await client.groupOffsets('billing', { topic });
    expect(committed.map((o) => o.offset)).toEqual(described.partitions.map((p) => p.highWatermark));
    const again = [...processed.values()].filter((n) => n > 1).length;
    expect(again).toBeLessThanOrEqual(6); // At most the record in hand per partition moved.
    await producer.close();
    await client.close();
  });

  it('after a member dies without committing, another reads from the last commit: nothing lost', async () => {
    const topic = 'crash';
    const admin = new Raftlog({ urls });
    await admin.createTopic({ name: topic, partitions: 2, replicationFactor: 3 });
    const producer = admin.producer({ lingerMs: 2 });
    await producer.send(
      topic,
      Array.from({ length: 400 }, (_, i) => ({ value: `c${i}`, partition: i % 2 })),
    );
    const seen = new Map<string, number>();
    // The member that dies has its own client: killing it is closing every connection at once.
    const { dispatcher, agent } = recordingAgent();
    const doomed = new Raftlog({ urls, dispatcher, retry: { attemptsMax: 1 } });
    const first = doomed.consumer({
      topic,
      group: 'crashy',
      sessionTimeoutMs: 1000,
      autoCommit: { intervalMs: 50 },
    });
    const iterator = first.records();
    for (let i = 0; i < 150; i++) {
      const { value } = await iterator.next();
      seen.set(value!.value, 1);
      if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const committedBefore = await admin.groupOffsets('crashy', { topic });
    await agent.destroy(); // "kill -9": no commit, no leave.
    const survivor = admin.consumer({ topic, group: 'crashy', sessionTimeoutMs: 1000 });
    const redelivered: ConsumedRecord[] = [];
    const controller = new AbortController();
    const reading = (async () => {
      for await (const record of survivor.records({ signal: controller.signal })) {
        if (seen.has(record.value)) redelivered.push(record);
        seen.set(record.value, (seen.get(record.value) ?? 0) + 1);
        if (seen.size === 400) controller.abort();
      }
    })();
    await until(() => seen.size === 400, 'every record after the crash', 30_000);
    await reading;
    await survivor.close();
    await first.close().catch(() => undefined); // Stops the dead member's timers (its calls fail).
    // Redelivered: what the dead member had read past its last commit, nothing before it.
    const committed = new Map(committedBefore.map((o) => [o.partition, o.offset]));
    for (const record of redelivered)
      expect(record.offset).toBeGreaterThanOrEqual(committed.get(record.partition) ?? 0);
    expect(redelivered.length).toBeLessThanOrEqual(150);
    await producer.close();
    await admin.close();
  });
});

describe('a dead node', () => {
  it('a producer given three URLs keeps producing while the node it used first is killed', async () => {
    const own = new ListeningCluster(3);
    await own.start();
    const client = new Raftlog({ urls: [...own.urls.values()], nodeDownMs: 1000 });
    try {
      await client.createTopic({ name: 'survive', partitions: 3, replicationFactor: 3 });
      const producer = client.producer({ lingerMs: 1 });
      const acknowledged: string[] = [];
      let killed = false;
      for (let i = 0; i < 600; i++) {
        const value = `s${i}`;
        const send = producer.send('survive', [{ value }]).then(() => acknowledged.push(value));
        if (i === 200) {
          await own.apps.get(1)!.close(); // Its HTTP port stops answering...
          await own.cluster.kill(1); // ...and its broker is gone: leaders and metadata move.
          killed = true;
        }
        if (i % 10 === 0) await send;
      }
      await producer.flush();
      expect(killed).toBe(true);
      expect(acknowledged).toHaveLength(600);
      const logs = await readAll(client, 'survive');
      const values = [...logs.values()].flat();
      expect(values.sort()).toEqual([...acknowledged].sort()); // No gap (readAll checks density), no duplicate.
      await producer.close();
    } finally {
      await client.close();
      await own.stop();
    }
  });
});
