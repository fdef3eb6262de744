// Catch-up of a replica: stop a follower, write `megabytes` to the partition, restart it and time
// until its high watermark reaches the leader's. Needs control over the node processes.

import { Pool } from 'undici';
import type { PersistenceMode } from '../../src/wire/types.js';
import type { Progress } from './progress.js';
import { produceBody } from './records.js';
import { type ClusterTarget, metric } from './target.js';

export interface CatchUp {
  persistence: PersistenceMode;
  megabytes: number;
  /** From the restart to the node answering /healthz. */
  startSeconds: number;
  /** From /healthz to a high watermark equal to the leader's. */
  catchUpSeconds: number;
  megabytesPerSecond: number;
}

const RECORD_BYTES = 1024;
const RECORDS_PER_REQUEST = 100;
const WRITERS = 8;
const WRITE_DEADLINE_MS = 120_000;
const CATCH_UP_DEADLINE_MS = 180_000;

export async function catchUp(
  target: ClusterTarget,
  options: { persistence: PersistenceMode; megabytes: number },
  progress: Progress,
): Promise<CatchUp> {
  const control = target.control;
  if (!control) throw new Error('catch-up needs a cluster started by the suite');
  const topic = await target.createTopic(`catch-up-${options.persistence}`, {
    partitions: 1,
    persistence: options.persistence,
  });
  const placement = topic.placements[0]!;
  const lagging = placement.replicas.find((id) => id !== placement.leader)!;
  await control.stop(lagging);
  const requests = Math.ceil((options.megabytes * 1e6) / (RECORD_BYTES * RECORDS_PER_REQUEST));
  await write(target.url(placement.leader), topic.name, requests, progress);
  const leaderHighWatermark = await metric(
    target.url(placement.leader),
    'raftlog_partition_high_watermark',
    `"${topic.name}"`,
  );

  const restartedMs = performance.now();
  await control.start(lagging);
  const upMs = await until(
    async () => (await metric(target.url(lagging), 'raftlog_process_cpu_seconds_total')) >= 0,
  );
  // The rate so far is the replica's high watermark in records per second.
  let replicaHighWatermark = 0;
  const phase = progress.phase(
    `catch-up of ${options.megabytes} MB (at most)`,
    CATCH_UP_DEADLINE_MS / 1000,
    'records/s',
    () => replicaHighWatermark,
  );
  const caughtUpMs = await until(async () => {
    const read = await metric(target.url(lagging), 'raftlog_partition_high_watermark', `"${topic.name}"`);
    if (!Number.isNaN(read)) replicaHighWatermark = read;
    return replicaHighWatermark >= leaderHighWatermark;
  }).finally(phase.done);
  const catchUpSeconds = (caughtUpMs - upMs) / 1000;
  return {
    persistence: options.persistence,
    megabytes: options.megabytes,
    startSeconds: (upMs - restartedMs) / 1000,
    catchUpSeconds,
    megabytesPerSecond: options.megabytes / catchUpSeconds,
  };
}

async function write(leaderUrl: string, topic: string, requests: number, progress: Progress): Promise<void> {
  const pool = new Pool(leaderUrl, { connections: WRITERS });
  const body = produceBody({ count: RECORDS_PER_REQUEST, bytes: RECORD_BYTES });
  let next = 0;
  let written = 0;
  const deadline = Date.now() + WRITE_DEADLINE_MS;
  const phase = progress.phase(
    `writing ${requests} requests while a replica is down`,
    WRITE_DEADLINE_MS / 1000,
    'req/s',
    () => written,
  );
  try {
    await Promise.all(
      Array.from({ length: WRITERS }, async () => {
        while (next < requests && Date.now() < deadline) {
          next++;
          const response = await pool.request({
            method: 'POST',
            path: `/v1/topics/${topic}/records`,
            headers: { 'content-type': 'application/json' },
            body,
          });
          await response.body.dump();
          if (response.statusCode !== 200) throw new Error(`catch-up write: ${response.statusCode}`);
          written++;
        }
      }),
    );
    if (written < requests) throw new Error(`catch-up: wrote ${written} of ${requests} requests in time`);
  } finally {
    phase.done();
    await pool.destroy();
  }
}

/** Polls every 100 ms until the condition holds; resolves with the time it did. */
async function until(condition: () => Promise<boolean>): Promise<number> {
  const deadline = Date.now() + CATCH_UP_DEADLINE_MS;
  while (Date.now() < deadline) {
    if (await condition().catch(() => false)) return performance.now();
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('catch-up: the replica did not catch up in time');
}
