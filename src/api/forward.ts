// Forwarding a client request to the node that must answer it (a partition leader, the metadata
// leader, a replica). The receiving node relays the answer as is. A hop count stops loops.

import { Pool } from 'undici';
import { RETRY_AFTER_SECONDS } from '../wire/errors.js';

export const FORWARDED_HEADER = 'x-raftlog-forwarded';
/** A request is forwarded at most this many times; then the answer is NO_LEADER. */
export const FORWARD_HOPS_MAX = 2;
const FORWARD_TIMEOUT_MS = 60_000;

export interface ForwardRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Path and query string. */
  url: string;
  body?: string;
  hops: number;
}

export interface ForwardedResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

export interface Forwarder {
  forward(nodeId: number, request: ForwardRequest): Promise<ForwardedResponse>;
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

  constructor(peers: Map<number, string>, selfId: number) {
    for (const [id, url] of peers) {
      if (id !== selfId) this.pools.set(id, new Pool(url, { connections: 16, pipelining: 1 }));
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

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((pool) => pool.close()));
  }
}
