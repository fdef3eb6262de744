// Forwarding: the one way a route gets an answer from another node. A route that cannot serve a
// request here (this node does not lead the partition or the metadata group, or holds no
// replica) picks the node that can (the helpers below), then either relays that node's answer as
// is, asks it and uses the answer, or relays its record stream. Every peer request goes through
// a Forwarder and carries a hop count, which stops loops.

import type { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Agent, Pool } from 'undici';
import { BrokerError } from '../broker/errors.js';
import type { Broker, PartitionPlacement } from '../broker/facade.js';
import { RETRY_AFTER_SECONDS } from '../wire/errors.js';
import { NDJSON_CONTENT_TYPE } from '../wire/types.js';
import type { ApiContext } from './context.js';

export const FORWARDED_HEADER = 'x-raftlog-forwarded';
/** Set on an answer another node produced: the node(s) that did the work. */
export const SERVED_BY_HEADER = 'x-raftlog-served-by';
/** A request is forwarded at most this many times; then the answer is NO_LEADER. */
export const FORWARD_HOPS_MAX = 2;
const FORWARD_TIMEOUT_MS = 60_000;
/** How long to wait for a replica on another node to start a relayed stream. */
const STREAM_HEADERS_TIMEOUT_MS = 10_000;
/** Relayed streams are long-lived: they get connections of their own, apart from requests. */
const STREAM_CONNECTIONS_PER_PEER = 64;

export interface ForwardRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Path and query string. */
  url: string;
  body?: string;
  /** Forwards so far; the peer gets hops + 1. */
  hops: number;
}

export interface ForwardedResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

/** A GET whose answer is a record stream (NDJSON), read as it arrives. */
export interface StreamRequest {
  url: string;
  hops: number;
}

export interface StreamedResponse {
  statusCode: number;
  body: Readable;
}

/** How requests reach other nodes (HTTP in production; tests inject their own). */
export interface Forwarder {
  /** Never rejects: an unreachable node answers as `unreachable()` does. */
  forward(nodeId: number, request: ForwardRequest): Promise<ForwardedResponse>;
  /** Rejects if the node cannot be reached. */
  openStream(nodeId: number, request: StreamRequest): Promise<StreamedResponse>;
  close(): Promise<void>;
}

/** The answer when the node that must answer cannot be reached. */
export function unreachable(nodeId: number, reason: string): ForwardedResponse {
  return {
    statusCode: 503,
    headers: { 'content-type': 'application/json', 'retry-after': String(RETRY_AFTER_SECONDS) },
    body: JSON.stringify({
      error: { code: 'NO_LEADER', message: `node ${nodeId} is unreachable: ${reason}` },
    }),
  };
}

const RELAYED_HEADERS = ['content-type', 'retry-after', 'x-raftlog-node'];

export class HttpForwarder implements Forwarder {
  private readonly pools = new Map<number, Pool>();
  private readonly urls = new Map<number, string>();
  private readonly streams = new Agent({ connections: STREAM_CONNECTIONS_PER_PEER });

  constructor(peers: ReadonlyMap<number, string>, selfId: number) {
    for (const [id, url] of peers) {
      if (id === selfId) continue;
      this.urls.set(id, url);
      this.pools.set(id, new Pool(url, { connections: 16, pipelining: 1 }));
    }
  }

  async forward(nodeId: number, request: ForwardRequest): Promise<ForwardedResponse> {
    const pool = this.pools.get(nodeId);
    if (!pool) return unreachable(nodeId, 'not a peer');
    try {
      const response = await pool.request({
        method: request.method,
        path: request.url,
        body: request.body,
        headers: {
          ...(request.body !== undefined ? { 'content-type': 'application/json' } : {}),
          [FORWARDED_HEADER]: String(request.hops + 1),
        },
        headersTimeout: FORWARD_TIMEOUT_MS,
        bodyTimeout: FORWARD_TIMEOUT_MS,
      });
      const body = await response.body.text();
      const headers: Record<string, string> = {};
      for (const name of RELAYED_HEADERS) {
        const value = response.headers[name];
        if (typeof value === 'string') headers[name] = value;
      }
      return { statusCode: response.statusCode, headers, body };
    } catch (error) {
      return unreachable(nodeId, (error as Error).message);
    }
  }

  async openStream(nodeId: number, request: StreamRequest): Promise<StreamedResponse> {
    const url = this.urls.get(nodeId);
    if (url === undefined) throw new Error('not a peer');
    const response = await this.streams.request({
      origin: url,
      method: 'GET',
      path: request.url,
      headers: { accept: NDJSON_CONTENT_TYPE, [FORWARDED_HEADER]: String(request.hops + 1) },
      headersTimeout: STREAM_HEADERS_TIMEOUT_MS,
      bodyTimeout: 0,
    });
    return { statusCode: response.statusCode, body: response.body };
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((pool) => pool.close()));
    await this.streams.destroy();
  }
}

// ---- where a request must go --------------------------------------------------------------

/** Forwards received so far (the header a forwarding node set). */
export function hopsOf(request: FastifyRequest): number {
  const value = Number(request.headers[FORWARDED_HEADER] ?? 0);
  return Number.isInteger(value) && value > 0 ? value : 0;
}

/** The metadata leader, to forward a metadata write to; NO_LEADER if none is known but this node. */
export function metadataLeaderOf(broker: Broker): number {
  const leader = broker.metadataLeader();
  if (leader === null || leader === broker.nodeId) {
    throw new BrokerError('NO_LEADER', 'the metadata group has no leader right now; retry shortly');
  }
  return leader;
}

/** The partition's leader (not this node), to forward a write to; NO_LEADER if none or too many hops. */
export function partitionLeaderOf(broker: Broker, groupId: number, name: string, hops: number): number {
  const leader = broker.partitionStatus(groupId)?.leader ?? 0;
  if (leader === 0 || leader === broker.nodeId || hops >= FORWARD_HOPS_MAX) {
    throw new BrokerError('NO_LEADER', `${name} has no leader right now; retry shortly`);
  }
  return leader;
}

/** For a fetch: the partition's leader as known here, else the first live replica. */
export function leaderOrReplicaOf(broker: Broker, placement: PartitionPlacement, name: string): number {
  const leader = broker.partitionStatus(placement.groupId)?.leader ?? 0;
  const target = leader !== 0 ? leader : placement.replicas.find((id) => broker.isPeerAlive(id));
  if (target === undefined) throw new BrokerError('NO_LEADER', `no replica of ${name} is reachable`);
  return target;
}

/** For a stream or a confirmed read: a live replica on another node, the leader if it is one. */
export function liveReplicaOf(broker: Broker, placement: PartitionPlacement, name: string): number {
  const leader = broker.partitionStatus(placement.groupId)?.leader ?? 0;
  const alive = placement.replicas.filter((id) => id !== broker.nodeId && broker.isPeerAlive(id));
  const target = alive.includes(leader) ? leader : alive[0];
  if (target === undefined) throw new BrokerError('NO_LEADER', `no replica of ${name} is reachable`);
  return target;
}

// ---- the three ways to forward ------------------------------------------------------------

/**
 * Forwards the request as received to `nodeId` and answers with that node's answer (status,
 * body, retry-after, and who served it), unless it has been forwarded too often.
 */
export async function relayTo(
  { forwarder }: ApiContext,
  request: FastifyRequest,
  reply: FastifyReply,
  nodeId: number,
  body?: unknown,
): Promise<FastifyReply> {
  const hops = hopsOf(request);
  if (hops >= FORWARD_HOPS_MAX) {
    throw new BrokerError('NO_LEADER', `no leader found after ${hops} forwards; retry shortly`);
  }
  const response = await forwarder.forward(nodeId, {
    method: request.method as ForwardRequest['method'],
    url: request.url,
    body: body === undefined ? undefined : JSON.stringify(body),
    hops,
  });
  reply.code(response.statusCode);
  for (const [name, value] of Object.entries(response.headers)) {
    if (name !== 'x-raftlog-node') reply.header(name, value);
  }
  reply.header(SERVED_BY_HEADER, String(nodeId));
  if (response.statusCode === 204) return reply.send();
  return reply.type(response.headers['content-type'] ?? 'application/json').send(response.body);
}

/** Asks `nodeId` and returns its 200 answer, parsed; its error answer is thrown as our own. */
export async function ask<Answer>(
  { forwarder }: ApiContext,
  nodeId: number,
  request: ForwardRequest,
): Promise<Answer> {
  const response = await forwarder.forward(nodeId, request);
  if (response.statusCode !== 200) throw relayedError(response.statusCode, response.body, nodeId);
  return JSON.parse(response.body) as Answer;
}

/** Opens `nodeId`'s record stream; its error answer is thrown as our own. */
export async function streamFrom(
  { forwarder }: ApiContext,
  nodeId: number,
  request: StreamRequest,
): Promise<Readable> {
  let response: StreamedResponse;
  try {
    response = await forwarder.openStream(nodeId, request);
  } catch (error) {
    throw new BrokerError('NO_LEADER', `node ${nodeId} is unreachable: ${(error as Error).message}`);
  }
  if (response.statusCode === 200) return response.body;
  throw relayedError(response.statusCode, await text(response.body), nodeId);
}

/** Turns another node's error answer back into a coded error, to answer with as our own. */
function relayedError(statusCode: number, body: string, nodeId: number): BrokerError {
  try {
    const parsed = JSON.parse(body) as { error?: Record<string, unknown> };
    if (parsed.error && typeof parsed.error.code === 'string') {
      const { code, message, ...details } = parsed.error;
      return new BrokerError(code as BrokerError['code'], String(message ?? code), details);
    }
  } catch {
    // not JSON: fall through
  }
  return new BrokerError('INTERNAL', `node ${nodeId} answered ${statusCode}`);
}
