// bench:transport — the node-to-node transport on 127.0.0.1. Peers run in child processes (this
// script with --role peer), each a fastify server with a Transport attached, answering every App
// with an AppResp in one flush, like a follower. Cases:
//   - round trip of a small Raft batch (one 100-byte App for each of 4 groups) over the persistent
//     upgraded connection, versus an undici request/response (keep-alive) carrying the same frame
//     bytes to a fastify route that decodes them and answers with the same AppResp frame;
//   - the same to two peers, timed to the first answer (a leader's commit with two followers);
//   - throughput of App batches of 100-byte entries with a window of frames in flight;
//   - the codec alone, in process.
// Prints JSON, then a table. Every case is bounded by --seconds and a sample cap.
//
//   npm run bench:transport [-- --seconds 3 --window-frames 16]

import { type ChildProcess, fork } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import fastify from 'fastify';
import { pino } from 'pino';
import { Client } from 'undici';
import {
  type AppMessage,
  EntryType,
  type Message,
  MessageType,
  makeMessage,
  type NodeId,
} from '../src/raft/index.js';
import {
  decodeFrame,
  encodeBatch,
  FRAME_LENGTH_BYTES,
  FrameKind,
  type MessageBatch,
  Transport,
} from '../src/transport/index.js';

const CLUSTER_ID = 'bench-transport';
const LEADER_ID = 1;
const PEER_IDS = [2, 3];
const ENTRY_BYTES = 100;
const SMALL_BATCH_GROUPS = 4;
const WARMUP_ROUNDS = 500;
const MAX_SAMPLES = 1_000_000;
const STARTUP_TIMEOUT_MS = 10_000;
/** A round without an answer by then lost a message (only a link failure drops one): abort. */
const ROUND_TIMEOUT_MS = 2_000;
const logger = pino({ level: 'warn' });

// --- messages -------------------------------------------------------------------------------

const payload = new Uint8Array(ENTRY_BYTES).fill(7);

function app(from: NodeId, to: NodeId, index: number, entryCount: number): AppMessage {
  const message = makeMessage(MessageType.App, from, to, 5);
  message.prevIndex = index;
  message.prevTerm = 5;
  message.commit = index;
  message.entries = Array.from({ length: entryCount }, (_, i) => ({
    term: 5,
    index: index + 1 + i,
    type: EntryType.Normal,
    data: payload,
  }));
  return message;
}

/** What a follower answers to an App once its entries are durable. */
function ackOf(message: Message): Message {
  if (message.type !== MessageType.App) throw new Error(`expected an App, got ${MessageType[message.type]}`);
  const ack = makeMessage(MessageType.AppResp, message.to, message.from, message.term);
  ack.matchIndex = message.prevIndex + message.entries.length;
  return ack;
}

function batchOf(body: Buffer): MessageBatch {
  const frame = decodeFrame(body);
  if (frame.kind !== FrameKind.Batch) throw new Error('expected a batch frame');
  return frame.batch;
}

function acksFrame(batch: MessageBatch): Buffer {
  return encodeBatch(Array.from(batch.groupIds), batch.messages.map(ackOf));
}

// --- peer role (child process) --------------------------------------------------------------

async function runPeer(nodeId: NodeId, parentPort: number): Promise<void> {
  const server = fastify({ bodyLimit: 64 * 1024 * 1024 });
  server.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_request, body, done) =>
    done(null, body),
  );
  server.post('/bench/frame', async (request, reply) => {
    const body = request.body as Buffer;
    reply.type('application/octet-stream');
    return acksFrame(batchOf(body.subarray(FRAME_LENGTH_BYTES)));
  });
  await server.listen({ host: '127.0.0.1', port: 0 });
  const transport: Transport = new Transport({
    nodeId,
    clusterId: CLUSTER_ID,
    peers: new Map([[LEADER_ID, `http://127.0.0.1:${parentPort}`]]),
    onMessages: (from, batch) => {
      for (let i = 0; i < batch.messages.length; i++)
        transport.send(from, batch.groupIds[i]!, ackOf(batch.messages[i]!));
      transport.flush();
    },
    logger,
  });
  transport.attach(server.server);
  process.on('disconnect', () => process.exit(0));
  // The leader says when to dial (once it accepts upgrades), and asks for CPU time around a case.
  process.on('message', (message: { start?: boolean }) => {
    if (message.start === true) transport.start();
    else process.send!({ cpuMicros: cpuMicros() });
  });
  process.send!({ port: (server.server.address() as AddressInfo).port });
}

// --- leader role ----------------------------------------------------------------------------

interface PeerProcess {
  id: NodeId;
  port: number;
  child: ChildProcess;
}

function spawnPeer(id: NodeId, parentPort: number): Promise<PeerProcess> {
  const script = fileURLToPath(import.meta.url);
  const child = fork(script, ['--role', 'peer', '--node', String(id), '--parent-port', String(parentPort)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`peer ${id} did not start`)), STARTUP_TIMEOUT_MS);
    child.once('message', (message: { port: number }) => {
      clearTimeout(timer);
      resolve({ id, port: message.port, child });
    });
    child.once('exit', (code) => reject(new Error(`peer ${id} exited with ${code}`)));
  });
}

/** Routes answers arriving on the transport to whichever case is running. */
interface AnswerHandler {
  onAnswer(from: NodeId, batch: MessageBatch): void;
}

interface LatencyResult {
  case: string;
  peers: number;
  rounds: number;
  roundsPerSecond: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

interface ThroughputResult {
  case: string;
  entriesPerMessage: number;
  messagesPerFrame: number;
  messagesPerSecond: number;
  entriesPerSecond: number;
  wireMBPerSecond: number;
  payloadMBPerSecond: number;
  leaderCpuPercent: number;
  peerCpuPercent: number;
  /** CPU per message acknowledged: encode + write + read acks (leader); read + decode + ack (peer). */
  leaderCpuMicrosPerMessage: number;
  peerCpuMicrosPerMessage: number;
  dropped: number;
}

/** Per CPU second, not wall second: on a shared machine the CPU we got is what we can measure. */
interface CodecResult {
  case: string;
  frameBytes: number;
  encodeMBPerCpuSecond: number;
  decodeMBPerCpuSecond: number;
  encodeNsPerMessage: number;
  decodeNsPerMessage: number;
}

const round3 = (value: number): number => Math.round(value * 1000) / 1000;

function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

function peerCpuMicros(peer: PeerProcess): Promise<number> {
  return new Promise((resolve) => {
    peer.child.once('message', (message: { cpuMicros: number }) => resolve(message.cpuMicros));
    peer.child.send({ cpu: true });
  });
}

function percentile(sorted: Float64Array, fraction: number): number {
  return round3(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!);
}

/** Runs `roundTrip` (which resolves to one latency in ms) for `seconds` after a warm-up. */
async function measureLatency(
  name: string,
  peers: number,
  seconds: number,
  roundTrip: () => Promise<number>,
): Promise<LatencyResult> {
  for (let i = 0; i < WARMUP_ROUNDS; i++) await roundTrip();
  const samples = new Float64Array(MAX_SAMPLES);
  let rounds = 0;
  const startMs = performance.now();
  const deadlineMs = startMs + seconds * 1000;
  while (rounds < MAX_SAMPLES && performance.now() < deadlineMs) samples[rounds++] = await roundTrip();
  const elapsedSeconds = (performance.now() - startMs) / 1000;
  const sorted = samples.subarray(0, rounds).sort();
  return {
    case: name,
    peers,
    rounds,
    roundsPerSecond: Math.round(rounds / elapsedSeconds),
    p50Ms: percentile(sorted, 0.5),
    p90Ms: percentile(sorted, 0.9),
    p99Ms: percentile(sorted, 0.99),
    p999Ms: percentile(sorted, 0.999),
    maxMs: round3(sorted[rounds - 1]!),
  };
}

class Leader implements AnswerHandler {
  handler: AnswerHandler = this;
  readonly transport: Transport;
  private waiter: {
    pending: number;
    firstMs: number;
    startMs: number;
    resolve: (ms: number) => void;
    reject: (error: Error) => void;
  } | null = null;
  /** Fails a round that waited past its timeout, instead of hanging the bench. */
  private readonly watchdog = setInterval(() => this.expireWaiter(ROUND_TIMEOUT_MS), 100);
  /** The small batch per peer: messages addressed to that peer, and their groups. */
  private readonly small = new Map<NodeId, Message[]>();
  private readonly smallGroupIds = Array.from({ length: SMALL_BATCH_GROUPS }, (_, i) => i + 1);

  constructor(peers: PeerProcess[]) {
    this.transport = new Transport({
      nodeId: LEADER_ID,
      clusterId: CLUSTER_ID,
      peers: new Map(peers.map((p) => [p.id, `http://127.0.0.1:${p.port}`])),
      onMessages: (from, batch) => this.handler.onAnswer(from, batch),
      logger,
    });
    for (const p of peers) {
      this.small.set(
        p.id,
        this.smallGroupIds.map((g) => app(LEADER_ID, p.id, 1000 * g, 1)),
      );
    }
  }

  smallFrame(peerId: NodeId): Buffer {
    return encodeBatch(this.smallGroupIds, this.small.get(peerId)!);
  }

  /** One small batch to each of `peerIds`; resolves when all answered, to the first answer's time. */
  transportRoundTrip(peerIds: NodeId[]): Promise<number> {
    return new Promise((resolve, reject) => {
      this.waiter = { pending: peerIds.length, firstMs: 0, startMs: performance.now(), resolve, reject };
      for (const id of peerIds) {
        const messages = this.small.get(id)!;
        for (let i = 0; i < messages.length; i++)
          this.transport.send(id, this.smallGroupIds[i]!, messages[i]!);
      }
      this.transport.flush();
    });
  }

  /** Rounds until every peer answers: the peers' links to us may still be dialing. */
  async prime(peerIds: NodeId[]): Promise<void> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const round = this.transportRoundTrip(peerIds).then(
        () => true,
        () => false,
      );
      const settled = await Promise.race([
        round,
        new Promise<boolean>((r) => setTimeout(() => r(false), 200)),
      ]);
      this.expireWaiter(0);
      await round;
      if (settled) return;
    }
    throw new Error('the peers never answered');
  }

  private expireWaiter(olderThanMs: number): void {
    const waiter = this.waiter;
    if (waiter === null || performance.now() - waiter.startMs < olderThanMs) return;
    this.waiter = null;
    waiter.reject(new Error(`no answer within ${olderThanMs} ms: a message was lost`));
  }

  close(): void {
    clearInterval(this.watchdog);
  }

  onAnswer(_from: NodeId, _batch: MessageBatch): void {
    const waiter = this.waiter;
    if (waiter === null) return;
    if (waiter.firstMs === 0) waiter.firstMs = performance.now() - waiter.startMs;
    if (--waiter.pending === 0) {
      this.waiter = null;
      waiter.resolve(waiter.firstMs);
    }
  }
}

/** `frames` are encoded by the caller on every round, as the transport does, so both pay the codec. */
async function undiciRoundTrip(clients: Client[], frames: Buffer[]): Promise<number> {
  const startMs = performance.now();
  let firstMs = 0;
  await Promise.all(
    clients.map(async (client, i) => {
      const body = frames[i]!;
      const response = await client.request({
        path: '/bench/frame',
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body,
      });
      const answer = Buffer.from(await response.body.arrayBuffer());
      batchOf(answer.subarray(FRAME_LENGTH_BYTES));
      if (firstMs === 0) firstMs = performance.now() - startMs;
    }),
  );
  return firstMs;
}

async function measureThroughput(
  leader: Leader,
  peer: PeerProcess,
  entriesPerMessage: number,
  messagesPerFrame: number,
  windowFrames: number,
  seconds: number,
): Promise<ThroughputResult> {
  const peerId = peer.id;
  const messages = Array.from({ length: messagesPerFrame }, (_, i) =>
    app(LEADER_ID, peerId, i * entriesPerMessage, entriesPerMessage),
  );
  const groupIds = messages.map((_, i) => i);
  const frameBytes = encodeBatch(groupIds, messages).length;
  const transport = leader.transport;
  let running = true;
  let inflightMessages = 0;
  let ackedMessages = 0;
  const pump = () => {
    while (running && inflightMessages + messagesPerFrame <= windowFrames * messagesPerFrame) {
      for (let i = 0; i < messagesPerFrame; i++) transport.send(peerId, groupIds[i]!, messages[i]!);
      transport.flush();
      inflightMessages += messagesPerFrame;
    }
  };
  leader.handler = {
    onAnswer(_from, batch) {
      ackedMessages += batch.messages.length;
      inflightMessages -= batch.messages.length;
      pump();
    },
  };
  const droppedBefore = transport.stats().peers.find((p) => p.nodeId === peerId)!.messagesDropped;
  const peerCpuStart = await peerCpuMicros(peer);
  const cpuStart = cpuMicros();
  const startMs = performance.now();
  pump();
  // The window runs for a fixed time; acks drive it, the timer only ends it.
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  running = false;
  const elapsedSeconds = (performance.now() - startMs) / 1000;
  const acked = ackedMessages;
  const leaderCpuMicros = cpuMicros() - cpuStart;
  const peerCpu = (await peerCpuMicros(peer)) - peerCpuStart;
  const drainDeadline = performance.now() + 5_000;
  while (inflightMessages > 0 && performance.now() < drainDeadline)
    await new Promise((r) => setTimeout(r, 5));
  leader.handler = leader;
  const dropped = transport.stats().peers.find((p) => p.nodeId === peerId)!.messagesDropped - droppedBefore;
  const frames = acked / messagesPerFrame;
  return {
    case: 'throughput, transport, 1 peer',
    entriesPerMessage,
    messagesPerFrame,
    messagesPerSecond: Math.round(acked / elapsedSeconds),
    entriesPerSecond: Math.round((acked * entriesPerMessage) / elapsedSeconds),
    wireMBPerSecond: round3((frames * frameBytes) / elapsedSeconds / 1e6),
    payloadMBPerSecond: round3((acked * entriesPerMessage * ENTRY_BYTES) / elapsedSeconds / 1e6),
    leaderCpuPercent: Math.round((leaderCpuMicros / 1e6 / elapsedSeconds) * 100),
    peerCpuPercent: Math.round((peerCpu / 1e6 / elapsedSeconds) * 100),
    leaderCpuMicrosPerMessage: round3(leaderCpuMicros / acked),
    peerCpuMicrosPerMessage: round3(peerCpu / acked),
    dropped,
  };
}

function measureCodec(entriesPerMessage: number, messagesPerFrame: number, seconds: number): CodecResult {
  const messages = Array.from({ length: messagesPerFrame }, (_, i) =>
    app(1, 2, i * entriesPerMessage, entriesPerMessage),
  );
  const groupIds = messages.map((_, i) => i);
  const frameBytes = encodeBatch(groupIds, messages).length;
  /** CPU microseconds per frame of `work`, run for half of `seconds`. */
  const timeLoop = (work: () => void): number => {
    let frames = 0;
    const cpuStart = cpuMicros();
    const deadlineMs = performance.now() + (seconds * 1000) / 2;
    for (; frames < 10_000_000 && performance.now() < deadlineMs; frames++) work();
    return (cpuMicros() - cpuStart) / frames;
  };
  const frame = encodeBatch(groupIds, messages);
  const encodeMicros = timeLoop(() => encodeBatch(groupIds, messages));
  const decodeMicros = timeLoop(() => batchOf(frame.subarray(FRAME_LENGTH_BYTES)));
  return {
    case: `${messagesPerFrame} App x ${entriesPerMessage} entries`,
    frameBytes,
    encodeMBPerCpuSecond: Math.round(frameBytes / encodeMicros),
    decodeMBPerCpuSecond: Math.round(frameBytes / decodeMicros),
    encodeNsPerMessage: Math.round((encodeMicros * 1000) / messagesPerFrame),
    decodeNsPerMessage: Math.round((decodeMicros * 1000) / messagesPerFrame),
  };
}

async function waitUntil(what: string, condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function runLeader(seconds: number, windowFrames: number): Promise<void> {
  const server = http.createServer((_request, response) => response.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  // The codec first: its loops hold the event loop, which would stall live links.
  const codec = [measureCodec(1, 256, seconds), measureCodec(64, 16, seconds)];
  const peers = await Promise.all(PEER_IDS.map((id) => spawnPeer(id, port)));
  const leader = new Leader(peers);
  leader.transport.attach(server);
  leader.transport.start();
  for (const p of peers) p.child.send({ start: true });
  const clients = peers.map(
    (p) =>
      new Client(`http://127.0.0.1:${p.port}`, { pipelining: 1, headersTimeout: 5_000, bodyTimeout: 5_000 }),
  );
  try {
    await waitUntil(
      'links to the peers',
      () => PEER_IDS.every((id) => leader.transport.isPeerAlive(id)),
      10_000,
    );
    await leader.prime(PEER_IDS);
    const [one, two] = peers;
    const latency = [
      await measureLatency('round trip, transport', 1, seconds, () => leader.transportRoundTrip([one!.id])),
      await measureLatency('round trip, undici + fastify', 1, seconds, () =>
        undiciRoundTrip([clients[0]!], [leader.smallFrame(one!.id)]),
      ),
      await measureLatency('first of 2 answers, transport', 2, seconds, () =>
        leader.transportRoundTrip([one!.id, two!.id]),
      ),
      await measureLatency('first of 2 answers, undici + fastify', 2, seconds, () =>
        undiciRoundTrip(clients, [leader.smallFrame(one!.id), leader.smallFrame(two!.id)]),
      ),
    ];
    const throughput = [
      await measureThroughput(leader, one!, 1, 256, windowFrames, seconds),
      await measureThroughput(leader, one!, 64, 16, windowFrames, seconds),
    ];
    report(latency, throughput, codec, {
      smallFrameBytes: leader.smallFrame(one!.id).length,
      seconds,
      windowFrames,
    });
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    leader.close();
    await leader.transport.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    for (const p of peers) p.child.kill();
  }
}

function report(
  latency: LatencyResult[],
  throughput: ThroughputResult[],
  codec: CodecResult[],
  setup: { smallFrameBytes: number; seconds: number; windowFrames: number },
): void {
  const { smallFrameBytes, seconds, windowFrames } = setup;
  const summary = {
    bench: 'transport',
    description:
      `127.0.0.1, peers in child processes; small batch = ${SMALL_BATCH_GROUPS} App messages of one ` +
      `${ENTRY_BYTES}-byte entry (${smallFrameBytes}-byte frame), answered by ${SMALL_BATCH_GROUPS} AppResp; ` +
      `throughput window ${windowFrames} frames in flight; ${seconds} s per case`,
    node: process.version,
    cpus: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    date: new Date().toISOString(),
    latency,
    throughput,
    codec,
  };
  console.log(JSON.stringify(summary, null, 2));
  console.log('');
  console.log(
    'case                                  | peers | p50 ms | p90 ms | p99 ms | p99.9 ms | rounds/s',
  );
  console.log(
    '------------------------------------- | ----- | ------ | ------ | ------ | -------- | --------',
  );
  for (const r of latency) {
    console.log(
      `${r.case.padEnd(37)} | ${String(r.peers).padStart(5)} | ${r.p50Ms.toFixed(3).padStart(6)} | ` +
        `${r.p90Ms.toFixed(3).padStart(6)} | ${r.p99Ms.toFixed(3).padStart(6)} | ` +
        `${r.p999Ms.toFixed(3).padStart(8)} | ${String(r.roundsPerSecond).padStart(8)}`,
    );
  }
  console.log('');
  console.log(
    'App batches, 100-byte entries | messages/s | entries/s | wire MB/s | CPU % ldr/peer | CPU µs/msg ldr/peer',
  );
  console.log(
    '----------------------------- | ---------- | --------- | --------- | -------------- | ------------------',
  );
  for (const r of throughput) {
    const shape = `${r.messagesPerFrame} msgs x ${r.entriesPerMessage} entries / frame`;
    const cpuPercent = `${r.leaderCpuPercent} / ${r.peerCpuPercent}`;
    const cpuPerMessage = `${r.leaderCpuMicrosPerMessage.toFixed(2)} / ${r.peerCpuMicrosPerMessage.toFixed(2)}`;
    console.log(
      `${shape.padEnd(29)} | ${String(r.messagesPerSecond).padStart(10)} | ` +
        `${String(r.entriesPerSecond).padStart(9)} | ${r.wireMBPerSecond.toFixed(1).padStart(9)} | ` +
        `${cpuPercent.padStart(14)} | ${cpuPerMessage.padStart(18)}`,
    );
  }
  console.log('');
  console.log(
    'codec (CPU time)              | frame B | encode MB/s | decode MB/s | encode ns/msg | decode ns/msg',
  );
  console.log(
    '----------------------------- | ------- | ----------- | ----------- | ------------- | -------------',
  );
  for (const r of codec) {
    console.log(
      `${r.case.padEnd(29)} | ${String(r.frameBytes).padStart(7)} | ${String(r.encodeMBPerCpuSecond).padStart(11)} | ` +
        `${String(r.decodeMBPerCpuSecond).padStart(11)} | ${String(r.encodeNsPerMessage).padStart(13)} | ` +
        `${String(r.decodeNsPerMessage).padStart(13)}`,
    );
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '3' },
      'window-frames': { type: 'string', default: '16' },
      role: { type: 'string', default: 'leader' },
      node: { type: 'string', default: '0' },
      'parent-port': { type: 'string', default: '0' },
    },
  });
  if (values.role === 'peer') {
    await runPeer(Number(values.node), Number(values['parent-port']));
    return;
  }
  const seconds = Number(values.seconds);
  const windowFrames = Number(values['window-frames']);
  if (
    !(seconds > 0 && seconds <= 30) ||
    !(Number.isInteger(windowFrames) && windowFrames >= 1 && windowFrames <= 256)
  ) {
    console.error('bench:transport: --seconds must be in (0, 30] and --window-frames an integer in [1, 256]');
    process.exit(2);
  }
  await runLeader(seconds, windowFrames);
}

await main();
