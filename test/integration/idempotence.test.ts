// An idempotent producer across kill -9 of the partition leader (real processes): every request
// is retried with its sequence until it succeeds, and the final log holds every value exactly
// once at dense offsets. Retries of committed requests answer duplicate: true, original offsets.

import { afterAll, describe, expect, it } from 'vitest';
import { eventually, type HttpResult, ProcessCluster } from './process-cluster.js';

const REQUESTS = 40;
const RECORDS_PER_REQUEST = 2;
const KILL_AT_REQUEST = 20;

interface Answer {
  offsets: number[];
  duplicate: boolean;
}

const clusters: ProcessCluster[] = [];
afterAll(async () => {
  for (const cluster of clusters) await cluster.destroy();
});

function requestBody(i: number) {
  const sequence = i * RECORDS_PER_REQUEST;
  return {
    records: Array.from({ length: RECORDS_PER_REQUEST }, (_, k) => ({ value: `v${sequence + k}` })),
    producer: { id: 'it-producer', epoch: 0, sequence },
    timeoutMs: 2000,
  };
}

/** Sends request i to `first`, then to any running node, same sequence, until a 200. */
async function sendUntilOk(
  cluster: ProcessCluster,
  i: number,
  first: number,
  failures: HttpResult[],
): Promise<Answer> {
  const deadline = Date.now() + 30_000;
  let target = first;
  for (;;) {
    const res = await cluster.request(target, 'POST', '/v1/topics/idem/records', requestBody(i), 5000);
    if (res.status === 200) {
      return {
        offsets: res.body.offsets.map((o: { offset: number }) => o.offset),
        duplicate: res.body.duplicate,
      };
    }
    // Only "outcome unknown or not applied" answers are retried; anything else is a bug.
    expect([0, 503, 504], JSON.stringify(res.body)).toContain(res.status);
    failures.push(res);
    if (Date.now() > deadline) throw new Error(`request ${i} never succeeded: ${JSON.stringify(res.body)}`);
    const running = [...cluster.nodes.keys()].filter((id) => cluster.isRunning(id));
    target = running[(running.indexOf(target) + 1) % running.length] ?? running[0]!;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function leaderOf(cluster: ProcessCluster, via: number): Promise<number> {
  const res = await cluster.request(via, 'GET', '/v1/topics/idem');
  return res.body.partitions[0].leader as number;
}

/** A running 3-node async cluster with the one-partition topic 'idem'. */
async function clusterWithTopic(): Promise<ProcessCluster> {
  const cluster = await ProcessCluster.create(3, 'async');
  clusters.push(cluster);
  cluster.startAll();
  await cluster.waitReady();
  const created = await cluster.request(1, 'POST', '/v1/topics', { name: 'idem', partitions: 1 });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return cluster;
}

describe('idempotent producer across kill -9 of the leader (real processes)', () => {
  it('leaves no duplicate and no gap; retries of committed requests get the original offsets', async () => {
    const cluster = await clusterWithTopic();

    const answers: Answer[] = [];
    const failures: HttpResult[] = [];
    let victim = 0;
    for (let i = 0; i < REQUESTS; i++) {
      if (i !== KILL_AT_REQUEST) {
        const running = [...cluster.nodes.keys()].filter((id) => cluster.isRunning(id));
        answers.push(await sendUntilOk(cluster, i, running[i % running.length]!, failures));
        continue;
      }
      // Send straight to the leader and kill it with the request in flight: the answer is lost
      // (or the request never got there); the retry must commit it once.
      victim = await leaderOf(cluster, 1);
      const inFlight = cluster.request(victim, 'POST', '/v1/topics/idem/records', requestBody(i), 5000);
      await cluster.kill(victim, 'SIGKILL');
      const lost = await inFlight;
      console.log(`request ${i} to the killed leader ${victim}: status ${lost.status}`);
      const survivor = victim === 1 ? 2 : 1;
      answers.push(await sendUntilOk(cluster, i, survivor, failures));
      // Re-send requests acknowledged before the kill, within the last 5 batches the table keeps
      // per producer: both committed, so both answer with their original offsets.
      for (const old of [i - 1, i - 4]) {
        const retry = await sendUntilOk(cluster, old, survivor, failures);
        expect(retry, `retry of request ${old}`).toEqual({ offsets: answers[old]!.offsets, duplicate: true });
      }
      // Older than the last 5 batches: refused as out of order, never appended again.
      const ancient = await cluster.request(survivor, 'POST', '/v1/topics/idem/records', requestBody(3));
      expect(ancient.status).toBe(409);
      expect(ancient.body.error.code).toBe('OUT_OF_ORDER_SEQUENCE');
    }
    console.log(
      `failed attempts retried: ${failures.length} (${failures.map((f) => f.status).join(',')}); ` +
        `duplicate answers among first successes: ${answers.filter((a) => a.duplicate).length}`,
    );

    const total = REQUESTS * RECORDS_PER_REQUEST;
    // Each request's answer names where its values are.
    for (const answer of answers) {
      expect(answer.offsets).toHaveLength(RECORDS_PER_REQUEST);
      expect(answer.offsets[1]).toBe(answer.offsets[0]! + 1);
    }
    cluster.start(victim);
    await cluster.waitReady(30_000);
    for (const nodeId of [1, 2, 3]) {
      let records: Array<{ offset: number; value: string }> = [];
      await eventually(
        async () => {
          const res = await cluster.request(
            nodeId,
            'GET',
            `/v1/topics/idem/partitions/0/records?offset=0&limit=10000&waitMs=1000&minOffset=${total - 1}`,
          );
          records = res.status === 200 ? res.body.records : [];
          return records.length >= total;
        },
        20_000,
        `node ${nodeId} never held ${total} records`,
      );
      // Dense, exactly once each, and every answer's offsets hold that request's values.
      expect(records.map((r) => r.offset)).toEqual(Array.from({ length: total }, (_, k) => k));
      expect(new Set(records.map((r) => r.value)).size).toBe(total);
      expect(records.map((r) => r.value).sort()).toEqual(
        Array.from({ length: total }, (_, k) => `v${k}`).sort(),
      );
      const byOffset = new Map(records.map((r) => [r.offset, r.value]));
      answers.forEach((answer, i) => {
        answer.offsets.forEach((offset, k) => {
          expect(byOffset.get(offset), `node ${nodeId} request ${i}`).toBe(`v${i * RECORDS_PER_REQUEST + k}`);
        });
      });
    }
    console.log(`final log on every node: ${total} records at offsets 0..${total - 1}, each value once`);
  }, 120_000);

  it('answers 504 TIMEOUT while the followers are stopped; the retry commits the batch once', async () => {
    const cluster = await clusterWithTopic();
    const failures: HttpResult[] = [];
    const first = await sendUntilOk(cluster, 0, 1, failures);
    expect(first).toEqual({ offsets: [0, 1], duplicate: false });

    const leader = await leaderOf(cluster, 1);
    const followers = [1, 2, 3].filter((id) => id !== leader);
    // SIGSTOP: the followers answer nothing, yet their links stay up for the transport's peer
    // timeout (2 s), so the leader appends and waits. (Killed, they would be seen down at once and
    // the answer would be 503 NOT_ENOUGH_REPLICAS, with nothing appended.)
    for (const id of followers) cluster.node(id).process?.kill('SIGSTOP');
    const body = { ...requestBody(1), timeoutMs: 300 };
    const timedOut = await cluster.request(leader, 'POST', '/v1/topics/idem/records', body);
    expect(timedOut.status, JSON.stringify(timedOut.body)).toBe(504);
    expect(timedOut.body.error.code).toBe('TIMEOUT');

    for (const id of followers) cluster.node(id).process?.kill('SIGCONT');
    await cluster.waitReady(30_000);
    const retry = await sendUntilOk(cluster, 1, leader, failures);
    // Committed once at offsets 2..3: as a duplicate if the timed-out batch survived in the new
    // leader's log, as a fresh append if a new leader without it overwrote it.
    expect(retry.offsets).toEqual([2, 3]);
    console.log(`504, then the retry answered ${JSON.stringify(retry)}`);
    const next = await sendUntilOk(cluster, 2, leader, failures);
    expect(next).toEqual({ offsets: [4, 5], duplicate: false });
    for (const nodeId of [1, 2, 3]) {
      let values: string[] = [];
      await eventually(
        async () => {
          const res = await cluster.request(
            nodeId,
            'GET',
            '/v1/topics/idem/partitions/0/records?offset=0&waitMs=1000&minOffset=5',
          );
          values = res.status === 200 ? res.body.records.map((r: { value: string }) => r.value) : [];
          return values.length >= 6;
        },
        20_000,
        `node ${nodeId} never held 6 records`,
      );
      expect(values).toEqual(['v0', 'v1', 'v2', 'v3', 'v4', 'v5']);
    }
  }, 120_000);
});
