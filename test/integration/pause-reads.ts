// Linearizable reads from a paused leader, on three real processes: SIGSTOP the partition leader,
// let the other two elect a new leader and acknowledge a record, queue a linearizable read in the
// paused node's socket, SIGCONT it, and classify the answer. A 200 whose highWatermark does not
// cover every offset acknowledged before the read was sent is stale. Used by pause-reads.test.ts
// and by the chaos script test/chaos/pause-reads.ts.

import type { ChildProcess } from 'node:child_process';
import { Client, errors as undiciErrors } from 'undici';
import type { HttpResult, ProcessCluster } from './process-cluster.js';

export const PAUSE_TOPIC = 'pause-reads';
const NODE_IDS = [1, 2, 3];
export const PAUSE_MS_DEFAULT = 2500;
/** A round whose survivors acknowledge nothing new this long after SIGSTOP is given up. */
const NEW_LEADER_TIMEOUT_MS = 8000;
/** SIGCONT comes at least this long after the read's connection is up, so the read is queued. */
const READ_QUEUED_MS = 100;
/** How long the read's connection to the paused node may take (the kernel accepts it alone). */
const READ_CONNECT_TIMEOUT_MS = 1000;
/** How long the answer to the read may take once it was sent. */
const READ_TIMEOUT_MS = 10_000;
/** Bound on finding a leader that serves a produce, before each round and after the last. */
const SERVE_TIMEOUT_MS = 20_000;
const SETUP_TIMEOUT_MS = 30_000;
/**
 * Client bound on one produce. A follower that still believes in the paused leader forwards to it
 * and waits for it (its forward timeout is a minute), so a short bound moves on to the other node.
 */
const PRODUCE_REQUEST_TIMEOUT_MS = 1000;
const METADATA_REQUEST_TIMEOUT_MS = 1000;
const RETRY_DELAY_MS = 50;
/** Every retry loop stops after this many attempts, whatever its deadline. */
const ATTEMPTS_MAX = 1000;

export type AnswerClass = 'ok' | 'stale' | 'error' | 'timeout';

export interface ReadAnswer {
  answerClass: AnswerClass;
  /** 0 when no HTTP answer came (timeout or network error). */
  status: number;
  /** The error code of an error answer, or of the network failure. */
  code: string | null;
  highWatermark: number | null;
  /** Acknowledged offsets the answer misses: highestAckedBeforeRead + 1 - highWatermark (stale only). */
  missingOffsets: number;
  /** From sending the read to its answer. */
  latencyMs: number;
}

export interface RoundResult {
  round: number;
  pausedLeader: number;
  /** The node that acknowledged the first record past everything acknowledged before the pause. */
  newLeader: number | null;
  highestAckedBeforePause: number;
  /** Highest offset acknowledged when the read was sent (null: the round was given up first). */
  highestAckedBeforeRead: number | null;
  /** SIGSTOP to the first acknowledgement past highestAckedBeforePause. */
  newLeaderAckMs: number | null;
  /** The read's connection was up before SIGCONT, so the paused node found it waiting. */
  readQueuedWhilePaused: boolean;
  /** SIGSTOP to SIGCONT. */
  pausedMs: number;
  answer: ReadAnswer | null;
  /** Why no read was judged this round, if none was. */
  skipped: 'no new leader in time' | null;
  /** From the end of the round (the read's answer) to the next produce a leader served itself. */
  recoveredMs: number;
  elapsedMs: number;
}

export interface PauseSummary {
  persistence: string;
  pauseMs: number;
  backgroundProducer: boolean;
  roundsRun: number;
  /** Rounds where a new leader acknowledged past the old one's records while it was paused. */
  roundsWithNewLeader: number;
  /** Rounds that tested what they should: a new leader acknowledged, the read was queued paused. */
  roundsJudged: number;
  answers: { ok: number; stale: number; timeouts: number; errors: Record<string, number> };
  worstStale: { round: number; highWatermark: number; highestAcked: number; missingOffsets: number } | null;
  recordsAcknowledged: number;
  elapsedMs: number;
  rounds: RoundResult[];
}

export interface PauseRoundsOptions {
  /** Created (ProcessCluster.create(3, mode)), not yet started; the caller destroys it. */
  cluster: ProcessCluster;
  pauses: number;
  pauseMs?: number;
  /** Keep producing through a non-leader node during each round, as a busy client would. */
  backgroundProducer?: boolean;
  onProgress?: (round: RoundResult, pauses: number) => void;
}

/** Every offset acknowledged to this harness, by any producer. */
class AckLog {
  highestOffset = -1;
  count = 0;
  record(offset: number): void {
    this.count++;
    if (offset > this.highestOffset) this.highestOffset = offset;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

export async function runPauseRounds(options: PauseRoundsOptions): Promise<PauseSummary> {
  const { cluster, pauses } = options;
  const pauseMs = options.pauseMs ?? PAUSE_MS_DEFAULT;
  if (!(Number.isInteger(pauses) && pauses > 0)) throw new Error('pauses must be a positive integer');
  if (cluster.size !== NODE_IDS.length)
    throw new Error(`the harness needs a ${NODE_IDS.length}-node cluster`);
  const startedMs = performance.now();
  const acks = new AckLog();
  await startWithTopic(cluster);
  let leader = await findServingLeader(cluster, acks, 'setup');
  const rounds: RoundResult[] = [];
  for (let round = 1; round <= pauses; round++) {
    const result = await runRound(cluster, acks, {
      round,
      leader,
      pauseMs,
      backgroundProducer: options.backgroundProducer ?? false,
    });
    const roundEndMs = performance.now();
    // The cluster must serve again before the next round (and after the last).
    leader = await findServingLeader(cluster, acks, `after round ${round}`);
    result.recoveredMs = Math.round(performance.now() - roundEndMs);
    result.elapsedMs += result.recoveredMs;
    rounds.push(result);
    options.onProgress?.(result, pauses);
  }
  return summarize({
    persistence: cluster.persistence,
    pauseMs,
    backgroundProducer: options.backgroundProducer ?? false,
    rounds,
    recordsAcknowledged: acks.count,
    elapsedMs: Math.round(performance.now() - startedMs),
  });
}

async function startWithTopic(cluster: ProcessCluster): Promise<void> {
  cluster.startAll();
  await cluster.waitReady(SETUP_TIMEOUT_MS);
  const deadlineMs = Date.now() + SETUP_TIMEOUT_MS;
  let last: HttpResult | null = null;
  for (let attempt = 0; attempt < ATTEMPTS_MAX && Date.now() < deadlineMs; attempt++) {
    last = await cluster.request(1, 'POST', '/v1/topics', {
      name: PAUSE_TOPIC,
      partitions: 1,
      replicationFactor: NODE_IDS.length,
    });
    // 409: an earlier attempt created it and its answer was lost.
    if (last.status === 201 || last.status === 409) return;
    await sleep(RETRY_DELAY_MS);
  }
  throw new Error(
    `topic ${PAUSE_TOPIC} not created: ${JSON.stringify(last?.body)} ${cluster.tails(NODE_IDS)}`,
  );
}

interface RoundPlan {
  round: number;
  leader: number;
  pauseMs: number;
  backgroundProducer: boolean;
}

async function runRound(cluster: ProcessCluster, acks: AckLog, plan: RoundPlan): Promise<RoundResult> {
  const startedMs = performance.now();
  const survivors = NODE_IDS.filter((id) => id !== plan.leader);
  const background = plan.backgroundProducer
    ? startBackgroundProducer(cluster, survivors[1]!, acks, plan.round)
    : null;
  const result: RoundResult = {
    round: plan.round,
    pausedLeader: plan.leader,
    newLeader: null,
    highestAckedBeforePause: -1,
    highestAckedBeforeRead: null,
    newLeaderAckMs: null,
    readQueuedWhilePaused: false,
    pausedMs: 0,
    answer: null,
    skipped: null,
    recoveredMs: 0,
    elapsedMs: 0,
  };
  let paused: PausedProcess | null = null;
  let producing: ReturnType<typeof produceUntilPast> | null = null;
  try {
    paused = pauseProcess(cluster.node(plan.leader).process, plan.leader);
    result.highestAckedBeforePause = acks.highestOffset;
    producing = produceUntilPast(cluster, survivors, acks, {
      pastOffset: result.highestAckedBeforePause,
      deadlineMs: Date.now() + NEW_LEADER_TIMEOUT_MS,
      round: plan.round,
    });
    const newAck = await producing.first;
    if (newAck === null) {
      result.skipped = 'no new leader in time';
      return result;
    }
    result.newLeader = newAck.servedBy;
    result.newLeaderAckMs = Math.round(performance.now() - paused.startedMs);
    result.highestAckedBeforeRead = acks.highestOffset;
    const read = await readAcrossResume(cluster.node(plan.leader).url, paused, {
      pauseMs: plan.pauseMs,
      highestAcked: result.highestAckedBeforeRead,
    });
    result.answer = read.answer;
    result.readQueuedWhilePaused = read.queuedWhilePaused;
    return result;
  } finally {
    // Whatever happened above, the node runs again: a stopped process would outlive the test.
    if (paused) {
      paused.resume();
      result.pausedMs = Math.round(paused.resumedMs - paused.startedMs);
    }
    await producing?.settled;
    await background?.stop();
    result.elapsedMs = Math.round(performance.now() - startedMs);
  }
}

interface PausedProcess {
  startedMs: number;
  resumedMs: number;
  resume(): void;
}

function pauseProcess(child: ChildProcess | null, nodeId: number): PausedProcess {
  if (!child?.pid) throw new Error(`node ${nodeId} is not running`);
  if (!child.kill('SIGSTOP')) throw new Error(`SIGSTOP to node ${nodeId} (pid ${child.pid}) failed`);
  let resumed = false;
  const paused: PausedProcess = {
    startedMs: performance.now(),
    resumedMs: 0,
    resume() {
      if (resumed) return;
      resumed = true;
      child.kill('SIGCONT');
      paused.resumedMs = performance.now();
    },
  };
  return paused;
}

/**
 * Sends the linearizable read to the paused node on a new connection (the kernel completes the
 * handshake of a stopped listener, so the request waits in its socket), resumes the node once the
 * pause has lasted pauseMs and the request has had READ_QUEUED_MS to arrive, then classifies it.
 */
async function readAcrossResume(
  url: string,
  paused: PausedProcess,
  read: { pauseMs: number; highestAcked: number },
): Promise<{ answer: ReadAnswer; queuedWhilePaused: boolean }> {
  const client = new Client(url, { headersTimeout: READ_TIMEOUT_MS, bodyTimeout: READ_TIMEOUT_MS });
  let connectTimer: NodeJS.Timeout | undefined;
  try {
    const connected = new Promise<boolean>((resolve) => {
      client.once('connect', () => resolve(true));
      connectTimer = setTimeout(() => resolve(false), READ_CONNECT_TIMEOUT_MS);
    });
    const answer = sendRead(client, read.highestAcked, performance.now());
    const queuedWhilePaused = await connected;
    // The pause is the fault being injected: its length is the point, not a wait for a condition.
    await sleep(
      Math.max(paused.startedMs + read.pauseMs, performance.now() + READ_QUEUED_MS) - performance.now(),
    );
    paused.resume();
    return { answer: await answer, queuedWhilePaused };
  } finally {
    clearTimeout(connectTimer);
    await client.destroy().catch(() => undefined);
  }
}

async function sendRead(client: Client, highestAcked: number, sentMs: number): Promise<ReadAnswer> {
  const path = `/v1/topics/${PAUSE_TOPIC}/partitions/0/records?offset=latest&consistency=linearizable`;
  const answer = (answerClass: AnswerClass, status: number, code: string | null, hw: number | null) => ({
    answerClass,
    status,
    code,
    highWatermark: hw,
    missingOffsets: answerClass === 'stale' && hw !== null ? highestAcked + 1 - hw : 0,
    latencyMs: Math.round(performance.now() - sentMs),
  });
  try {
    const response = await client.request({ method: 'GET', path });
    const text = await response.body.text();
    // biome-ignore lint/suspicious/noExplicitAny: a fetch answer or an error body, read defensively
    let body: any = null;
    try {
      body = JSON.parse(text);
    } catch {
      return answer('error', response.statusCode, 'UNPARSEABLE_BODY', null);
    }
    if (response.statusCode !== 200) {
      return answer('error', response.statusCode, body?.error?.code ?? null, null);
    }
    const hw = body?.highWatermark;
    if (typeof hw !== 'number') return answer('error', 200, 'NO_HIGH_WATERMARK', null);
    // highWatermark is one past the last committed offset: it must exceed every acknowledged one.
    return answer(hw <= highestAcked ? 'stale' : 'ok', 200, null, hw);
  } catch (error) {
    const timedOut =
      error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.BodyTimeoutError;
    return answer(timedOut ? 'timeout' : 'error', 0, (error as { code?: string }).code ?? 'NETWORK', null);
  }
}

interface Ack {
  offset: number;
  /** The node that did the work: the leader that appended the record. */
  servedBy: number;
}

async function produceOnce(cluster: ProcessCluster, nodeId: number, value: string): Promise<Ack | null> {
  const res = await cluster.request(
    nodeId,
    'POST',
    `/v1/topics/${PAUSE_TOPIC}/records`,
    { records: [{ value, partition: 0 }], timeoutMs: PRODUCE_REQUEST_TIMEOUT_MS },
    PRODUCE_REQUEST_TIMEOUT_MS,
  );
  if (res.status !== 200) return null;
  const offset = res.body?.offsets?.[0]?.offset;
  if (typeof offset !== 'number')
    throw new Error(`a 200 produce without an offset: ${JSON.stringify(res.body)}`);
  const servedBy = Number(res.headers['x-raftlog-served-by'] ?? res.headers['x-raftlog-node'] ?? 0);
  return { offset, servedBy };
}

/**
 * Produces through every survivor at once, each in its own retry loop, until one acknowledges an
 * offset past `pastOffset`: the first to answer settles `first`. Which survivor still forwards to
 * the paused leader (and hangs until the client gives up) is unknown, so neither waits on the
 * other. `settled` is when both loops have stopped (at most one request timeout later).
 */
function produceUntilPast(
  cluster: ProcessCluster,
  survivors: number[],
  acks: AckLog,
  bounds: { pastOffset: number; deadlineMs: number; round: number },
): { first: Promise<Ack | null>; settled: Promise<void> } {
  let found: Ack | null = null;
  let settleFirst: (ack: Ack | null) => void = () => undefined;
  const first = new Promise<Ack | null>((resolve) => {
    settleFirst = resolve;
  });
  const loops = survivors.map(async (nodeId) => {
    for (let attempt = 0; attempt < ATTEMPTS_MAX && !found && Date.now() < bounds.deadlineMs; attempt++) {
      const ack = await produceOnce(cluster, nodeId, `round-${bounds.round}-via-${nodeId}-${attempt}`);
      if (!ack) {
        await sleep(RETRY_DELAY_MS);
        continue;
      }
      acks.record(ack.offset);
      if (ack.offset > bounds.pastOffset && !found) {
        found = ack;
        settleFirst(ack);
      }
    }
  });
  const settled = Promise.all(loops)
    .then(() => undefined)
    .finally(() => settleFirst(null));
  return { first, settled };
}

function startBackgroundProducer(
  cluster: ProcessCluster,
  nodeId: number,
  acks: AckLog,
  round: number,
): { stop(): Promise<void> } {
  let stopping = false;
  const done = (async () => {
    for (let i = 0; i < ATTEMPTS_MAX && !stopping; i++) {
      const ack = await produceOnce(cluster, nodeId, `round-${round}-background-${i}`);
      if (ack) acks.record(ack.offset);
      else await sleep(RETRY_DELAY_MS);
    }
  })();
  return {
    async stop() {
      stopping = true;
      await done;
    },
  };
}

/**
 * Finds the partition leader from any node's metadata and confirms it with a produce the leader
 * answers itself (a forwarded answer carries x-raftlog-served-by). Throws after SERVE_TIMEOUT_MS.
 */
async function findServingLeader(cluster: ProcessCluster, acks: AckLog, when: string): Promise<number> {
  const deadlineMs = Date.now() + SERVE_TIMEOUT_MS;
  for (let attempt = 0; attempt < ATTEMPTS_MAX && Date.now() < deadlineMs; attempt++) {
    const nodeId = NODE_IDS[attempt % NODE_IDS.length]!;
    const topic = await cluster.request(
      nodeId,
      'GET',
      `/v1/topics/${PAUSE_TOPIC}`,
      undefined,
      METADATA_REQUEST_TIMEOUT_MS,
    );
    const leader = topic.status === 200 ? topic.body?.partitions?.[0]?.leader : null;
    if (typeof leader === 'number') {
      const ack = await produceOnce(cluster, leader, `serving-${when}-${attempt}`);
      if (ack) acks.record(ack.offset);
      if (ack?.servedBy === leader) return leader;
    }
    await sleep(RETRY_DELAY_MS);
  }
  throw new Error(
    `no leader served a produce ${when} within ${SERVE_TIMEOUT_MS} ms ${cluster.tails(NODE_IDS)}`,
  );
}

function summarize(run: {
  persistence: string;
  pauseMs: number;
  backgroundProducer: boolean;
  rounds: RoundResult[];
  recordsAcknowledged: number;
  elapsedMs: number;
}): PauseSummary {
  const answers: PauseSummary['answers'] = { ok: 0, stale: 0, timeouts: 0, errors: {} };
  let worstStale: PauseSummary['worstStale'] = null;
  for (const { answer, round, highestAckedBeforeRead } of run.rounds) {
    if (!answer) continue;
    if (answer.answerClass === 'ok') answers.ok++;
    if (answer.answerClass === 'timeout') answers.timeouts++;
    if (answer.answerClass === 'error') {
      const key = `${answer.status} ${answer.code ?? '-'}`;
      answers.errors[key] = (answers.errors[key] ?? 0) + 1;
    }
    if (answer.answerClass === 'stale') {
      answers.stale++;
      if (!worstStale || answer.missingOffsets > worstStale.missingOffsets) {
        worstStale = {
          round,
          highWatermark: answer.highWatermark!,
          highestAcked: highestAckedBeforeRead!,
          missingOffsets: answer.missingOffsets,
        };
      }
    }
  }
  return {
    persistence: run.persistence,
    pauseMs: run.pauseMs,
    backgroundProducer: run.backgroundProducer,
    roundsRun: run.rounds.length,
    roundsWithNewLeader: run.rounds.filter((r) => r.newLeader !== null).length,
    roundsJudged: run.rounds.filter((r) => r.answer !== null && r.readQueuedWhilePaused).length,
    answers,
    worstStale,
    recordsAcknowledged: run.recordsAcknowledged,
    elapsedMs: run.elapsedMs,
    rounds: run.rounds,
  };
}

/** One line per round, for progress output. */
export function formatRound(persistence: string, round: RoundResult, pauses: number): string {
  const answer = round.answer;
  const answerText = !answer
    ? `skipped (${round.skipped})`
    : answer.answerClass === 'ok' || answer.answerClass === 'stale'
      ? `${answer.answerClass} 200 highWatermark=${answer.highWatermark}` +
        (answer.missingOffsets > 0 ? ` missing ${answer.missingOffsets}` : '')
      : `${answer.answerClass} ${answer.status} ${answer.code ?? ''}`.trimEnd();
  return [
    `${persistence} round ${round.round}/${pauses}:`,
    `paused node ${round.pausedLeader} for ${round.pausedMs} ms,`,
    `new leader ${round.newLeader ?? '-'} acked offset ${round.highestAckedBeforeRead ?? '-'}`,
    `after ${round.newLeaderAckMs ?? '-'} ms,`,
    `read ${round.readQueuedWhilePaused ? 'queued while paused' : 'NOT queued while paused'} → ${answerText}`,
    `in ${answer?.latencyMs ?? '-'} ms; round ${round.elapsedMs} ms`,
  ].join(' ');
}

/** One line per run, for test output and the chaos script. */
export function formatSummary(summary: PauseSummary): string {
  const errors = Object.entries(summary.answers.errors)
    .map(([key, count]) => `${key} ×${count}`)
    .join(', ');
  const worst = summary.worstStale
    ? `, worst stale: highWatermark ${summary.worstStale.highWatermark} with offset ${summary.worstStale.highestAcked} acked (round ${summary.worstStale.round})`
    : '';
  return (
    `${summary.persistence}: ${summary.roundsRun} pauses of ${summary.pauseMs} ms, ` +
    `${summary.roundsWithNewLeader} with a new leader acking during the pause, ${summary.roundsJudged} judged; ` +
    `answers ok ${summary.answers.ok}, STALE ${summary.answers.stale}, timeouts ${summary.answers.timeouts}, ` +
    `errors ${errors || 'none'}${worst}; ${(summary.elapsedMs / 1000).toFixed(1)} s`
  );
}
