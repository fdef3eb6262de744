// The HTTP Upgrade that turns a request on a node's own port into a raw frame stream: the request
// the dialer sends, the checks the acceptor makes before switching, and the bytes of both answers.
//
//   GET /v1/raft/stream HTTP/1.1
//   Connection: Upgrade
//   Upgrade: raftlog-frames/1
//   x-raftlog-cluster: <cluster id>     refused with 403 CLUSTER_MISMATCH when it differs
//   x-raftlog-node: <sender node id>    refused with 403 UNKNOWN_NODE unless a configured peer
//   x-raftlog-to: <intended node id>    refused with 421 WRONG_NODE when it is not the acceptor
//   → HTTP/1.1 101 Switching Protocols, x-raftlog-node: <acceptor id>, then frames.

import type { IncomingMessage, RequestOptions } from 'node:http';
import type { NodeId } from '../raft/index.js';

export const STREAM_PATH = '/v1/raft/stream';
export const STREAM_PROTOCOL = 'raftlog-frames/1';
export const HEADER_CLUSTER = 'x-raftlog-cluster';
export const HEADER_NODE = 'x-raftlog-node';
export const HEADER_TO = 'x-raftlog-to';

export type HandshakeRefusalCode =
  | 'NOT_FOUND'
  | 'CLUSTER_MISMATCH'
  | 'UNKNOWN_NODE'
  | 'WRONG_NODE'
  | 'CLOSED';

export interface HandshakeRefusal {
  readonly status: number;
  readonly code: HandshakeRefusalCode;
  readonly reason: string;
}

/** What the acceptor decides about an upgrade request. */
export type HandshakeDecision =
  | { readonly accept: true; readonly peerId: NodeId }
  | { readonly accept: false; readonly refusal: HandshakeRefusal };

const STATUS_TEXT: Readonly<Record<number, string>> = {
  403: 'Forbidden',
  404: 'Not Found',
  421: 'Misdirected Request',
  503: 'Service Unavailable',
};

function refuse(status: number, code: HandshakeRefusalCode, reason: string): HandshakeDecision {
  return { accept: false, refusal: { status, code, reason } };
}

function headerValue(request: IncomingMessage, name: string): string {
  const value = request.headers[name];
  return typeof value === 'string' ? value : '';
}

/** True when the request asks for our stream; other upgrades belong to other listeners. */
export function isStreamRequest(request: IncomingMessage): boolean {
  const path = (request.url ?? '').split('?', 1)[0];
  return path === STREAM_PATH && headerValue(request, 'upgrade').toLowerCase() === STREAM_PROTOCOL;
}

/** Decides an upgrade request for the stream; pure, so every refusal is testable without sockets. */
export function decideUpgrade(
  request: IncomingMessage,
  self: { nodeId: NodeId; clusterId: string; peerIds: ReadonlySet<NodeId> },
): HandshakeDecision {
  const cluster = headerValue(request, HEADER_CLUSTER);
  if (cluster !== self.clusterId) {
    return refuse(403, 'CLUSTER_MISMATCH', `cluster "${cluster}" is not this node's cluster`);
  }
  const nodeHeader = headerValue(request, HEADER_NODE);
  const peerId = Number(nodeHeader);
  if (nodeHeader === '' || !self.peerIds.has(peerId)) {
    return refuse(403, 'UNKNOWN_NODE', `node "${nodeHeader}" is not a configured peer`);
  }
  const to = headerValue(request, HEADER_TO);
  if (to !== '' && Number(to) !== self.nodeId) {
    return refuse(421, 'WRONG_NODE', `this is node ${self.nodeId}, not node ${to}`);
  }
  return { accept: true, peerId };
}

/** A plain HTTP error that ends the connection: the dialer logs the code and backs off. */
export function refusalResponse(refusal: HandshakeRefusal): Buffer {
  const body = `${refusal.code}: ${refusal.reason}\n`;
  const head =
    `HTTP/1.1 ${refusal.status} ${STATUS_TEXT[refusal.status] ?? 'Error'}\r\n` +
    'Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
  return Buffer.from(head + body);
}

/** The 101 answer; constant per node, so built once. */
export function switchingProtocolsResponse(nodeId: NodeId): Buffer {
  return Buffer.from(
    'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n' +
      `Upgrade: ${STREAM_PROTOCOL}\r\n${HEADER_NODE}: ${nodeId}\r\n\r\n`,
  );
}

/** The dial request for `baseUrl` (which may carry a path prefix for a proxy). */
export function dialRequestOptions(
  baseUrl: URL,
  self: { nodeId: NodeId; clusterId: string; peerId: NodeId },
): RequestOptions {
  const base = baseUrl.pathname.endsWith('/') ? baseUrl : new URL(`${baseUrl.pathname}/`, baseUrl);
  const url = new URL(STREAM_PATH.slice(1), base);
  return {
    method: 'GET',
    // URL keeps IPv6 brackets in hostname; the socket layer wants the bare address.
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port === '' ? undefined : Number(url.port),
    path: url.pathname,
    // A dedicated socket: it leaves the HTTP layer at the 101 and must never sit in a pool.
    agent: false,
    headers: {
      Connection: 'Upgrade',
      Upgrade: STREAM_PROTOCOL,
      [HEADER_CLUSTER]: self.clusterId,
      [HEADER_NODE]: String(self.nodeId),
      [HEADER_TO]: String(self.peerId),
    },
  };
}

/** Why a 101 is not the one we asked for, or null when it is. */
export function checkSwitchingResponse(response: IncomingMessage, peerId: NodeId): string | null {
  if (response.statusCode !== 101) return `status ${response.statusCode}`;
  if (headerValue(response, 'upgrade').toLowerCase() !== STREAM_PROTOCOL) return 'wrong Upgrade protocol';
  const node = headerValue(response, HEADER_NODE);
  if (Number(node) !== peerId) return `answered by node "${node}", expected ${peerId}`;
  return null;
}
