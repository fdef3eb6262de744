// The Transport: the node-level object the broker's driver talks to. It owns the Peers, accepts
// upgrades on the servers it is attached to, routes send() to the right queue, and runs the one
// timer that pings and times out links. See index.ts for the contract.

import type { IncomingMessage, Server } from 'node:http';
import { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Message, NodeId } from '../raft/index.js';
import type { MessageBatch } from './codec.js';
import { resolveLimits, type TransportLimits } from './config.js';
import { assert, TransportError } from './errors.js';
import {
  decideUpgrade,
  type HandshakeRefusal,
  isStreamRequest,
  refusalResponse,
  switchingProtocolsResponse,
} from './handshake.js';
import { Peer, type PeerContext, type PeerStats } from './peer.js';

export interface TransportOptions {
  /** This node's id: a u32 above 0 (0 is Raft's NONE). */
  nodeId: NodeId;
  /** Every node of one cluster shares it; a dial carrying another is refused before upgrading. */
  clusterId: string;
  /** The base URL of every peer (`http://host:port`, optionally with a path prefix for a proxy).
   *  May include this node, which is skipped. Only these URLs are dialed, only these ids accepted. */
  peers: ReadonlyMap<NodeId, string>;
  /** One call per received batch frame, in the order the peer sent them. Must not throw. */
  onMessages: (fromNodeId: NodeId, batch: MessageBatch) => void;
  /** Messages to `nodeId` may have been lost: its link went down, a dial failed, or a flush dropped
   *  some. The driver should call RawNode.reportUnreachable(nodeId) for the groups it shares with
   *  that peer. Also called from I/O callbacks, outside driver turns. */
  onPeerDown?: (nodeId: NodeId) => void;
  logger: Logger;
  limits?: Partial<TransportLimits>;
}

export interface TransportStats {
  nodeId: NodeId;
  peers: PeerStats[];
  /** send() calls to a node that is not in `peers`. */
  messagesDroppedUnknownPeer: number;
}

const CLUSTER_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;

function parsePeers(nodeId: NodeId, peers: ReadonlyMap<NodeId, string>): Map<NodeId, URL> {
  const urls = new Map<NodeId, URL>();
  for (const [id, baseUrl] of peers) {
    if (!Number.isInteger(id) || id <= 0 || id > 0xffff_ffff) {
      throw new TransportError('InvalidConfig', `peer id ${id} is not a u32 above 0`);
    }
    if (id === nodeId) continue;
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      throw new TransportError('InvalidConfig', `peer ${id}: "${baseUrl}" is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TransportError('InvalidConfig', `peer ${id}: ${url.protocol} is not http: or https:`);
    }
    urls.set(id, url);
  }
  return urls;
}

/** Binds component and node unless the caller's logger has them (pino would print keys twice). */
function transportLogger(logger: Logger, nodeId: NodeId): Logger {
  const present = logger.bindings();
  const bindings: Record<string, unknown> = {};
  if (!('component' in present)) bindings.component = 'transport';
  if (!('node' in present)) bindings.node = nodeId;
  return logger.child(bindings);
}

export class Transport {
  readonly nodeId: NodeId;
  private readonly context: PeerContext;
  private readonly peers = new Map<NodeId, Peer>();
  /** The same peers as an array: flush() iterates it every turn without allocating an iterator. */
  private readonly peerList: Peer[] = [];
  private readonly peerIds: ReadonlySet<NodeId>;
  private readonly switchingResponse: Buffer;
  private readonly attached = new Map<Server, (req: IncomingMessage, socket: Duplex, head: Buffer) => void>();
  private timer: NodeJS.Timeout | null = null;
  private started = false;
  private closed = false;
  private messagesDroppedUnknownPeer = 0;

  constructor(options: TransportOptions) {
    const { nodeId, clusterId } = options;
    if (!Number.isInteger(nodeId) || nodeId <= 0 || nodeId > 0xffff_ffff) {
      throw new TransportError('InvalidConfig', `nodeId ${nodeId} is not a u32 above 0`);
    }
    if (!CLUSTER_ID_PATTERN.test(clusterId)) {
      throw new TransportError('InvalidConfig', 'clusterId must be 1 to 128 visible ASCII characters');
    }
    this.nodeId = nodeId;
    this.context = {
      nodeId,
      clusterId,
      limits: resolveLimits(options.limits),
      logger: transportLogger(options.logger, nodeId),
      onMessages: options.onMessages,
      onPeerDown: options.onPeerDown ?? (() => {}),
    };
    for (const [id, url] of parsePeers(nodeId, options.peers)) {
      const peer = new Peer({ id, url, context: this.context });
      this.peers.set(id, peer);
      this.peerList.push(peer);
    }
    this.peerIds = new Set(this.peers.keys());
    this.switchingResponse = switchingProtocolsResponse(nodeId);
  }

  /** Accepts peer upgrades arriving on `server` (for fastify: `app.server`). */
  attach(server: Server): void {
    assert(!this.attached.has(server), 'transport already attached to this server');
    const listener = (request: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(server, request, socket, head);
    this.attached.set(server, listener);
    server.on('upgrade', listener);
  }

  /** Dials every peer and starts the liveness timer. */
  start(): void {
    assert(!this.started && !this.closed, 'transport started twice or after close');
    this.started = true;
    for (const peer of this.peerList) peer.dial();
    const { pingIntervalMs } = this.context.limits;
    // Half the ping interval: pings go out on time, and a dead link is seen within peerTimeoutMs
    // plus half a ping interval.
    this.timer = setInterval(() => this.checkLiveness(), Math.max(1, Math.floor(pingIntervalMs / 2)));
    this.timer.unref();
  }

  /**
   * Queues `message` of group `groupId` for `toNodeId`, to go out at the next flush(). Returns false
   * when it was dropped instead (queue full, link down, unknown peer, closed); drops are counted.
   * Throws AssertionError for a message that cannot be encoded (a bug in the caller).
   */
  send(toNodeId: NodeId, groupId: number, message: Message): boolean {
    const peer = this.peers.get(toNodeId);
    if (peer === undefined) {
      assert(toNodeId !== this.nodeId, 'a node never sends Raft messages to itself');
      this.messagesDroppedUnknownPeer++;
      return false;
    }
    return peer.enqueue(groupId, message);
  }

  /** Ends a driver turn: each peer's queued messages go out as one frame in one socket write. */
  flush(): void {
    const peers = this.peerList;
    for (let i = 0; i < peers.length; i++) peers[i]!.flush();
  }

  /** True while the link to `nodeId` is open and has carried a frame within peerTimeoutMs. */
  isPeerAlive(nodeId: NodeId): boolean {
    return this.peers.get(nodeId)?.isAlive(performance.now()) ?? false;
  }

  stats(): TransportStats {
    const nowMs = performance.now();
    return {
      nodeId: this.nodeId,
      peers: this.peerList.map((peer) => peer.stats(nowMs)),
      messagesDroppedUnknownPeer: this.messagesDroppedUnknownPeer,
    };
  }

  /**
   * Stops dialing, detaches from servers, closes every peer socket; resolves once they closed.
   * Call it BEFORE closing the attached server: upgraded sockets still count as that server's
   * connections, so server.close() (and fastify's app.close()) would wait for them forever.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    for (const [server, listener] of this.attached) server.off('upgrade', listener);
    this.attached.clear();
    await Promise.all(this.peerList.map((peer) => peer.close()));
  }

  private checkLiveness(): void {
    const nowMs = performance.now();
    for (const peer of this.peerList) peer.checkLiveness(nowMs);
  }

  private onUpgrade(server: Server, request: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!isStreamRequest(request)) {
      // Another listener may own this upgrade (a WebSocket route); if none does, answer for it.
      if (server.listenerCount('upgrade') === 1) {
        this.refuse(socket, { status: 404, code: 'NOT_FOUND', reason: 'no such upgrade' });
      }
      return;
    }
    if (this.closed || !(socket instanceof Socket)) {
      this.refuse(socket, { status: 503, code: 'CLOSED', reason: 'transport is closed' });
      return;
    }
    const decision = decideUpgrade(request, {
      nodeId: this.nodeId,
      clusterId: this.context.clusterId,
      peerIds: this.peerIds,
    });
    if (!decision.accept) {
      // One line per refused dial; dialers back off to reconnectBackoffMaxMs, which bounds the rate.
      this.context.logger.warn(
        { code: decision.refusal.code, remote: socket.remoteAddress, reason: decision.refusal.reason },
        'peer upgrade refused',
      );
      this.refuse(socket, decision.refusal);
      return;
    }
    socket.write(this.switchingResponse);
    this.peers.get(decision.peerId)!.acceptInbound(socket, head);
  }

  private refuse(socket: Duplex, refusal: HandshakeRefusal): void {
    socket.on('error', () => {});
    socket.end(refusalResponse(refusal), () => socket.destroy());
  }
}
