// The transport's limits and timings, their defaults, and their validation. Every queue, frame and
// retry loop of the transport is bounded by one of these.

import { BATCH_FRAME_OVERHEAD_BYTES, FRAME_LENGTH_BYTES } from './codec.js';
import { TransportError } from './errors.js';

export interface TransportLimits {
  /** Encoded bytes queued for one peer between flushes or while its socket drains; beyond, drop. */
  maxQueuedBytesPerPeer: number;
  /** Messages queued for one peer; beyond, drop. */
  maxQueuedMessagesPerPeer: number;
  /** Largest frame accepted from a peer (kind + body). Must hold a full queue's frame. */
  maxFrameBytes: number;
  /** An open link on which nothing arrived for this long sends a ping. */
  pingIntervalMs: number;
  /** A link on which nothing arrived for this long is dead: closed, reported, redialed. */
  peerTimeoutMs: number;
  /** A dial (TCP connect + upgrade) that has not completed in this long is abandoned. */
  connectTimeoutMs: number;
  /** The first reconnect delay; it doubles per failed attempt, with jitter, up to the max. */
  reconnectBackoffInitialMs: number;
  reconnectBackoffMaxMs: number;
}

export const DEFAULT_TRANSPORT_LIMITS: Readonly<TransportLimits> = Object.freeze({
  maxQueuedBytesPerPeer: 32 * 1024 * 1024,
  maxQueuedMessagesPerPeer: 65_536,
  maxFrameBytes: 64 * 1024 * 1024,
  pingIntervalMs: 500,
  peerTimeoutMs: 2_000,
  connectTimeoutMs: 2_000,
  reconnectBackoffInitialMs: 20,
  reconnectBackoffMaxMs: 2_000,
});

/** The largest frame length a u32 prefix and one Buffer can both hold. */
const MAX_FRAME_BYTES_CEILING = 0xffff_ffff;

function invalid(message: string): never {
  throw new TransportError('InvalidConfig', message);
}

/** Fills defaults and checks every limit; throws TransportError('InvalidConfig'). */
export function resolveLimits(overrides: Partial<TransportLimits> = {}): TransportLimits {
  const limits: TransportLimits = { ...DEFAULT_TRANSPORT_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0)
      invalid(`${name} must be a positive integer, got ${value}`);
  }
  if (limits.maxFrameBytes > MAX_FRAME_BYTES_CEILING)
    invalid(`maxFrameBytes above ${MAX_FRAME_BYTES_CEILING}`);
  const fullQueueFrameBytes = limits.maxQueuedBytesPerPeer + BATCH_FRAME_OVERHEAD_BYTES - FRAME_LENGTH_BYTES;
  if (fullQueueFrameBytes > limits.maxFrameBytes) {
    invalid(`maxFrameBytes ${limits.maxFrameBytes} cannot hold a full queue (${fullQueueFrameBytes} bytes)`);
  }
  if (limits.peerTimeoutMs < 2 * limits.pingIntervalMs) {
    invalid('peerTimeoutMs must be at least twice pingIntervalMs, or an idle live peer looks dead');
  }
  if (limits.reconnectBackoffInitialMs > limits.reconnectBackoffMaxMs) {
    invalid('reconnectBackoffInitialMs above reconnectBackoffMaxMs');
  }
  return limits;
}
