// bench:idle — what an idle cluster costs: a 3-node cluster of real `raftlog start` processes
// with 1,000 partitions (replication factor 3, so every node holds 1,000 replicas and leads about
// a third), no traffic. Every group ticks and its leader heartbeats; the transport sends one
// frame per peer per turn, whatever the number of groups. Measures each node's CPU time (user +
// system, from /proc/PID/stat) over a quiet window after every partition has a leader.
//
// Prints JSON, then a table.
//
//   npm run bench:idle [-- --partitions 1000 --seconds 10]

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ProcessCluster } from '../test/integration/process-cluster.js';

const { values: args } = parseArgs({
  options: {
    partitions: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '10' },
    'settle-seconds': { type: 'string', default: '5' },
  },
});
const PARTITIONS = Number(args.partitions);
const SECONDS = Number(args.seconds);
const SETTLE_SECONDS = Number(args['settle-seconds']);
const PARTITIONS_PER_TOPIC = 100;
const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux
const GOAL_PERCENT = 10;

function cpuSeconds(pid: number): number {
  // Fields after the parenthesised command name: utime is the 12th, stime the 13th (0-based 11, 12).
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const cluster = await ProcessCluster.create(3, 'async');
  try {
    cluster.startAll();
    await cluster.waitReady(30_000);
    const started = Date.now();
    for (let t = 0; t * PARTITIONS_PER_TOPIC < PARTITIONS; t++) {
      const partitions = Math.min(PARTITIONS_PER_TOPIC, PARTITIONS - t * PARTITIONS_PER_TOPIC);
      const res = await cluster.request(
        1 + (t % 3),
        'POST',
        '/v1/topics',
        { name: `idle-${t}`, partitions, replicationFactor: 3 },
        120_000,
      );
      if (res.status !== 201) throw new Error(`create idle-${t}: ${JSON.stringify(res.body)}`);
      process.stderr.write(`created ${t * PARTITIONS_PER_TOPIC + partitions} partitions\r`);
    }
    const createMs = Date.now() - started;
    process.stderr.write('\n');
    await cluster.waitReady(120_000);
    await sleep(SETTLE_SECONDS * 1000);

    const ids = [1, 2, 3];
    const pids = ids.map((id) => cluster.node(id).process?.pid ?? 0);
    const before = pids.map(cpuSeconds);
    const t0 = process.hrtime.bigint();
    await sleep(SECONDS * 1000);
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    const after = pids.map(cpuSeconds);
    const nodes = ids.map((id, i) => ({
      node: id,
      cpuPercentOfOneCore: Number((((after[i]! - before[i]!) / elapsed) * 100).toFixed(2)),
    }));

    const described = await cluster.request(1, 'GET', '/v1/topics', undefined, 30_000);
    const ledBy = new Map<number, number>();
    for (const topic of described.body.topics) {
      for (const p of topic.partitions) ledBy.set(p.leader, (ledBy.get(p.leader) ?? 0) + 1);
    }

    const report = {
      bench: 'idle',
      partitions: PARTITIONS,
      replicationFactor: 3,
      createSeconds: createMs / 1000,
      measuredSeconds: elapsed,
      nodes: nodes.map((n) => ({ ...n, partitionsLed: ledBy.get(n.node) ?? 0 })),
      goalPercentAtMost: GOAL_PERCENT,
      met: nodes.every((n) => n.cpuPercentOfOneCore < GOAL_PERCENT),
    };
    console.log(JSON.stringify(report, null, 2));
    console.log('node  partitions led  CPU % of one core (idle)');
    for (const n of report.nodes) {
      console.log(
        `${String(n.node).padEnd(4)}  ${String(n.partitionsLed).padEnd(14)}  ${n.cpuPercentOfOneCore.toFixed(2)}`,
      );
    }
  } finally {
    await cluster.destroy();
  }
}

await main();
