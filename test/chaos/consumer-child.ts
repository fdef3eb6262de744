// The consumer process of chaos:consumer and chaos:groups: one SDK consumer in a group that
// appends `P <run> <partition> <offset>` to its processed file and fsyncs it before the loop moves
// past the record (so whatever the group commits was processed: on disk first). Modes:
//   records-auto    for await (record of consumer), autoCommit every 200 ms; fsync per record
//   records-commit  the same, autoCommit off; commit() every 25 records
//   batches         for await (batch of consumer.batches()); fsync per batch, then markDone() of
//                   its last record and commit()
// SIGTERM ends the loop by its signal, commits what was finished and closes (leaves the group).
// Sends its membership ({memberId, generation, partitions}) to the parent over IPC on every
// assignment change and every 100 ms.

import { fsyncSync, openSync, writeSync } from 'node:fs';
import { type Consumer, Raftlog } from '../../src/client/index.js';

export type ChildMode = 'records-auto' | 'records-commit' | 'batches';

export interface ChildConfig {
  urls: string[];
  topic: string;
  group: string;
  out: string;
  run: number;
  mode: ChildMode;
  sessionTimeoutMs: number;
  /** Extra work per record, ms (0: the fsync is the work). */
  workMs: number;
  limit: number;
}

export interface MembershipReport {
  type: 'membership';
  memberId: string | null;
  generation: number | null;
  partitions: number[];
}

const COMMIT_EVERY_RECORDS = 25;
const REPORT_INTERVAL_MS = 100;

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2]!) as ChildConfig;
  const fd = openSync(config.out, 'a');
  const client = new Raftlog({ urls: config.urls });
  const stop = new AbortController();
  process.on('SIGTERM', () => stop.abort());
  process.send?.({ type: 'ready' });
  let consumer: Consumer | undefined;
  const report = () => {
    if (!consumer || !process.connected) return;
    const member = consumer.groupMember();
    const message: MembershipReport = {
      type: 'membership',
      memberId: member?.memberId ?? null,
      generation: member?.generation ?? null,
      partitions: consumer.assignment(),
    };
    process.send?.(message);
  };
  consumer = client.consumer({
    topic: config.topic,
    group: config.group,
    sessionTimeoutMs: config.sessionTimeoutMs,
    autoCommit: config.mode === 'records-auto' ? { intervalMs: 200 } : false,
    limit: config.limit,
    waitMs: 500,
    onAssign: () => report(),
    onRevoke: () => report(),
    onError: (error) => {
      // Retried in the background; noted for the summary.
      writeSync(fd, `E ${config.run} ${(error as { code?: string }).code ?? 'ERROR'}\n`);
    },
  });
  const timer = setInterval(report, REPORT_INTERVAL_MS);
  const processed = (partition: number, offset: number) =>
    writeSync(fd, `P ${config.run} ${partition} ${offset}\n`);
  // A failed commit is retried by the next one; noted in the file for the summary.
  const commit = () =>
    consumer!.commit().catch((error: unknown) => {
      const code = (error as { code?: string }).code ?? 'ERROR';
      writeSync(fd, `E ${config.run} ${code}\n`);
      return [];
    });
  const work = () => (config.workMs > 0 ? new Promise((r) => setTimeout(r, config.workMs)) : undefined);

  if (config.mode === 'batches') {
    for await (const batch of consumer.batches({ signal: stop.signal })) {
      for (const record of batch.records) {
        processed(record.partition, record.offset);
        await work();
      }
      fsyncSync(fd);
      consumer.markDone(batch.records.at(-1)!);
      await commit();
    }
  } else {
    let sinceCommit = 0;
    for await (const record of consumer.records({ signal: stop.signal })) {
      processed(record.partition, record.offset);
      fsyncSync(fd);
      await work();
      if (config.mode === 'records-commit' && ++sinceCommit >= COMMIT_EVERY_RECORDS) {
        sinceCommit = 0;
        await commit(); // Up to the record before this one: this one is in hand.
      }
    }
  }
  // The loop ended by the signal: the record in hand is finished. Without autoCommit, commit now.
  if (config.mode !== 'records-auto') await commit();
  clearInterval(timer);
  await consumer.close({ timeoutMs: 10_000 });
  await client.close();
  process.disconnect?.();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
