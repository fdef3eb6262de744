// Test fixtures for the transport: nodes (an HTTP server on 127.0.0.1 plus a Transport), fake peers
// that speak the handshake but misbehave on purpose, deadline polling, and message builders.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { pino } from 'pino';
import {
  type AppMessage,
  type Entry,
  EntryType,
  type HeartbeatMessage,
  type Message,
  MessageType,
  makeMessage,
  type NodeId,
} from '../../src/raft/index.js';
import { PONG_FRAME } from '../../src/transport/codec.js';
import {
  FrameKind,
  FrameReader,
  type MessageBatch,
  Transport,
  type TransportLimits,
} from '../../src/transport/index.js';

export const CLUSTER = 'test-cluster';
export const silentLogger = pino({ level: 'silent' });

/**
 * Fast redials so that failure paths finish well inside a test's budget; a peer timeout long
 * enough that a busy CI machine's event-loop stalls do not flap links (the liveness test sets its own).
 */
export const FAST_LIMITS: Partial<TransportLimits> = {
  pingIntervalMs: 100,
  peerTimeoutMs: 1_000,
  connectTimeoutMs: 500,
  reconnectBackoffInitialMs: 10,
  reconnectBackoffMaxMs: 100,
};

/** Polls `condition` every 5 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function waitFor(what: string, condition: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export async function listen(server: http.Server, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

export async function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A port on 127.0.0.1 that nobody listens on (bound, then released). */
export async function deadPort(): Promise<number> {
  const server = http.createServer();
  const port = await listen(server);
  await closeServer(server);
  return port;
}

export const urlOf = (port: number): string => `http://127.0.0.1:${port}`;

export interface ReceivedBatch {
  from: NodeId;
  groupIds: number[];
  messages: Message[];
}

/** A node: a plain HTTP server (answering 200 'ok') with a Transport attached. */
export interface TestNode {
  id: NodeId;
  port: number;
  server: http.Server;
  transport: Transport;
  received: ReceivedBatch[];
  downEvents: NodeId[];
  close(): Promise<void>;
}

export async function startServer(port = 0): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer((_request, response) => response.end('ok'));
  return { server, port: await listen(server, port) };
}

export function startNode(options: {
  id: NodeId;
  server: http.Server;
  port: number;
  peers: Map<NodeId, string>;
  clusterId?: string;
  limits?: Partial<TransportLimits>;
}): TestNode {
  const received: ReceivedBatch[] = [];
  const downEvents: NodeId[] = [];
  const transport = new Transport({
    nodeId: options.id,
    clusterId: options.clusterId ?? CLUSTER,
    peers: options.peers,
    onMessages: (from: NodeId, batch: MessageBatch) =>
      received.push({ from, groupIds: Array.from(batch.groupIds), messages: batch.messages }),
    onPeerDown: (id: NodeId) => downEvents.push(id),
    logger: silentLogger,
    limits: { ...FAST_LIMITS, ...options.limits },
  });
  transport.attach(options.server);
  transport.start();
  const close = async () => {
    await transport.close();
    await closeServer(options.server);
  };
  return {
    id: options.id,
    port: options.port,
    server: options.server,
    transport,
    received,
    downEvents,
    close,
  };
}

/** Starts `ids.length` nodes that all know each other. */
export async function startCluster(ids: NodeId[], limits?: Partial<TransportLimits>): Promise<TestNode[]> {
  const servers = await Promise.all(ids.map(() => startServer()));
  const peers = new Map(ids.map((id, i) => [id, urlOf(servers[i]!.port)]));
  return ids.map((id, i) => startNode({ id, ...servers[i]!, peers, limits }));
}

export async function closeAll(nodes: Array<{ close(): Promise<void> }>): Promise<void> {
  await Promise.all(nodes.map((node) => node.close()));
}

export function messagesFrom(node: TestNode, from: NodeId): Message[] {
  return node.received.filter((b) => b.from === from).flatMap((b) => b.messages);
}

/** An App from `from` to `to` carrying `count` entries of `dataBytes` after `index`. */
export function appMessage(from: NodeId, to: NodeId, index: number, count = 1, dataBytes = 8): AppMessage {
  const message = makeMessage(MessageType.App, from, to, 3);
  message.prevIndex = index;
  message.prevTerm = 3;
  message.commit = index;
  message.entries = Array.from({ length: count }, (_, i) => ({
    term: 3,
    index: index + 1 + i,
    type: EntryType.Normal,
    data: new Uint8Array(dataBytes).fill((index + i) & 0xff),
  }));
  return message;
}

export function heartbeat(from: NodeId, to: NodeId, commit: number): HeartbeatMessage {
  const message = makeMessage(MessageType.Heartbeat, from, to, 3);
  message.commit = commit;
  message.round = commit;
  return message;
}

/** The entries of a received App; fails the test for any other message. */
export function appEntries(message: Message): Entry[] {
  if (message.type !== MessageType.App) throw new Error(`expected an App, got ${MessageType[message.type]}`);
  return message.entries;
}

/** The commit of a received Heartbeat; fails the test for any other message. */
export function heartbeatCommit(message: Message): number {
  if (message.type !== MessageType.Heartbeat) {
    throw new Error(`expected a Heartbeat, got ${MessageType[message.type]}`);
  }
  return message.commit;
}

/**
 * A peer that completes the handshake as node `id` and then reads frames; it answers pings only
 * while `answerPings` is true, and stops reading altogether when `readFrames` is false.
 */
export interface FakePeer {
  port: number;
  server: http.Server;
  answerPings: boolean;
  upgrades: number;
  pingsSeen: number;
  framesSeen: number;
  close(): Promise<void>;
}

export async function startFakePeer(options: { id: NodeId; readFrames: boolean }): Promise<FakePeer> {
  const server = http.createServer();
  // Upgraded sockets leave the server's connection tracking, so the fake closes them itself.
  const sockets = new Set<Duplex>();
  const fake: FakePeer = {
    port: 0,
    server,
    answerPings: true,
    upgrades: 0,
    pingsSeen: 0,
    framesSeen: 0,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return closeServer(server);
    },
  };
  server.on('upgrade', (_request, socket: Duplex, head: Buffer) => {
    fake.upgrades++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n' +
        `Upgrade: raftlog-frames/1\r\nx-raftlog-node: ${options.id}\r\n\r\n`,
    );
    if (!options.readFrames) {
      socket.pause();
      return;
    }
    const reader = new FrameReader({
      maxFrameBytes: 1 << 26,
      sink: {
        onFrame(body: Buffer) {
          fake.framesSeen++;
          if (body[0] !== FrameKind.Ping) return;
          fake.pingsSeen++;
          if (fake.answerPings) socket.write(PONG_FRAME);
        },
      },
    });
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
    if (head.length > 0) reader.push(head);
  });
  fake.port = await listen(server);
  return fake;
}
