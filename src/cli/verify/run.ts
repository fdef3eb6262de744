// `raftlog verify TOPIC`: idempotent producers write numbered records with keys for --seconds,
// while readers scan every partition on every replica (local reads), and probes send
// linearizable and read-your-writes reads; then writing stops, every replica is given time to
// catch up and is read in full, and the checker (checker.ts) gives the verdict. Every loop ends
// with the run's deadlines; every wait has a bound.

import { setTimeout as sleep } from 'node:timers/promises';
import { Raftlog, RaftlogError } from '../../client/index.js';
import type { PersistenceMode, TopicDescription } from '../../wire/types.js';
import { EXIT_OK, EXIT_RUNTIME } from '../errors.js';
import type { CliIo } from '../io.js';
import { serverUrls } from '../options.js';
import { Checker, numberedValue, type ReplicaRange, type Scan } from './checker.js';
import { discoverNodes, httpProbe } from './nodes.js';
import { finalLines, statusLine } from './report.js';

export interface VerifyOptions {
  /** One URL or several, comma-separated. */
  server?: string;
  seconds?: number;
  persistence?: PersistenceMode;
  partitions?: number;
  /** Not flags: tests shorten the waits. */
  catchUpTimeoutMs?: number;
  statusIntervalMs?: number;
}

const PRODUCERS = 2;
const KEYS_PER_PRODUCER = 8;
/** Sends awaiting acknowledgement per producer: bounds memory and keeps the cluster busy, not flooded. */
const INFLIGHT_PER_PRODUCER_MAX = 32;
const RECORDS_MAX = 5_000_000;
const REQUEST_TIMEOUT_MS = 5_000;
const FETCH_LIMIT = 1_000;
const FETCH_WAIT_MS = 500;
const PROBE_INTERVAL_MS = 100;
const RETRY_PAUSE_MS = 200;
const DISCOVERY_TIMEOUT_MS = 30_000;
/** After --seconds: acknowledgements still in flight, then catching up, then the full read. */
const DRAIN_TIMEOUT_MS = 60_000;
const CATCH_UP_TIMEOUT_MS = 60_000;
const FINAL_READ_TIMEOUT_MS = 120_000;

/** What the run counts beside the checker's findings. */
export interface RunStats {
  sendFailures: number;
  readErrors: number;
  linearizableReads: number;
  linearizableErrors: number;
  readYourWrites: number;
  readYourWritesLagging: number;
}

interface VerifyRun {
  topic: string;
  checker: Checker;
  stats: RunStats;
  /** Replica node ids per partition. */
  replicasOf: number[][];
  /** A client per node id, sending only to that node. */
  nodes: Map<number, Raftlog>;
  startOffsets: number[];
  writeUntilMs: number;
  /** Ends writing early (Ctrl-C). */
  stopWriting: AbortController;
  /** Ends the live readers and probes. */
  stopReading: AbortController;
  lastAck: { partition: number; offset: number; value: string } | undefined;
}

export async function verifyCommand(topic: string, options: VerifyOptions, io: CliIo): Promise<number> {
  const servers = serverUrls(options.server, io);
  const seconds = options.seconds ?? 60;
  const bootstrap = new Raftlog({ urls: servers, dispatcher: io.dispatcher, retry: { attemptsMax: 5 } });
  const nodes = new Map<number, Raftlog>();
  let producing: Raftlog | undefined;
  const stopWriting = new AbortController();
  // The first Ctrl-C ends the writing (the final checks still run); the second exits at once.
  const stopListening = io.onInterrupt(() => {
    if (stopWriting.signal.aborted) io.exit(EXIT_RUNTIME);
    stopWriting.abort();
  });
  try {
    const description = await ensureTopic(bootstrap, topic, options, io);
    const replicasOf = description.partitions.map((p) => p.replicas);
    const direct = await discoverAll(servers, replicasOf, io);
    for (const [id, url] of direct) nodes.set(id, nodeClient(url, io));
    producing = producingClient(direct, io);
    const startOffsets = description.partitions.map((p) => p.highWatermark);
    const run: VerifyRun = {
      topic,
      checker: new Checker(`v${Date.now().toString(36)}`, replicasOf.length, startOffsets),
      stats: {
        sendFailures: 0,
        readErrors: 0,
        linearizableReads: 0,
        linearizableErrors: 0,
        readYourWrites: 0,
        readYourWritesLagging: 0,
      },
      replicasOf,
      nodes,
      startOffsets,
      writeUntilMs: Date.now() + seconds * 1000,
      stopWriting,
      stopReading: new AbortController(),
      lastAck: undefined,
    };
    for (const id of new Set(replicasOf.flat())) {
      if (!nodes.has(id)) run.checker.find('unverified', `n${id}: no URL answered as this node`);
    }
    io.stderr.write(
      `verify: writing to '${topic}' for ${seconds} s (${replicasOf.length} partitions, replicas read at ${[...direct].map(([id, url]) => `n${id} ${url}`).join(', ')})\n`,
    );
    await runPhases(run, producing, options, io);
    const mode = description.config.persistence;
    const title = `verify '${topic}': ${seconds} s of writing, ${replicasOf.length} partitions, persistence ${mode}`;
    const replicas = [...nodes.keys()].sort((a, b) => a - b);
    io.stdout.write(`${title}\n${finalLines(run.checker, run.stats, replicas)}`);
    return run.checker.clean ? EXIT_OK : EXIT_RUNTIME;
  } finally {
    stopListening();
    await Promise.all([bootstrap.close(), producing?.close(), ...[...nodes.values()].map((c) => c.close())]);
  }
}

async function runPhases(
  run: VerifyRun,
  producing: Raftlog,
  options: VerifyOptions,
  io: CliIo,
): Promise<void> {
  const startedMs = Date.now();
  const status = statusPrinter(io, options.statusIntervalMs, () =>
    statusLine(
      run.checker,
      run.stats,
      [...run.nodes.keys()].sort((a, b) => a - b),
      (Date.now() - startedMs) / 1000,
    ),
  );
  const readers = [];
  for (let partition = 0; partition < run.replicasOf.length; partition++) {
    for (const replica of run.replicasOf[partition]!) {
      if (run.nodes.has(replica)) readers.push(liveRead(run, replica, partition));
    }
  }
  readers.push(probeLoop(run));
  try {
    await Promise.all(Array.from({ length: PRODUCERS }, (_, index) => produceLoop(run, producing, index)));
    run.stopReading.abort();
    await Promise.all(readers);
    status.phase('writing stopped; waiting for every replica to catch up');
    const caughtUp = await catchUp(run, options.catchUpTimeoutMs ?? CATCH_UP_TIMEOUT_MS);
    status.phase('reading every partition in full from every replica');
    run.checker.finalCheck(await finalRead(run, caughtUp));
  } finally {
    run.stopReading.abort();
    status.stop();
  }
}

/** The topic as it is, or created (with --persistence and --partitions) when missing. */
async function ensureTopic(
  client: Raftlog,
  topic: string,
  options: VerifyOptions,
  io: CliIo,
): Promise<TopicDescription> {
  try {
    const existing = await client.describeTopic(topic);
    const mode = existing.config.persistence;
    const differs = options.persistence !== undefined && options.persistence !== mode;
    io.stderr.write(
      `verify: topic '${topic}' exists (persistence ${mode})${differs ? `, not ${options.persistence}: using it as it is` : ''}\n`,
    );
    return existing;
  } catch (error) {
    if (!(error instanceof RaftlogError && error.code === 'UNKNOWN_TOPIC')) throw error;
  }
  const config = options.persistence ? { persistence: options.persistence } : undefined;
  const created = await client.createTopic({ name: topic, partitions: options.partitions ?? 3, config });
  io.stderr.write(
    `verify: created topic '${topic}' (${created.partitions.length} partitions, replication ${created.partitions[0]?.replicas.length}, persistence ${created.config.persistence})\n`,
  );
  return created;
}

/** Node id → direct URL for every replica node, asking again until all are known or the timeout. */
async function discoverAll(
  servers: string[],
  replicasOf: number[][],
  io: CliIo,
): Promise<Map<number, string>> {
  const wanted = new Set(replicasOf.flat());
  const direct = new Map<number, string>();
  const probe = httpProbe(REQUEST_TIMEOUT_MS, io.dispatcher);
  const deadlineMs = Date.now() + DISCOVERY_TIMEOUT_MS;
  while (Date.now() < deadlineMs) {
    await discoverNodes(servers, direct, probe);
    if ([...wanted].every((id) => direct.has(id))) break;
    await sleep(500);
  }
  return direct;
}

function nodeClient(url: string, io: CliIo): Raftlog {
  return new Raftlog({
    url,
    direct: true,
    dispatcher: io.dispatcher,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    retry: { attemptsMax: 1 },
  });
}

/**
 * The producers' client: it knows every node at its direct URL (not the --peers URL the cluster
 * lists, which may be a node-to-node proxy), so produce requests go straight to each leader.
 */
function producingClient(direct: Map<number, string>, io: CliIo): Raftlog {
  const client = new Raftlog({ urls: [...direct.values()], dispatcher: io.dispatcher, nodeDownMs: 500 });
  // The client learns a bootstrap URL's node id from its answers; we already know them.
  for (const [id, url] of direct) client.router.answered(url, id);
  return client;
}

async function produceLoop(run: VerifyRun, client: Raftlog, index: number): Promise<void> {
  const newProducer = () =>
    client.producer({ idempotent: true, lingerMs: 2, retry: { totalMsMax: 30_000, attemptsMax: 60 } });
  let producer = newProducer();
  const retired: Array<Promise<void>> = [];
  const keys = Array.from({ length: KEYS_PER_PRODUCER }, (_, k) => `p${index}k${k}`);
  const numbers = new Map<string, number>();
  const inflight = new Set<Promise<void>>();
  for (let sent = 0; sent < RECORDS_MAX / PRODUCERS; sent++) {
    while (inflight.size >= INFLIGHT_PER_PRODUCER_MAX) await Promise.race(inflight);
    if (Date.now() >= run.writeUntilMs || run.stopWriting.signal.aborted) break;
    const key = keys[sent % keys.length]!;
    const number = (numbers.get(key) ?? 0) + 1;
    numbers.set(key, number);
    const value = numberedValue(run.checker.run, key, number);
    const sending = producer.send(run.topic, [{ key, value }]).then(
      ([landed]) => {
        run.checker.acknowledge(landed!.partition, landed!.offset, value);
        run.lastAck = { partition: landed!.partition, offset: landed!.offset, value };
      },
      (error: unknown) => {
        run.stats.sendFailures++;
        // The producer no longer knows its sequence for the partition: a new one takes over.
        if (error instanceof RaftlogError && /SEQUENCE|FENCED/.test(error.code)) {
          const old = producer;
          producer = newProducer();
          retired.push(old.close({ timeoutMs: 1_000 }).catch(() => {}));
        }
      },
    );
    const settled = sending.finally(() => inflight.delete(settled));
    inflight.add(settled);
  }
  const drained = new AbortController();
  await Promise.race([
    Promise.all(inflight).finally(() => drained.abort()),
    sleep(DRAIN_TIMEOUT_MS, undefined, { signal: drained.signal }).catch(() => {}),
  ]);
  await Promise.all([producer.close({ timeoutMs: 1_000 }).catch(() => {}), ...retired]);
}

/** Scans one partition on one replica from where the run began, until the readers stop. */
async function liveRead(run: VerifyRun, replica: number, partition: number): Promise<void> {
  const scan = run.checker.scan(replica, partition, run.startOffsets[partition]!);
  const client = run.nodes.get(replica)!;
  const { signal } = run.stopReading;
  while (!signal.aborted) {
    try {
      const page = await client.fetch(
        run.topic,
        partition,
        { offset: scan.next, limit: FETCH_LIMIT, waitMs: FETCH_WAIT_MS },
        { signal, timeoutMs: REQUEST_TIMEOUT_MS + FETCH_WAIT_MS },
      );
      scan.accept(page);
    } catch (error) {
      if (signal.aborted) return;
      if (skipToLogStart(scan, error)) continue;
      run.stats.readErrors++;
      await sleep(RETRY_PAUSE_MS, undefined, { signal }).catch(() => {});
    }
  }
}

/**
 * A fetch below the replica's log start (416 OFFSET_OUT_OF_RANGE: retention, or a memory replica
 * that restarted empty and caught up from a snapshot): the scan goes on from there.
 */
function skipToLogStart(scan: Scan, error: unknown): boolean {
  if (!(error instanceof RaftlogError && error.code === 'OFFSET_OUT_OF_RANGE')) return false;
  const logStart = error.details.logStartOffset;
  if (typeof logStart !== 'number' || logStart <= scan.next) return false;
  scan.next = logStart;
  return true;
}

/** Alternates a linearizable read and a read-your-writes read, on random replicas. */
async function probeLoop(run: VerifyRun): Promise<void> {
  const { signal } = run.stopReading;
  for (let round = 0; !signal.aborted; round++) {
    const partition = round % run.replicasOf.length;
    const replicas = run.replicasOf[partition]!.filter((id) => run.nodes.has(id));
    const replica = replicas[Math.floor(Math.random() * replicas.length)];
    if (replica !== undefined) {
      if (round % 2 === 0) await linearizableProbe(run, replica, partition);
      else await readYourWriteProbe(run, replica);
    }
    await sleep(PROBE_INTERVAL_MS, undefined, { signal }).catch(() => {});
  }
}

async function linearizableProbe(run: VerifyRun, replica: number, partition: number): Promise<void> {
  const ackedBefore = run.checker.highestAcknowledged(partition);
  try {
    const page = await run.nodes
      .get(replica)!
      .fetch(
        run.topic,
        partition,
        { offset: 'latest', limit: 1, waitMs: 0, consistency: 'linearizable' },
        { signal: run.stopReading.signal, timeoutMs: REQUEST_TIMEOUT_MS },
      );
    run.stats.linearizableReads++;
    run.checker.linearizableRead(replica, partition, ackedBefore, page.highWatermark);
  } catch {
    if (!run.stopReading.signal.aborted) run.stats.linearizableErrors++;
  }
}

/** The last acknowledged record, read at its offset with minOffset from a replica of its partition. */
async function readYourWriteProbe(run: VerifyRun, replicaHint: number): Promise<void> {
  const ack = run.lastAck;
  if (!ack) return;
  const replicas = run.replicasOf[ack.partition]!.filter((id) => run.nodes.has(id));
  const replica = replicas.includes(replicaHint) ? replicaHint : replicas[0];
  if (replica === undefined) return;
  try {
    const page = await run.nodes
      .get(replica)!
      .fetch(
        run.topic,
        ack.partition,
        { offset: ack.offset, limit: 1, waitMs: 1_000, minOffset: ack.offset },
        { signal: run.stopReading.signal, timeoutMs: REQUEST_TIMEOUT_MS + 1_000 },
      );
    run.stats.readYourWrites++;
    if (page.highWatermark <= ack.offset) {
      run.stats.readYourWritesLagging++; // This replica is behind (cut off, restarting): not wrong.
      return;
    }
    const record = page.records[0];
    if (record?.offset === ack.offset)
      run.checker.readAt(replica, ack.partition, record.offset, record.value);
    else {
      run.checker.find(
        'gap',
        `n${replica} p${ack.partition}: read-your-writes at ${ack.offset} returned ${record ? `offset ${record.offset}` : 'nothing'} below highWatermark ${page.highWatermark}`,
      );
      run.checker.lostIfAcknowledged(
        ack.partition,
        ack.offset,
        `n${replica} did not return it to read-your-writes`,
      );
    }
  } catch {
    if (!run.stopReading.signal.aborted) run.stats.readErrors++;
  }
}

/**
 * Waits until every replica's highWatermark is past every acknowledged offset of its partition.
 * Returns the replicas (per partition) that got there; the others are findings.
 */
async function catchUp(run: VerifyRun, timeoutMs: number): Promise<Set<string>> {
  const caughtUp = new Set<string>();
  const deadlineMs = Date.now() + timeoutMs;
  const pending = () =>
    run.replicasOf.flatMap((replicas, partition) =>
      replicas
        .filter((id) => run.nodes.has(id) && !caughtUp.has(`${id}:${partition}`))
        .map((id) => ({ id, partition })),
    );
  while (pending().length > 0 && Date.now() < deadlineMs) {
    await Promise.all(
      pending().map(async ({ id, partition }) => {
        const highWatermark = await highWatermarkOf(run, id, partition);
        if (highWatermark !== undefined && highWatermark > run.checker.highestAcknowledged(partition)) {
          caughtUp.add(`${id}:${partition}`);
        }
      }),
    );
    if (pending().length > 0) await sleep(RETRY_PAUSE_MS);
  }
  for (const { id, partition } of pending()) {
    run.checker.find(
      'unverified',
      `n${id} p${partition}: not caught up ${timeoutMs / 1000} s after writing stopped`,
    );
  }
  return caughtUp;
}

async function highWatermarkOf(
  run: VerifyRun,
  replica: number,
  partition: number,
): Promise<number | undefined> {
  try {
    const page = await run.nodes
      .get(replica)!
      .fetch(
        run.topic,
        partition,
        { offset: 'latest', limit: 1, waitMs: 0 },
        { timeoutMs: REQUEST_TIMEOUT_MS },
      );
    return page.highWatermark;
  } catch {
    return undefined;
  }
}

/** Every partition read from its log start to its highWatermark, on every replica that caught up. */
async function finalRead(run: VerifyRun, caughtUp: Set<string>): Promise<Map<number, ReplicaRange[]>> {
  const ranges = new Map<number, ReplicaRange[]>();
  const deadlineMs = Date.now() + FINAL_READ_TIMEOUT_MS;
  const reads = [...caughtUp].map(async (entry) => {
    const [replica, partition] = entry.split(':').map(Number) as [number, number];
    const scan = run.checker.scan(replica, partition, 0);
    let highWatermark = Number.POSITIVE_INFINITY;
    let logStartOffset = 0;
    while (scan.next < highWatermark && Date.now() < deadlineMs) {
      try {
        const page = await run.nodes
          .get(replica)!
          .fetch(
            run.topic,
            partition,
            { offset: scan.next, limit: FETCH_LIMIT, waitMs: 0 },
            { timeoutMs: REQUEST_TIMEOUT_MS },
          );
        highWatermark = page.highWatermark;
        logStartOffset = page.logStartOffset;
        scan.accept(page);
      } catch (error) {
        if (!skipToLogStart(scan, error)) await sleep(RETRY_PAUSE_MS);
      }
    }
    if (scan.next < highWatermark) {
      run.checker.find(
        'unverified',
        `n${replica} p${partition}: read only up to ${scan.next} in ${FINAL_READ_TIMEOUT_MS / 1000} s`,
      );
      return;
    }
    const row = ranges.get(replica) ?? [];
    row[partition] = { logStartOffset, highWatermark };
    ranges.set(replica, row);
  });
  await Promise.all(reads);
  return ranges;
}

interface StatusPrinter {
  phase(text: string): void;
  stop(): void;
}

/** On a terminal one line rewritten each second; otherwise a line every few seconds. */
function statusPrinter(io: CliIo, intervalMs: number | undefined, line: () => string): StatusPrinter {
  const tty = io.stderr.isTTY === true;
  const print = () => io.stderr.write(tty ? `\r\u001b[K${line()}` : `${line()}\n`);
  const timer = setInterval(print, intervalMs ?? (tty ? 1_000 : 5_000));
  return {
    phase(text) {
      io.stderr.write(`${tty ? '\r\u001b[K' : ''}${line()}\nverify: ${text}\n`);
    },
    stop() {
      clearInterval(timer);
      if (tty) io.stderr.write(`\r\u001b[K${line()}\n`);
    },
  };
}
