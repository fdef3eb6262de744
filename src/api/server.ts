// The composition root of one node: storage, the broker runtime, the peer transport and the
// HTTP API (fastify) on one port. `raftlog start` and `raftlog dev` call startServer.

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import { DISK_FREE_BYTES_MIN_DEFAULT, DiskGuard } from '../broker/disk-guard.js';
import { DiskNodeStore } from '../broker/disk-store.js';
import { BrokerNode, clusterIdOf } from '../broker/node.js';
import { Transport } from '../transport/index.js';
import type { PersistenceMode } from '../wire/types.js';
import { MAX_REQUEST_BYTES } from '../wire/types.js';
import { buildApp } from './app.js';
import { HttpForwarder } from './forward.js';
import { REQUEST_GATE_LIMITS_DEFAULT, RequestGate } from './request-gate.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface ServerOptions {
  nodeId: number;
  /** This node's data directory (created if missing). */
  dataDir: string;
  /** Where this node serves HTTP and peer connections. */
  listen: { host: string; port: number };
  /** Every voting node of the cluster, this one included: id → URL the others dial. */
  peers: Map<number, string>;
  /** Persistence mode of topics created without one. */
  defaultPersistence: PersistenceMode;
  logLevel: LogLevel;
  /** A logger to use instead of one built from logLevel (tests). */
  logger?: Logger;
  /** Free bytes the data directory keeps (default DISK_FREE_BYTES_MIN_DEFAULT, 256 MiB). */
  diskFreeBytesMin?: number;
  /** Bytes of memory-topic data the node holds at most (default: a quarter of the memory). */
  memoryTopicsBytesMax?: number;
}

export interface RunningServer {
  nodeId: number;
  /** The URL this node serves on. */
  url: string;
  broker: BrokerNode;
  /**
   * Shuts down cleanly: hands leadership to caught-up peers where possible, flushes buffered
   * writes, closes connections. Resolves when done.
   */
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const logger = options.logger ?? pino({ level: options.logLevel, base: { node: options.nodeId } });
  await mkdir(options.dataDir, { recursive: true });
  const tuning = testTuning();
  const store = await DiskNodeStore.open({
    dataDir: path.resolve(options.dataDir),
    ...(tuning.segmentBytesMax === undefined ? {} : { segmentBytesMax: tuning.segmentBytesMax }),
  });
  const diskGuard = new DiskGuard({
    dataDir: path.resolve(options.dataDir),
    freeBytesMin: options.diskFreeBytesMin ?? DISK_FREE_BYTES_MIN_DEFAULT,
    logger,
    ...(tuning.diskCheckMs === undefined ? {} : { checkIntervalMs: tuning.diskCheckMs }),
  });
  await diskGuard.start();
  let broker: BrokerNode | null = null;
  const transport = new Transport({
    nodeId: options.nodeId,
    clusterId: clusterIdOf(options.peers),
    peers: options.peers,
    onMessages: (_from, batch) => {
      if (!broker) return;
      const nowTicks = broker.driver.nowTicks();
      for (let i = 0; i < batch.messages.length; i++)
        broker.driver.deliver(batch.groupIds[i]!, batch.messages[i]!, nowTicks);
    },
    onPeerDown: (nodeId) => broker?.reportUnreachable(nodeId),
    logger: logger.child({ component: 'transport' }),
  });
  broker = new BrokerNode({
    nodeId: options.nodeId,
    peers: options.peers,
    store,
    transport,
    logger,
    defaultPersistence: options.defaultPersistence,
    diskGuard,
    ...(options.memoryTopicsBytesMax === undefined
      ? {}
      : { memoryTopicsBytesMax: options.memoryTopicsBytesMax }),
    ...(tuning.retentionCheckMs === undefined
      ? {}
      : { timing: { retentionCheckMs: tuning.retentionCheckMs } }),
  });
  const forwarder = new HttpForwarder(options.peers, options.nodeId);
  const gate = new RequestGate(
    { ...REQUEST_GATE_LIMITS_DEFAULT, chunkedBodyBytes: MAX_REQUEST_BYTES },
    options.nodeId,
  );
  const app = buildApp({ broker, forwarder, gate }, logger);
  transport.attach(app.server);
  await broker.start();
  await app.listen({ host: options.listen.host, port: options.listen.port });
  transport.start();
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.listen.port;
  const url = `http://${options.listen.host}:${port}`;
  logger.info(
    { url, peers: [...options.peers.keys()], memoryTopicsBytesMax: broker.memoryTopics.bytesMax },
    'node started',
  );
  const running = broker;
  let closing: Promise<void> | null = null;
  return {
    nodeId: options.nodeId,
    url,
    broker: running,
    close: () => {
      closing ??= (async () => {
        // See "Shutdown" in docs/operations.md. New requests are refused from here on; those
        // accepted get answers: hand-off first, so their writes commit under the new leaders
        // and are answered as this replica applies them. Leadership hand-off needs the
        // transport; upgraded peer sockets then keep the HTTP server from closing, so the
        // transport goes before the server.
        const startedMs = performance.now();
        gate.beginDrain();
        await running.handOffLeadership(SHUTDOWN_HAND_OFF_MS);
        const answered = await gate.idle(Math.max(0, SHUTDOWN_ANSWER_MS - (performance.now() - startedMs)));
        await running.stop(0);
        diskGuard.stop();
        // What still waited got a coded error from stop(); let those answers leave.
        if (!answered) await gate.idle(SHUTDOWN_LAST_ANSWERS_MS);
        // Requests already on the wire when the drain began still get a coded answer (BUSY).
        const lingerMs = SHUTDOWN_LINGER_MS - (performance.now() - startedMs);
        if (lingerMs > 0) await new Promise((resolve) => setTimeout(resolve, lingerMs));
        await transport.close();
        app.server.closeAllConnections(); // streams, and a client that never read its answer
        await app.close();
        await forwarder.close();
        logger.info(
          { shutdownMs: Math.round(performance.now() - startedMs), unansweredAtStop: gate.inFlight },
          'node stopped',
        );
      })();
      return closing;
    },
  };
}

/** Shutdown: how long leadership hand-off may take, and when in-flight requests must be answered. */
const SHUTDOWN_HAND_OFF_MS = 1500;
const SHUTDOWN_ANSWER_MS = 2000;
/** After stop(), the coded errors of requests that still waited get this long to leave. */
const SHUTDOWN_LAST_ANSWERS_MS = 300;
/**
 * Connections stay open at least this long after the drain began, answering BUSY with
 * `connection: close`: a client that wrote a request just as the drain began gets an answer, not
 * a reset.
 */
const SHUTDOWN_LINGER_MS = 250;

/**
 * Test-only knobs (integration tests run real processes with tiny segments and frequent
 * retention checks, or a free-space reading that goes stale so that a real ENOSPC happens):
 * RAFTLOG_TEST_SEGMENT_BYTES, RAFTLOG_TEST_RETENTION_CHECK_MS and RAFTLOG_TEST_DISK_CHECK_MS.
 * Not part of the CLI contract; unset, the defaults apply.
 */
function testTuning(): { segmentBytesMax?: number; retentionCheckMs?: number; diskCheckMs?: number } {
  const positive = (name: string): number | undefined => {
    const raw = process.env[name];
    if (raw === undefined || raw === '') return undefined;
    const value = Number(raw);
    if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer`);
    return value;
  };
  return {
    segmentBytesMax: positive('RAFTLOG_TEST_SEGMENT_BYTES'),
    retentionCheckMs: positive('RAFTLOG_TEST_RETENTION_CHECK_MS'),
    diskCheckMs: positive('RAFTLOG_TEST_DISK_CHECK_MS'),
  };
}
