// Transports on 127.0.0.1 with ephemeral ports: exchange of batches, one write per peer per flush,
// bounded queues with a dead or slow peer, reconnect after a restart, handshake refusals, liveness.

import http from 'node:http';
import { Socket } from 'node:net';
import fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { MessageType, type NodeId } from '../../src/raft/index.js';
import { Transport, type TransportLimits } from '../../src/transport/index.js';
import {
  appEntries,
  appMessage,
  CLUSTER,
  closeAll,
  deadPort,
  heartbeat,
  heartbeatCommit,
  messagesFrom,
  silentLogger,
  startCluster,
  startFakePeer,
  startNode,
  startServer,
  type TestNode,
  urlOf,
  waitFor,
} from './helpers.js';

/** Everything a test opened, closed after it whatever happened. */
const opened: Array<{ close(): Promise<void> }> = [];
const track = <T extends { close(): Promise<void> }>(resource: T): T => {
  opened.push(resource);
  return resource;
};

afterEach(async () => {
  await closeAll(opened.splice(0));
});

const peerStats = (transport: Transport, id: NodeId) => transport.stats().peers.find((p) => p.nodeId === id)!;

describe('exchange', () => {
  it('two transports exchange batches of several groups both ways', async () => {
    const [a, b] = (await startCluster([1, 2])).map(track);
    await waitFor('links up', () => a!.transport.isPeerAlive(2) && b!.transport.isPeerAlive(1));
    a!.transport.send(2, 7, appMessage(1, 2, 10, 3));
    a!.transport.send(2, 0, heartbeat(1, 2, 10));
    a!.transport.send(2, 4_000_000_000, appMessage(1, 2, 99, 0));
    a!.transport.flush();
    await waitFor('batch at b', () => b!.received.length === 1);
    const batch = b!.received[0]!;
    expect(batch.from).toBe(1);
    expect(batch.groupIds).toEqual([7, 0, 4_000_000_000]);
    expect(batch.messages.map((m) => m.type)).toEqual([
      MessageType.App,
      MessageType.Heartbeat,
      MessageType.App,
    ]);
    expect(appEntries(batch.messages[0]!).map((e) => [e.index, Array.from(e.data)])).toEqual(
      appMessage(1, 2, 10, 3).entries.map((e) => [e.index, Array.from(e.data)]),
    );
    b!.transport.send(1, 7, heartbeat(2, 1, 5));
    b!.transport.flush();
    await waitFor('reply at a', () => a!.received.length === 1);
    expect(heartbeatCommit(a!.received[0]!.messages[0]!)).toBe(5);
  });

  it('three transports: every node reaches every other, and frames keep their order', async () => {
    const nodes = (await startCluster([1, 2, 3])).map(track);
    await waitFor('all links up', () =>
      nodes.every((n) => nodes.every((m) => m === n || n.transport.isPeerAlive(m.id))),
    );
    const turns = 20;
    for (let turn = 0; turn < turns; turn++) {
      for (const n of nodes) {
        for (const m of nodes) if (m !== n) n.transport.send(m.id, turn, heartbeat(n.id, m.id, turn));
        n.transport.flush();
      }
    }
    await waitFor('all frames', () => nodes.every((n) => n.received.length === 2 * turns));
    for (const n of nodes) {
      for (const m of nodes) {
        if (m === n) continue;
        expect(messagesFrom(n, m.id).map(heartbeatCommit)).toEqual([...Array(turns).keys()]);
      }
    }
  });

  it('works on a fastify server: routes still answer and peers upgrade on the same port', async () => {
    const app = fastify();
    app.get('/healthz', async () => ({ ok: true }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as { port: number }).port;
    const other = await startServer();
    const peers = new Map([
      [1, urlOf(port)],
      [2, urlOf(other.port)],
    ]);
    const a = track(startNode({ id: 1, server: app.server, port, peers }));
    track({ close: () => app.close() });
    const b = track(startNode({ id: 2, ...other, peers }));
    await waitFor('links up', () => a.transport.isPeerAlive(2) && b.transport.isPeerAlive(1));
    b.transport.send(1, 1, heartbeat(2, 1, 42));
    b.transport.flush();
    await waitFor('batch at the fastify node', () => a.received.length === 1);
    const response = await fetch(`${urlOf(port)}/healthz`);
    expect(await response.json()).toEqual({ ok: true });
  });
});

describe('batching', () => {
  it('each flush is exactly one socket write per peer, however many messages were queued', async () => {
    const limits = { pingIntervalMs: 10_000, peerTimeoutMs: 30_000 };
    const [a, b, c] = (await startCluster([1, 2, 3], limits)).map(track);
    await waitFor('links up', () => a!.transport.isPeerAlive(2) && a!.transport.isPeerAlive(3));
    await waitFor('opening pings answered', () => peerStats(a!.transport, 2).rttMs !== null);
    await waitFor('opening pings answered', () => peerStats(a!.transport, 3).rttMs !== null);
    const writesByRemotePort = new Map<number, number>();
    let inFlush = false;
    const originalWrite = Socket.prototype.write;
    Socket.prototype.write = function (this: Socket, ...args: Parameters<Socket['write']>) {
      if (inFlush)
        writesByRemotePort.set(this.remotePort!, (writesByRemotePort.get(this.remotePort!) ?? 0) + 1);
      return originalWrite.apply(this, args);
    } as Socket['write'];
    const turns = 30;
    const messagesPerPeer = 40;
    try {
      for (let turn = 0; turn < turns; turn++) {
        for (let i = 0; i < messagesPerPeer; i++) {
          a!.transport.send(2, i, appMessage(1, 2, turn * 100 + i, 2));
          a!.transport.send(3, i, heartbeat(1, 3, turn));
        }
        inFlush = true;
        a!.transport.flush();
        inFlush = false;
      }
    } finally {
      // The own property shadowed the inherited write; deleting it restores the original.
      delete (Socket.prototype as { write?: unknown }).write;
    }
    expect(Socket.prototype.write).toBe(originalWrite);
    expect(writesByRemotePort.get(b!.port)).toBe(turns);
    expect(writesByRemotePort.get(c!.port)).toBe(turns);
    expect(writesByRemotePort.size).toBe(2);
    await waitFor(
      'all frames at b and c',
      () => b!.received.length === turns && c!.received.length === turns,
    );
    expect(b!.received.every((batch) => batch.messages.length === messagesPerPeer)).toBe(true);
    expect(peerStats(a!.transport, 2)).toMatchObject({
      framesSent: turns,
      messagesSent: turns * messagesPerPeer,
    });
    expect(peerStats(b!.transport, 1)).toMatchObject({ framesReceived: turns, messagesReceived: turns * 40 });
  });
});

describe('a dead or slow peer', () => {
  it('a peer that never listens does not block the live one, and its queue stays bounded', async () => {
    const live = await startServer();
    const self = await startServer();
    const deadId = 9;
    const peers = new Map([
      [1, urlOf(self.port)],
      [2, urlOf(live.port)],
      [deadId, urlOf(await deadPort())],
    ]);
    const limits = { maxQueuedMessagesPerPeer: 16, maxQueuedBytesPerPeer: 64 * 1024 };
    const a = track(startNode({ id: 1, ...self, peers, limits }));
    const b = track(startNode({ id: 2, ...live, peers, limits }));
    await waitFor('link to the live peer', () => a.transport.isPeerAlive(2));
    const turns = 200;
    for (let turn = 0; turn < turns; turn++) {
      for (let i = 0; i < 10; i++) {
        a.transport.send(2, i, heartbeat(1, 2, turn));
        a.transport.send(deadId, i, heartbeat(1, deadId, turn));
      }
      a.transport.flush();
      const dead = peerStats(a.transport, deadId);
      expect(dead.queuedMessages).toBeLessThanOrEqual(16);
      expect(dead.queuedBytes).toBeLessThanOrEqual(64 * 1024);
      if (turn % 20 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor('every message at the live peer', () => messagesFrom(b, 1).length === turns * 10);
    const dead = peerStats(a.transport, deadId);
    expect(dead.alive).toBe(false);
    expect(dead.messagesSent).toBe(0);
    expect(dead.messagesDropped).toBeGreaterThanOrEqual(turns * 10 - 16);
    expect(dead.dialFailures).toBeGreaterThan(0);
    expect(dead.lastError).toMatch(/ECONNREFUSED/);
    expect(a.downEvents).toContain(deadId);
    expect(peerStats(a.transport, 2).messagesDropped).toBe(0);
  });

  it('a peer that stops reading fills its bounded queue and drops, while the live peer gets everything', async () => {
    const slow = track(await startFakePeer({ id: 3, readFrames: false }));
    const live = await startServer();
    const self = await startServer();
    const peers = new Map([
      [1, urlOf(self.port)],
      [2, urlOf(live.port)],
      [3, urlOf(slow.port)],
    ]);
    const maxQueuedBytesPerPeer = 256 * 1024;
    const limits = { maxQueuedBytesPerPeer, pingIntervalMs: 5_000, peerTimeoutMs: 20_000 };
    const a = track(startNode({ id: 1, ...self, peers, limits }));
    const b = track(startNode({ id: 2, ...live, peers, limits }));
    await waitFor('links up', () => a.transport.isPeerAlive(2) && a.transport.isPeerAlive(3));
    // 64 KiB per turn to the slow peer: the kernel buffers fill within a few hundred turns.
    let turns = 0;
    const deadline = performance.now() + 8_000;
    while (peerStats(a.transport, 3).messagesDropped === 0 && turns < 2_000 && performance.now() < deadline) {
      a.transport.send(3, 1, appMessage(1, 3, turns * 16, 16, 4096));
      a.transport.send(2, 1, heartbeat(1, 2, turns));
      a.transport.flush();
      turns++;
      expect(peerStats(a.transport, 3).queuedBytes).toBeLessThanOrEqual(maxQueuedBytesPerPeer);
      await new Promise((resolve) => setImmediate(resolve));
    }
    const stats = peerStats(a.transport, 3);
    expect(stats.messagesDropped).toBeGreaterThan(0);
    expect(stats.queuedBytes).toBeLessThanOrEqual(maxQueuedBytesPerPeer);
    expect(a.downEvents).toContain(3);
    await waitFor('the live peer got every turn', () => messagesFrom(b, 1).length === turns);
  });
});

describe('limits', () => {
  it('a message larger than the whole peer queue is dropped, counted and reported, never sent', async () => {
    const [a, b] = (await startCluster([1, 2], { maxQueuedBytesPerPeer: 4096 })).map(track);
    await waitFor('links up', () => a!.transport.isPeerAlive(2));
    expect(a!.transport.send(2, 1, appMessage(1, 2, 0, 1, 8192))).toBe(false);
    expect(a!.transport.send(2, 1, heartbeat(1, 2, 1))).toBe(true);
    a!.transport.flush();
    expect(peerStats(a!.transport, 2)).toMatchObject({ messagesDropped: 1, messagesSent: 1 });
    expect(a!.downEvents).toEqual([2]);
    await waitFor('the heartbeat arrived', () => messagesFrom(b!, 1).length === 1);
  });
});

describe('reconnect and liveness', () => {
  /** Node 2 (`b`) stops, `a` sees it down, and it starts again on the same port; the new node. */
  async function restartSecond(a: TestNode, b: TestNode, limits?: Partial<TransportLimits>) {
    track(a);
    await waitFor('links up', () => a.transport.isPeerAlive(2));
    await b.close();
    await waitFor('a sees b down', () => !a.transport.isPeerAlive(2) && a.downEvents.includes(2));
    const restarted = await startServer(b.port);
    const peers = new Map([
      [1, urlOf(a.port)],
      [2, urlOf(b.port)],
    ]);
    return track(startNode({ id: 2, ...restarted, peers, limits }));
  }

  it('reconnects after the peer restarts on the same port, and messages flow again', async () => {
    const [a, b] = await startCluster([1, 2]);
    const b2 = await restartSecond(a!, b!);
    await waitFor('a reconnected', () => a!.transport.isPeerAlive(2), 5_000);
    expect(peerStats(a!.transport, 2).reconnects).toBeGreaterThanOrEqual(1);
    a!.transport.send(2, 5, heartbeat(1, 2, 77));
    a!.transport.flush();
    await waitFor('message at the restarted peer', () =>
      messagesFrom(b2, 1).some((m) => m.type === MessageType.Heartbeat && m.commit === 77),
    );
  });

  it('a peer that dials in ends the backoff of the link to it: no waiting out the redial delay', async () => {
    // Redials 2.5 to 5 s apart: a reconnect inside 2 s can only come from the peer's own dial.
    const limits = { reconnectBackoffInitialMs: 5_000, reconnectBackoffMaxMs: 10_000 };
    const [a, b] = await startCluster([1, 2], limits);
    await restartSecond(a!, b!, limits);
    await waitFor('a redialed b as soon as b dialed a', () => a!.transport.isPeerAlive(2), 2_000);
  });

  it('liveness flips to dead after peerTimeoutMs without a frame, and back when pongs return', async () => {
    const fake = track(await startFakePeer({ id: 2, readFrames: true }));
    const self = await startServer();
    const peers = new Map([
      [1, urlOf(self.port)],
      [2, urlOf(fake.port)],
    ]);
    const limits = { pingIntervalMs: 40, peerTimeoutMs: 250 };
    const a = track(startNode({ id: 1, ...self, peers, limits }));
    await waitFor('alive', () => a.transport.isPeerAlive(2));
    await waitFor('pinged while idle', () => fake.pingsSeen >= 3);
    expect(a.transport.isPeerAlive(2)).toBe(true);
    fake.answerPings = false;
    const silentSince = performance.now();
    await waitFor('dead', () => !a.transport.isPeerAlive(2), 2_000);
    expect(performance.now() - silentSince).toBeGreaterThanOrEqual(250 - 40 - 5);
    await waitFor('reported down', () => a.downEvents.includes(2));
    fake.answerPings = true;
    await waitFor('alive again', () => a.transport.isPeerAlive(2), 3_000);
    expect(fake.upgrades).toBeGreaterThanOrEqual(2);
  });
});

describe('handshake', () => {
  it('a dialer with the wrong cluster id is refused before upgrading and never delivers', async () => {
    const x = await startServer();
    const y = await startServer();
    const peers = new Map([
      [1, urlOf(x.port)],
      [2, urlOf(y.port)],
    ]);
    const a = track(startNode({ id: 1, ...x, peers, clusterId: 'cluster-a' }));
    const b = track(startNode({ id: 2, ...y, peers, clusterId: 'cluster-b' }));
    await waitFor('refusal seen', () =>
      (peerStats(a.transport, 2).lastError ?? '').includes('CLUSTER_MISMATCH'),
    );
    expect(peerStats(a.transport, 2).lastError).toMatch(/HTTP 403/);
    a.transport.send(2, 1, heartbeat(1, 2, 1));
    a.transport.flush();
    expect(a.transport.isPeerAlive(2)).toBe(false);
    expect(peerStats(b.transport, 1).framesReceived).toBe(0);
  });

  it('refuses unknown nodes, wrong targets and other upgrades with plain HTTP errors', async () => {
    const [a] = (await startCluster([1, 2])).map(track);
    const upgrade = (path: string, headers: Record<string, string>) =>
      new Promise<string>((resolve, reject) => {
        const request = http.request({ host: '127.0.0.1', port: a!.port, path, agent: false, headers });
        request.on('response', (response) => {
          let body = '';
          response.on('data', (chunk) => (body += chunk));
          response.on('end', () => resolve(`${response.statusCode} ${body.trim()}`));
        });
        request.on('upgrade', (_response, socket) => {
          socket.destroy();
          resolve('101');
        });
        request.on('error', reject);
        request.end();
      });
    const base = { Connection: 'Upgrade', Upgrade: 'raftlog-frames/1', 'x-raftlog-cluster': CLUSTER };
    expect(await upgrade('/v1/raft/stream', { ...base, 'x-raftlog-node': '5' })).toMatch(/^403 UNKNOWN_NODE/);
    expect(await upgrade('/v1/raft/stream', { ...base, 'x-raftlog-node': 'x' })).toMatch(/^403 UNKNOWN_NODE/);
    expect(await upgrade('/v1/raft/stream', { ...base, 'x-raftlog-node': '2', 'x-raftlog-to': '3' })).toMatch(
      /^421 WRONG_NODE/,
    );
    expect(await upgrade('/other', { ...base, Upgrade: 'websocket' })).toMatch(/^404 NOT_FOUND/);
    expect(await upgrade('/v1/raft/stream', { ...base, 'x-raftlog-node': '2' })).toBe('101');
    // Plain requests still reach the server's own handler.
    expect(await (await fetch(`${urlOf(a!.port)}/anything`)).text()).toBe('ok');
  });

  it('a malformed frame closes that connection only; the node keeps serving', async () => {
    const [a, b] = (await startCluster([1, 2])).map(track);
    await waitFor('links up', () => a!.transport.isPeerAlive(2) && b!.transport.isPeerAlive(1));
    // Impersonate node 2 on a raw socket and send a frame whose kind byte is unknown.
    const socket = await new Promise<Socket>((resolve, reject) => {
      const request = http.request({
        host: '127.0.0.1',
        port: a!.port,
        path: '/v1/raft/stream',
        agent: false,
        headers: {
          Connection: 'Upgrade',
          Upgrade: 'raftlog-frames/1',
          'x-raftlog-cluster': CLUSTER,
          'x-raftlog-node': '2',
        },
      });
      request.on('upgrade', (_response, upgraded: Socket) => resolve(upgraded));
      request.on('error', reject);
      request.end();
    });
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => {});
    socket.write(Buffer.from([1, 0, 0, 0, 0x7f]));
    await closed;
    await waitFor('counted', () => peerStats(a!.transport, 2).malformedFrames === 1);
    // b redials if its inbound was replaced; either way the pair works again.
    await waitFor('links up again', () => b!.transport.isPeerAlive(1), 3_000);
    b!.transport.send(1, 1, heartbeat(2, 1, 9));
    b!.transport.flush();
    await waitFor('delivery after the bad frame', () =>
      messagesFrom(a!, 2).some((m) => m.type === MessageType.Heartbeat && m.commit === 9),
    );
  });
});

describe('lifecycle', () => {
  it('once the transport is closed, its server closes promptly: no upgraded socket holds it', async () => {
    const [a, b] = (await startCluster([1, 2])).map(track);
    await waitFor('links up', () => a!.transport.isPeerAlive(2) && b!.transport.isPeerAlive(1));
    await a!.transport.close();
    let closed = false;
    // No closeAllConnections here: only the transport's own cleanup may release the server.
    a!.server.close(() => {
      closed = true;
    });
    await waitFor('server closed', () => closed, 2_000);
    expect(a!.transport.isPeerAlive(2)).toBe(false);
    expect(a!.transport.send(2, 1, heartbeat(1, 2, 1))).toBe(false);
  });
});

describe('config', () => {
  it('refuses bad ids, URLs and limits with InvalidConfig', () => {
    const base = {
      nodeId: 1,
      clusterId: CLUSTER,
      peers: new Map([[2, 'http://127.0.0.1:1']]),
      onMessages: () => {},
      logger: silentLogger,
    };
    const bad = [
      { nodeId: 0 },
      { clusterId: 'has space' },
      { peers: new Map([[2, 'not a url']]) },
      { peers: new Map([[2, 'ftp://x']]) },
      { limits: { pingIntervalMs: 0 } },
      { limits: { pingIntervalMs: 100, peerTimeoutMs: 150 } },
      { limits: { maxQueuedBytesPerPeer: 1 << 20, maxFrameBytes: 1 << 19 } },
    ];
    for (const fields of bad) {
      expect(() => new Transport({ ...base, ...fields }), JSON.stringify(fields)).toThrow(
        expect.objectContaining({ code: 'InvalidConfig' }),
      );
    }
  });

  it('drops, without throwing, a send to a node that is not a peer', async () => {
    const self = await startServer();
    const a = track(startNode({ id: 1, ...self, peers: new Map([[1, urlOf(self.port)]]) }));
    expect(a.transport.send(4, 1, heartbeat(1, 4, 1))).toBe(false);
    expect(a.transport.stats().messagesDroppedUnknownPeer).toBe(1);
  });
});
