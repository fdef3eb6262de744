// Everything this node knows about one peer: the outbound link it dials (state, backoff, liveness),
// the bounded queue of messages waiting for the next flush, the latest inbound connection the peer
// dialed to us, and the counters behind stats().
//
// Link states:  idle ─start→ connecting ─101→ open ─close/timeout→ backoff ─delay→ connecting …
//                                      └─refused/error/timeout→ backoff          any ─close()→ closed
// Messages are kept while `connecting` (the first turns of a start or a redial, one RTT) and while
// an open socket drains; they are dropped at once in `backoff`, since Raft resends what matters and
// a stale burst after an outage would only delay fresh messages.

import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Message, NodeId } from '../raft/index.js';
import { encodeBatchFrame, encodedMessageBytes, type MessageBatch, PING_FRAME, PONG_FRAME } from './codec.js';
import type { TransportLimits } from './config.js';
import { Connection, type ConnectionOwner } from './connection.js';
import type { TransportError } from './errors.js';
import { checkSwitchingResponse, dialRequestOptions } from './handshake.js';

export type LinkState = 'idle' | 'connecting' | 'open' | 'backoff' | 'closed';

/** What a Peer needs from the Transport that owns it. */
export interface PeerContext {
  readonly nodeId: NodeId;
  readonly clusterId: string;
  readonly limits: TransportLimits;
  readonly logger: Logger;
  readonly onMessages: (fromNodeId: NodeId, batch: MessageBatch) => void;
  readonly onPeerDown: (nodeId: NodeId) => void;
}

/** Counters of one peer, both directions. Monotonic, except where noted. */
export interface PeerCounters {
  /** Batch frames written to the outbound link. */
  framesSent: number;
  bytesSent: number;
  messagesSent: number;
  /** Every socket.write to this peer: batch frames, pings, and pongs on the inbound connection. */
  socketWrites: number;
  pingsSent: number;
  framesReceived: number;
  bytesReceived: number;
  messagesReceived: number;
  /** Messages dropped: queue full, link down, or still queued when the link went down. */
  messagesDropped: number;
  /** Times the outbound link opened after its first open. */
  reconnects: number;
  dialFailures: number;
  malformedFrames: number;
}

export interface PeerStats extends PeerCounters {
  nodeId: NodeId;
  url: string;
  state: LinkState;
  alive: boolean;
  queuedMessages: number;
  queuedBytes: number;
  /** Round trip of the last answered ping on the outbound link. */
  rttMs: number | null;
  lastError: string | null;
}

const MAX_REFUSAL_BODY_CHARS = 512;

function zeroCounters(): PeerCounters {
  return {
    framesSent: 0,
    bytesSent: 0,
    messagesSent: 0,
    socketWrites: 0,
    pingsSent: 0,
    framesReceived: 0,
    bytesReceived: 0,
    messagesReceived: 0,
    messagesDropped: 0,
    reconnects: 0,
    dialFailures: 0,
    malformedFrames: 0,
  };
}

export class Peer implements ConnectionOwner {
  readonly id: NodeId;
  readonly url: URL;
  state: LinkState = 'idle';
  private readonly context: PeerContext;
  private readonly logger: Logger;
  private readonly counters: PeerCounters = zeroCounters();

  private outbound: Connection | null = null;
  private inbound: Connection | null = null;
  private request: ClientRequest | null = null;
  /** The connect timeout while `connecting`, the redial delay while in `backoff`. */
  private timer: NodeJS.Timeout | null = null;
  /** Consecutive dials that did not reach an answered ping; the backoff exponent. */
  private failedDials = 0;
  private opens = 0;
  /** Whether the current outage was already logged, so that retries do not flood the log. */
  private outageLogged = false;
  private oversizeLogged = false;
  private lastPingSentAtMs = 0;
  private rttMs: number | null = null;
  private lastError: string | null = null;

  // Invariant: queuedGroupIds.length === queuedMessages.length <= maxQueuedMessagesPerPeer, and
  // queuedBytes === the sum of encodedMessageBytes(queuedMessages[i]) <= maxQueuedBytesPerPeer.
  private readonly queuedGroupIds: number[] = [];
  private readonly queuedMessages: Message[] = [];
  private queuedBytes = 0;
  private droppedSinceFlush = 0;

  constructor(options: { id: NodeId; url: URL; context: PeerContext }) {
    this.id = options.id;
    this.url = options.url;
    this.context = options.context;
    this.logger = options.context.logger.child({ peer: options.id });
  }

  // --- sending -------------------------------------------------------------------------------

  /** Queues one message for the next flush; false (and counted) when it was dropped instead. */
  enqueue(groupId: number, message: Message): boolean {
    const bytes = encodedMessageBytes(message);
    if (this.state === 'backoff' || this.state === 'closed') {
      // Already reported when the link went down; reporting every turn of an outage adds nothing.
      this.counters.messagesDropped++;
      return false;
    }
    const limits = this.context.limits;
    if (bytes > limits.maxQueuedBytesPerPeer && !this.oversizeLogged) {
      // Such a message can never be sent and Raft will keep retrying it: say so, once per peer.
      this.oversizeLogged = true;
      this.logger.warn(
        { bytes, type: message.type, maxQueuedBytesPerPeer: limits.maxQueuedBytesPerPeer },
        'message larger than the peer queue; dropped',
      );
    }
    if (
      this.queuedMessages.length >= limits.maxQueuedMessagesPerPeer ||
      this.queuedBytes + bytes > limits.maxQueuedBytesPerPeer
    ) {
      this.counters.messagesDropped++;
      this.droppedSinceFlush++;
      return false;
    }
    this.queuedGroupIds.push(groupId);
    this.queuedMessages.push(message);
    this.queuedBytes += bytes;
    return true;
  }

  /** End of a driver turn: at most one socket write; reports the peer if the queue overflowed. */
  flush(): void {
    if (this.queuedMessages.length > 0 && this.outbound !== null && !this.outbound.needsDrain) {
      this.writeQueued(this.outbound);
    }
    if (this.droppedSinceFlush > 0) {
      this.droppedSinceFlush = 0;
      this.context.onPeerDown(this.id);
    }
  }

  private writeQueued(connection: Connection): void {
    const frame = encodeBatchFrame(this.queuedGroupIds, this.queuedMessages, this.queuedBytes);
    this.counters.framesSent++;
    this.counters.bytesSent += frame.length;
    this.counters.messagesSent += this.queuedMessages.length;
    this.counters.socketWrites++;
    this.clearQueue();
    connection.write(frame);
  }

  private dropQueued(): void {
    this.counters.messagesDropped += this.queuedMessages.length;
    this.clearQueue();
  }

  private clearQueue(): void {
    this.queuedGroupIds.length = 0;
    this.queuedMessages.length = 0;
    this.queuedBytes = 0;
  }

  // --- dialing -------------------------------------------------------------------------------

  /** Starts (or restarts, after a backoff) the outbound link. */
  dial(): void {
    this.timer = null;
    if (this.state === 'closed') return;
    this.state = 'connecting';
    const context = this.context;
    const options = dialRequestOptions(this.url, {
      nodeId: context.nodeId,
      clusterId: context.clusterId,
      peerId: this.id,
    });
    const request = (this.url.protocol === 'https:' ? https : http).request(options);
    this.request = request;
    this.timer = setTimeout(
      () => this.dialFailed(request, 'connect timeout'),
      context.limits.connectTimeoutMs,
    );
    this.timer.unref();
    request.on('upgrade', (response: IncomingMessage, socket: Socket, head: Buffer) =>
      this.dialUpgraded(request, response, socket, head),
    );
    request.on('response', (response: IncomingMessage) => this.dialRefused(request, response));
    request.on('error', (error: Error) => this.dialFailed(request, error.message));
    request.end();
  }

  private dialUpgraded(
    request: ClientRequest,
    response: IncomingMessage,
    socket: Socket,
    head: Buffer,
  ): void {
    const problem = this.request === request ? checkSwitchingResponse(response, this.id) : 'stale dial';
    if (problem !== null) {
      socket.destroy();
      this.dialFailed(request, `bad upgrade answer: ${problem}`);
      return;
    }
    this.endDial();
    this.openLink(socket, head);
  }

  /** A plain HTTP answer instead of a 101: keep the start of the body, it names the refusal. */
  private dialRefused(request: ClientRequest, response: IncomingMessage): void {
    let body = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      if (body.length < MAX_REFUSAL_BODY_CHARS) body += chunk;
    });
    response.on('error', (error: Error) => this.dialFailed(request, error.message));
    response.on('end', () => {
      const text = body.trim().slice(0, MAX_REFUSAL_BODY_CHARS);
      this.dialFailed(request, `refused with HTTP ${response.statusCode}: ${text}`);
    });
  }

  /** Any failure of a dial attempt; stale attempts (already failed or succeeded) are ignored. */
  private dialFailed(request: ClientRequest, reason: string): void {
    if (this.request !== request) return;
    this.endDial();
    request.destroy();
    this.counters.dialFailures++;
    this.down(reason);
  }

  private endDial(): void {
    this.request = null;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private openLink(socket: Socket, head: Buffer): void {
    const connection = new Connection({
      socket,
      owner: this,
      maxFrameBytes: this.context.limits.maxFrameBytes,
    });
    this.outbound = connection;
    this.state = 'open';
    this.opens++;
    if (this.opens > 1) this.counters.reconnects++;
    this.lastError = null;
    if (this.outageLogged || this.opens === 1) this.logger.info({ url: this.url.href }, 'peer link open');
    this.outageLogged = false;
    connection.start(head);
    // An immediate ping measures the RTT and, once answered, proves the link worth resetting backoff.
    this.ping(connection, performance.now());
    if (this.queuedMessages.length > 0) this.writeQueued(connection);
  }

  /** The outbound link is gone (or never came): drop its queue, report, and redial later. */
  private down(reason: string): void {
    if (this.state === 'closed') return;
    const connection = this.outbound;
    this.outbound = null;
    connection?.destroy(reason);
    this.state = 'backoff';
    this.lastError = reason;
    if (!this.outageLogged) {
      this.logger.warn({ url: this.url.href, reason }, 'peer link down');
      this.outageLogged = true;
    }
    this.dropQueued();
    this.droppedSinceFlush = 0;
    this.scheduleRedial();
    this.context.onPeerDown(this.id);
  }

  private scheduleRedial(): void {
    const { reconnectBackoffInitialMs, reconnectBackoffMaxMs } = this.context.limits;
    const ceilingMs = Math.min(
      reconnectBackoffMaxMs,
      reconnectBackoffInitialMs * 2 ** Math.min(this.failedDials, 30),
    );
    // Equal jitter: never zero, and peers that lost each other at once do not redial in lockstep.
    const delayMs = ceilingMs / 2 + (Math.random() * ceilingMs) / 2;
    this.failedDials++;
    this.timer = setTimeout(() => this.dial(), delayMs);
    this.timer.unref();
  }

  // --- liveness ------------------------------------------------------------------------------

  private ping(connection: Connection, nowMs: number): void {
    this.lastPingSentAtMs = nowMs;
    this.counters.pingsSent++;
    this.counters.socketWrites++;
    connection.write(PING_FRAME);
  }

  /** Called on the transport's timer: ping a quiet link, close a silent one. */
  checkLiveness(nowMs: number): void {
    const { pingIntervalMs, peerTimeoutMs } = this.context.limits;
    const outbound = this.outbound;
    if (outbound !== null) {
      const silentMs = nowMs - outbound.lastReceivedAtMs;
      if (silentMs >= peerTimeoutMs) this.down(`no frame for ${Math.round(silentMs)} ms`);
      else if (silentMs >= pingIntervalMs && nowMs - this.lastPingSentAtMs >= pingIntervalMs) {
        this.ping(outbound, nowMs);
      }
    }
    // The peer pings its link every pingIntervalMs, so a silent inbound socket is half-open.
    const inbound = this.inbound;
    if (inbound !== null && nowMs - inbound.lastReceivedAtMs >= peerTimeoutMs) {
      this.inbound = null;
      inbound.destroy('inbound connection silent for peerTimeoutMs');
    }
  }

  isAlive(nowMs: number): boolean {
    const outbound = this.outbound;
    return outbound !== null && nowMs - outbound.lastReceivedAtMs < this.context.limits.peerTimeoutMs;
  }

  // --- inbound -------------------------------------------------------------------------------

  /** The peer dialed us and the 101 is written: take the socket, replacing an older one. */
  acceptInbound(socket: Socket, head: Buffer): void {
    const previous = this.inbound;
    const connection = new Connection({
      socket,
      owner: this,
      maxFrameBytes: this.context.limits.maxFrameBytes,
    });
    this.inbound = connection;
    // A newer dial means the peer gave up on the older socket, which may be half-open.
    previous?.destroy('replaced by a newer inbound connection');
    this.logger.debug('inbound connection accepted');
    connection.start(head);
    // The peer is up again: dial it now rather than at the end of a backoff that grew while it was
    // down (up to reconnectBackoffMaxMs), during which everything for it would be dropped. A
    // restarted replica starts catching up that much sooner.
    if (this.state === 'backoff') {
      if (this.timer !== null) clearTimeout(this.timer);
      this.dial();
    }
  }

  // --- ConnectionOwner -----------------------------------------------------------------------

  onBatch(_connection: Connection, batch: MessageBatch, frameBytes: number): void {
    this.counters.framesReceived++;
    this.counters.bytesReceived += frameBytes;
    this.counters.messagesReceived += batch.messages.length;
    this.context.onMessages(this.id, batch);
  }

  onPing(connection: Connection): void {
    // A peer that pings but does not read its pongs must not grow our socket buffer.
    if (connection.needsDrain) return;
    this.counters.socketWrites++;
    connection.write(PONG_FRAME);
  }

  onPong(connection: Connection): void {
    if (connection !== this.outbound) return;
    this.rttMs = performance.now() - this.lastPingSentAtMs;
    this.failedDials = 0;
  }

  onDrain(connection: Connection): void {
    // Messages held while the socket drained go out now rather than waiting for the next turn.
    if (connection === this.outbound && this.queuedMessages.length > 0) this.writeQueued(connection);
  }

  onMalformed(_connection: Connection, error: TransportError): void {
    this.counters.malformedFrames++;
    this.logger.warn({ error: error.message }, 'malformed frame from peer; closing the connection');
  }

  onClosed(connection: Connection, reason: string): void {
    if (connection === this.outbound) this.down(reason);
    else if (connection === this.inbound) this.inbound = null;
  }

  // --- lifecycle and stats -------------------------------------------------------------------

  /** Stops everything for this peer; resolves once its sockets have closed. */
  close(): Promise<void> {
    this.state = 'closed';
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.request?.destroy();
    this.request = null;
    this.clearQueue();
    const closing: Promise<void>[] = [];
    for (const connection of [this.outbound, this.inbound]) {
      if (connection === null) continue;
      connection.destroy('transport closed');
      closing.push(connection.whenClosed());
    }
    this.outbound = null;
    this.inbound = null;
    return Promise.all(closing).then(() => undefined);
  }

  stats(nowMs: number): PeerStats {
    return {
      nodeId: this.id,
      url: this.url.href,
      state: this.state,
      alive: this.isAlive(nowMs),
      ...this.counters,
      queuedMessages: this.queuedMessages.length,
      queuedBytes: this.queuedBytes,
      rttMs: this.rttMs,
      lastError: this.lastError,
    };
  }
}
