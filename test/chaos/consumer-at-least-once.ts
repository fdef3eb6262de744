// chaos:consumer — issue 15, acceptance 2: at least once through kills. One SDK consumer process
// in a group (consumer-child.ts) processes records slowly (append + fsync per record or per
// batch, before the loop moves on) while this process produces more; it is stopped at random
// points, mostly by SIGKILL (every --clean-every-th stop is a SIGTERM: commit and leave), and
// started again, --kills times, rotating the three ways of reading (records with autoCommit,
// records with commit(), batches). A last consumer then reads to the end.
//
// Checked:
// - throughout (every 100 ms): the group's committed offset of each partition is never past the
//   last processed record + 1 (read the offsets, then the processed file: a commit of a record
//   that was only fetched would show);
// - at the end: every acknowledged record was processed at least once, and the final committed
//   offsets are the high watermarks;
// - per stop: the records processed again by the next consumer are at most what was in flight at
//   the stop (processed, not yet committed as last seen by the poll); after a SIGTERM, none of
//   what the stopped consumer processed (it committed all of it on close).
//
// Three real `raftlog start` nodes (the built CLI: npm run build first). Progress on stderr,
// JSON and a table on stdout. Exits 1 on a violation. Bounded: --kills (≤ 200) and --seconds-max.
//
//   npx tsx test/chaos/consumer-at-least-once.ts [--kills 20 --records 12000 --partitions 4
//     --session-ms 2000 --clean-every 5 --seed N --seconds-max 400]

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Raftlog } from '../../src/client/index.js';
import { ProcessCluster } from '../integration/process-cluster.js';
import type { ChildConfig, ChildMode } from './consumer-child.js';
import {
  type Processed,
  ProcessedFile,
  pollUntil,
  progress,
  seededRandom,
  sleep,
  startWorker,
  stopWorker,
  type Worker,
} from './consumer-common.js';

const { values: args } = parseArgs({
  options: {
    kills: { type: 'string', default: '20' },
    records: { type: 'string', default: '12000' },
    partitions: { type: 'string', default: '4' },
    'session-ms': { type: 'string', default: '2000' },
    'clean-every': { type: 'string', default: '5' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    'seconds-max': { type: 'string', default: '400' },
  },
});
const KILLS = Number(args.kills);
const RECORDS = Number(args.records);
const PARTITIONS = Number(args.partitions);
const SESSION_MS = Number(args['session-ms']);
const CLEAN_EVERY = Number(args['clean-every']);
const SEED = Number(args.seed);
const SECONDS_MAX = Number(args['seconds-max']);
const TOPIC = 'chaos-alo';
const GROUP = 'chaos-alo-group';
const MODES: ChildMode[] = ['records-auto', 'records-commit', 'batches'];
const BATCH_LIMIT = 100;
const PRODUCE_BATCH = 50;
/** Records produced before the first consumer starts; the rest while the kills run. */
const UPFRONT_SHARE = 0.3;
const CHILD_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'consumer-child.ts');
const TAG = 'chaos:consumer';

interface Stop {
  run: number;
  mode: ChildMode;
  signal: 'SIGKILL' | 'SIGTERM';
  /** Milliseconds after the child started (or after its first record, when it got that far). */
  afterMs: number;
  processedInRun: number;
  /** Per partition: processed − committed (as last polled) when the child was stopped. */
  inFlight: number;
  /** Records of this run's partitions the next consumer processed again. */
  reprocessed: number;
  /** Per partition at the stop: the committed offset last polled and the last processed offset. */
  committedSeen: number[];
  processedMax: number[];
  reprocessedPerPartition: number[];
  /** After a SIGTERM: records the stopped run itself processed that the next one processed again. */
  reprocessedOfCleanRun: number;
}

let cluster: ProcessCluster | null = null;
let child: Worker | null = null;

async function main(): Promise<number> {
  if (!(Number.isInteger(KILLS) && KILLS >= 1 && KILLS <= 200)) throw new Error('--kills must be 1 to 200');
  const random = seededRandom(SEED);
  const startedMs = Date.now();
  const deadlineMs = startedMs + SECONDS_MAX * 1000;
  progress(TAG, `seed ${SEED}: ${KILLS} stops, ${RECORDS} records on ${PARTITIONS} partitions`);
  cluster = await ProcessCluster.create(3, 'async');
  cluster.startAll();
  await cluster.waitReady(30_000);
  const urls = [...cluster.nodes.values()].map((n) => n.url);
  const client = new Raftlog({ urls });
  await client.createTopic({ name: TOPIC, partitions: PARTITIONS, replicationFactor: 3 });
  const work = mkdtempSync(join(tmpdir(), 'raftlog-chaos-alo-'));
  const file = new ProcessedFile(join(work, 'processed.log'));

  // What was acknowledged, per partition: every offset below acked[p] (the producer's offsets of a
  // partition are dense, one producer).
  const ackedOffsets: Array<Set<number>> = Array.from({ length: PARTITIONS }, () => new Set());
  const producer = client.producer({ lingerMs: 5 });
  let produced = 0;
  const produceSome = async (count: number) => {
    const records = Array.from({ length: count }, (_, i) => ({ value: `r-${produced + i}` }));
    produced += count;
    const offsets = await producer.send(TOPIC, records);
    for (const { partition, offset } of offsets) ackedOffsets[partition]!.add(offset);
  };
  const upfront = Math.floor(RECORDS * UPFRONT_SHARE);
  while (produced < upfront) await produceSome(Math.min(500, upfront - produced));
  let producing = true;
  const background = (async () => {
    // About 500 records/s: faster than the slow consumer, so a backlog builds for it.
    while (producing && produced < RECORDS && Date.now() < deadlineMs) {
      await produceSome(Math.min(PRODUCE_BATCH, RECORDS - produced));
      await sleep(100);
    }
  })();

  // Everything processed, and the checks run by the poll.
  const processed: Processed[] = [];
  const maxProcessed = new Array<number>(PARTITIONS).fill(-1);
  const committed = new Array<number>(PARTITIONS).fill(0);
  const violations: string[] = [];
  let polls = 0;
  const absorb = () => {
    for (const p of file.readNew()) {
      processed.push(p);
      if (p.offset > maxProcessed[p.partition]!) maxProcessed[p.partition] = p.offset;
    }
  };
  const poll = async () => {
    const offsets = await client.groupOffsets(GROUP, { topic: TOPIC }, { timeoutMs: 5000 });
    absorb(); // After reading the offsets: whatever was committed was processed (fsynced) before.
    polls++;
    for (const { partition, offset } of offsets) {
      committed[partition] = offset;
      if (offset > maxProcessed[partition]! + 1) {
        violations.push(
          `partition ${partition}: committed ${offset} but the last processed record is ${maxProcessed[partition]}`,
        );
      }
    }
  };
  let polling = true;
  const poller = (async () => {
    while (polling) {
      await poll().catch(() => undefined); // A node being down is no violation.
      await sleep(100);
    }
  })();

  const stops: Stop[] = [];
  const config = (run: number, mode: ChildMode): ChildConfig => ({
    urls,
    topic: TOPIC,
    group: GROUP,
    out: file.path,
    run,
    mode,
    sessionTimeoutMs: SESSION_MS,
    workMs: 2,
    limit: BATCH_LIMIT,
  });
  const processedInRun = (run: number) => processed.reduce((n, p) => n + (p.run === run ? 1 : 0), 0);

  try {
    for (let run = 1; run <= KILLS; run++) {
      if (Date.now() > deadlineMs) throw new Error(`--seconds-max ${SECONDS_MAX} reached at stop ${run}`);
      const mode = MODES[(run - 1) % MODES.length]!;
      const signal = run % CLEAN_EVERY === 0 ? 'SIGTERM' : 'SIGKILL';
      child = startWorker(`consumer run ${run}`, CHILD_SCRIPT, config(run, mode));
      const spawnedMs = Date.now();
      // One stop in five comes at any moment (joining, waiting for the old member to expire);
      // the others once the child processes records, at a random point after its first.
      const early = random() < 0.2;
      let afterMs: number;
      if (early) {
        afterMs = Math.floor(random() * 3000);
        await sleep(afterMs);
      } else {
        const began = await pollUntil(() => {
          absorb();
          return processedInRun(run) > 0;
        }, 30_000);
        if (!began) throw new Error(`run ${run} (${mode}) processed nothing in 30 s`);
        afterMs = 100 + Math.floor(random() * 2400);
        await sleep(afterMs);
      }
      await poll().catch(() => undefined);
      const inFlight = maxProcessed.reduce((sum, max, p) => sum + Math.max(0, max + 1 - committed[p]!), 0);
      const code = await stopWorker(child, signal);
      if (signal === 'SIGTERM' && code !== 0) violations.push(`run ${run}: exit ${code} after SIGTERM`);
      absorb();
      const count = processedInRun(run);
      stops.push({
        run,
        mode,
        signal,
        afterMs,
        processedInRun: count,
        inFlight,
        reprocessed: 0,
        committedSeen: [...committed],
        processedMax: [...maxProcessed],
        reprocessedPerPartition: new Array<number>(PARTITIONS).fill(0),
        reprocessedOfCleanRun: 0,
      });
      progress(
        TAG,
        `stop ${run}/${KILLS}: ${signal} ${mode} ${early ? 'any time' : 'after its first record'} +${afterMs} ms, ` +
          `${count} processed, ${inFlight} in flight (${Math.round((Date.now() - spawnedMs) / 100) / 10} s)`,
      );
    }
    // The last consumer reads to the end: every acknowledged record, and commits it all.
    producing = false;
    await background;
    await producer.close();
    const finalRun = KILLS + 1;
    child = startWorker('final consumer', CHILD_SCRIPT, config(finalRun, 'batches'));
    const acked = ackedOffsets.reduce((n, s) => n + s.size, 0);
    progress(TAG, `final consumer: ${acked} records acknowledged; reading to the end`);
    const caughtUp = await pollUntil(
      async () => {
        await poll().catch(() => undefined);
        return ackedOffsets.every(
          (offsets, p) => committed[p]! >= offsets.size && maxProcessed[p]! + 1 >= offsets.size,
        );
      },
      Math.max(30_000, deadlineMs - Date.now()),
      200,
    );
    const finalCode = await stopWorker(child, 'SIGTERM');
    if (finalCode !== 0) violations.push(`final consumer: exit ${finalCode} after SIGTERM`);
    if (!caughtUp) violations.push('the final consumer did not commit every record in time');
    polling = false;
    await poller;
    absorb();

    // The verdict.
    const seen: Array<Set<number>> = Array.from({ length: PARTITIONS }, () => new Set());
    // The run that processed each record last: after a clean stop (SIGTERM) the next consumer may
    // process again only what earlier runs left in flight (a partition the stopped run never got
    // to), never what the stopped run itself processed: it committed all of that when it closed.
    const lastRun: Array<Map<number, number>> = Array.from({ length: PARTITIONS }, () => new Map());
    let duplicates = 0;
    for (const p of processed) {
      const set = seen[p.partition]!;
      const previous = lastRun[p.partition]!.get(p.offset);
      lastRun[p.partition]!.set(p.offset, p.run);
      if (!set.has(p.offset)) {
        set.add(p.offset);
        continue;
      }
      duplicates++;
      // Charged to the stop just before this run: its consumer started from the offsets that
      // stop left committed (a partition untouched by a run keeps its earlier in-flight records).
      const stop = stops.find((s) => s.run === p.run - 1);
      if (!stop) continue;
      stop.reprocessed++;
      stop.reprocessedPerPartition[p.partition]!++;
      if (stop.signal === 'SIGTERM' && previous === stop.run) stop.reprocessedOfCleanRun++;
    }
    let lost = 0;
    const lostExamples: string[] = [];
    for (let p = 0; p < PARTITIONS; p++) {
      for (const offset of ackedOffsets[p]!) {
        if (!seen[p]!.has(offset)) {
          lost++;
          if (lostExamples.length < 5) lostExamples.push(`${p}:${offset}`);
        }
      }
    }
    if (lost > 0)
      violations.push(`${lost} acknowledged records never processed (${lostExamples.join(', ')})`);
    const offsets = await client.groupOffsets(GROUP, { topic: TOPIC });
    for (let p = 0; p < PARTITIONS; p++) {
      const final = offsets.find((o) => o.partition === p)?.offset ?? 0;
      if (final !== ackedOffsets[p]!.size) {
        violations.push(
          `partition ${p}: final committed offset ${final}, high watermark ${ackedOffsets[p]!.size}`,
        );
      }
    }
    for (const stop of stops) {
      if (stop.reprocessed > stop.inFlight) {
        violations.push(`stop ${stop.run}: ${stop.reprocessed} reprocessed > ${stop.inFlight} in flight`);
      }
      if (stop.reprocessedOfCleanRun > 0) {
        violations.push(
          `stop ${stop.run} (SIGTERM): ${stop.reprocessedOfCleanRun} of its records processed again after a clean close`,
        );
      }
    }
    const summary = {
      seed: SEED,
      stops: stops.length,
      sigkills: stops.filter((s) => s.signal === 'SIGKILL').length,
      sigterms: stops.filter((s) => s.signal === 'SIGTERM').length,
      recordsAcknowledged: acked,
      recordsProcessed: processed.length,
      distinctProcessed: processed.length - duplicates,
      lost,
      reprocessed: duplicates,
      inFlightAtStops: stops.reduce((n, s) => n + s.inFlight, 0),
      reprocessedMaxPerStop: Math.max(0, ...stops.map((s) => s.reprocessed)),
      inFlightMaxPerStop: Math.max(0, ...stops.map((s) => s.inFlight)),
      reprocessedByMode: Object.fromEntries(
        MODES.map((m) => [m, stops.filter((s) => s.mode === m).reduce((n, s) => n + s.reprocessed, 0)]),
      ),
      polls,
      consumerErrors: Object.fromEntries(file.errors),
      violations,
      seconds: Math.round((Date.now() - startedMs) / 100) / 10,
      stopsDetail: stops,
    };
    console.log(JSON.stringify(summary, null, 2));
    printTable(stops);
    console.log(
      `\n${summary.stops} stops (${summary.sigkills} SIGKILL, ${summary.sigterms} SIGTERM); ` +
        `${acked} acknowledged, ${summary.distinctProcessed} processed, ${lost} lost; ` +
        `${duplicates} reprocessed ≤ ${summary.inFlightAtStops} in flight at the stops ` +
        `(worst stop ${summary.reprocessedMaxPerStop}); ${polls} polls of the committed offsets; ` +
        `background errors and failed commits: ${JSON.stringify(summary.consumerErrors)}; ` +
        `${violations.length} violations${violations.length ? `:\n  ${violations.join('\n  ')}` : ''}`,
    );
    return violations.length > 0 ? 1 : 0;
  } finally {
    producing = false;
    polling = false;
    if (child) await stopWorker(child, 'SIGKILL').catch(() => undefined);
    await client.close().catch(() => undefined);
    await cluster.destroy();
    cluster = null;
    rmSync(work, { recursive: true, force: true });
  }
}

function printTable(stops: Stop[]): void {
  const header = ['stop', 'signal', 'mode', 'at ms', 'processed', 'in flight', 'reprocessed'];
  const rows = stops.map((s) => [
    String(s.run),
    s.signal,
    s.mode,
    String(s.afterMs),
    String(s.processedInRun),
    String(s.inFlight),
    String(s.reprocessed),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log('');
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}

// Ctrl-C or a TERM: stop this run's processes by PID, then exit.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    const stopping = child ? stopWorker(child, 'SIGKILL').catch(() => undefined) : Promise.resolve();
    void stopping.then(() => cluster?.destroy()).finally(() => process.exit(130));
  });
}

main().then(
  (code) => process.exit(code),
  async (error: unknown) => {
    console.error(error);
    if (child) await stopWorker(child, 'SIGKILL').catch(() => undefined);
    await cluster?.destroy();
    process.exit(2);
  },
);
