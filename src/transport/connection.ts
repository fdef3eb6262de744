// One upgraded socket to or from a peer, after the 101: reads frames, hands batches, pings and pongs
// to its owner, and remembers when the last bytes arrived (for liveness). It never decides about
// reconnecting or queueing; that is the Peer's job.

import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { decodeFrame, FRAME_LENGTH_BYTES, FrameKind, type MessageBatch } from './codec.js';
import { isTransportError, type TransportError } from './errors.js';
import { FrameReader, type FrameSink } from './frame-reader.js';

/** What a connection reports to the Peer that owns it. */
export interface ConnectionOwner {
  onBatch(connection: Connection, batch: MessageBatch, frameBytes: number): void;
  onPing(connection: Connection): void;
  onPong(connection: Connection): void;
  /** The socket is writable again after a write returned false. */
  onDrain(connection: Connection): void;
  /** A frame did not parse; the connection is being closed. */
  onMalformed(connection: Connection, error: TransportError): void;
  /** The socket closed, for `reason`; called once. */
  onClosed(connection: Connection, reason: string): void;
}

export class Connection implements FrameSink {
  readonly socket: Socket;
  /** performance.now() when bytes last arrived; starts at the handshake, which proves the peer. */
  lastReceivedAtMs: number;
  private readonly owner: ConnectionOwner;
  private readonly reader: FrameReader;
  private closeReason: string | null = null;

  constructor(options: { socket: Socket; owner: ConnectionOwner; maxFrameBytes: number }) {
    this.socket = options.socket;
    this.owner = options.owner;
    this.reader = new FrameReader({ maxFrameBytes: options.maxFrameBytes, sink: this });
    this.lastReceivedAtMs = performance.now();
  }

  /** Takes over the socket: Nagle off (frames are already batched), listeners on, `head` consumed. */
  start(head: Buffer): void {
    const socket = this.socket;
    socket.setNoDelay(true);
    // The HTTP layer may have set an idle timeout; liveness is ours to judge now.
    socket.setTimeout(0);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.owner.onDrain(this));
    socket.on('error', (error: Error) => {
      this.closeReason ??= error.message;
    });
    socket.on('close', () => this.owner.onClosed(this, this.closeReason ?? 'closed by peer'));
    if (head.length > 0) this.onData(head);
  }

  get needsDrain(): boolean {
    return this.socket.writableNeedDrain;
  }

  write(frame: Buffer): void {
    this.socket.write(frame);
  }

  /** Closes now; the owner hears about it through onClosed with this reason. */
  destroy(reason: string): void {
    this.closeReason ??= reason;
    this.reader.stop();
    this.socket.destroy();
  }

  /** Resolves once the socket has closed. */
  whenClosed(): Promise<void> {
    if (this.socket.closed) return Promise.resolve();
    return new Promise((resolve) => this.socket.once('close', () => resolve()));
  }

  private onData(chunk: Buffer): void {
    this.lastReceivedAtMs = performance.now();
    try {
      this.reader.push(chunk);
    } catch (error) {
      // Only a peer's bad bytes are survivable; anything else is a bug and must surface.
      if (!isTransportError(error)) throw error;
      this.owner.onMalformed(this, error);
      this.destroy(error.message);
    }
  }

  /** FrameSink: one complete frame body. Throws TransportError for a malformed one. */
  onFrame(body: Buffer): void {
    const frame = decodeFrame(body);
    if (frame.kind === FrameKind.Batch)
      this.owner.onBatch(this, frame.batch, FRAME_LENGTH_BYTES + body.length);
    else if (frame.kind === FrameKind.Ping) this.owner.onPing(this);
    else this.owner.onPong(this);
  }
}
